"""Timing the lineage build at network scale: ``python benchmarks/lineage.py``.

Synthesises the upstream tables in SQL (no generator, no files): ``--evses`` connectors,
``--per-evse`` back-to-back sessions each, every session recorded by OCPP, backend and CDR,
with charger clock skew, backend drift and ``--blank`` of the backend and CDR identifiers
removed. Prints the seconds per step and how many links agree with the synthetic truth.
"""

from __future__ import annotations

import argparse
import time

import duckdb

from pipeline.lineage.build import LinkOptions, build_links, build_sessions
from pipeline.warehouse import configure

_SEED_SQL = """
create or replace table staging.evses as
select 'CP-' || lpad(cast(i // 2 as varchar), 6, '0') as charge_point_id, 1 + i % 2 as connector_id,
       'SITE-' || cast(i // 40 as varchar) as site_id, 'LOC-' || cast(i // 40 as varchar) as location_id,
       'E-' || cast(i as varchar) as evse_uid, 'E*' || cast(i as varchar) as evse_id, 22.0 as max_power_kw
from range($evses) as t(i);
create or replace table staging.sites as
select distinct site_id, 'public' as site_type, 'UTC' as time_zone, site_id as name, 'NL' as country
from staging.evses;
create or replace table truth as
select e.*, k, e.charge_point_id || ':' || cast(row_number() over () as varchar) as tx_ref,
       cast(row_number() over () as varchar) as tx,
       timestamptz '2026-11-20 06:00:00+00' + to_seconds(cast(k * 3600 + cast(hash(e.evse_uid, k) % 600 as bigint) as bigint)) as start_at,
       20 + cast(hash(e.evse_uid, k, 'd') % 30 as bigint) as minutes,
       round(5 + (cast(hash(e.evse_uid, k, 'e') % 4000 as bigint)) / 100.0, 3) as kwh,
       cast(cast(hash(e.evse_uid, k, 't') % 100000 as bigint) as varchar) as tag,
       (cast(hash(e.charge_point_id, 's') % 601 as bigint)) - 300 as skew_s,
       (cast(hash(e.evse_uid, k, 'b') % 181 as bigint)) - 60 as drift_s,
       cast(hash(e.evse_uid, k, 'x') % 10000 as bigint) < $blank * 10000 as blank_b,
       cast(hash(e.evse_uid, k, 'y') % 10000 as bigint) < $blank * 10000 as blank_c
from staging.evses as e, range($per_evse) as r(k);
create or replace table lineage.transactions as
select charge_point_id, connector_id, '1.6' as ocpp_version, tx as transaction_id, sha256(tag) as id_tag_hash,
       start_at + to_seconds(skew_s) as started_at, start_at + to_minutes(minutes) + to_seconds(skew_s) as stopped_at,
       start_at as start_received_at, start_at + to_minutes(minutes) as stop_received_at, kwh as energy_kwh
from truth;
create or replace table staging.backend_sessions as
select 'B-' || tx as session_id, charge_point_id, connector_id, case when not blank_b then tx end as transaction_id,
       sha256(tag) as id_tag_hash, start_at + to_seconds(drift_s) as started_at,
       start_at + to_minutes(minutes) + to_seconds(drift_s) as stopped_at, kwh as energy_kwh,
       case when not blank_b then 'S-' || tx end as ocpi_session_id, case when not blank_b then 'C-' || tx end as cdr_id,
       'COMPLETED' as status, kwh * 0.3 as amount, 'EUR' as currency, 'b.csv' as source_file, 1 as record_no
from truth;
create or replace table staging.cdrs as
select 'C-' || tx as cdr_id, 'NL' as country_code, 'CLN' as party_id, start_at, start_at + to_minutes(minutes) as end_at,
       case when not blank_c then 'S-' || tx end as ocpi_session_id, null::varchar as auth_id_hash, sha256(tag) as token_uid_hash,
       location_id, evse_uid, evse_id, '1' as connector_id, 'EUR' as currency, ['T'] as tariff_ids,
       kwh * 0.3 as total_cost_excl_vat, kwh * 0.363 as total_cost_incl_vat, kwh as total_energy_kwh,
       false as credit, null::varchar as credit_reference_id, start_at as last_updated_at,
       'c.json' as source_file, 1 as record_no
from truth;
create or replace table staging.tariff_versions as
select 'NL' as country_code, 'CLN' as party_id, 'T' as tariff_id, timestamptz '2026-01-01 00:00:00+00' as last_updated_at,
       timestamptz '2026-01-01 00:00:00+00' as valid_from_at, null::timestamptz as valid_to_at;
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--evses", type=int, default=20000)
    ap.add_argument("--per-evse", type=int, default=3)
    ap.add_argument("--blank", type=float, default=0.05)
    ap.add_argument("--db", default=":memory:")
    args = ap.parse_args(argv)
    conn = configure(duckdb.connect(args.db))
    t0 = time.perf_counter()
    for stmt in filter(str.strip, _SEED_SQL.split(";")):
        conn.execute(stmt, {k: v for k, v in {"evses": args.evses, "per_evse": args.per_evse,
                                              "blank": args.blank}.items() if f"${k}" in stmt}).fetchall()
    n = conn.execute("select count(*) from truth").fetchall()[0][0]
    t1 = time.perf_counter()
    report = build_links(conn, LinkOptions())
    t2 = time.perf_counter()
    rows = build_sessions(conn)
    t3 = time.perf_counter()
    ok = conn.execute("""
        select count(*) filter (where s.backend_session_id = 'B-' || t.tx and s.cdr_id = 'C-' || t.tx), count(*)
        from truth as t left join lineage.sessions as s on s.ocpp_transaction_id = t.tx
            and s.charge_point_id = t.charge_point_id""").fetchall()[0]
    print(f"sessions per source: {n}; seed {t1 - t0:.1f} s, links {t2 - t1:.1f} s, sessions {t3 - t2:.1f} s")
    print(f"candidates: {report.to_dict()}")
    print(f"lineage.sessions rows: {rows}; fully correct sessions: {ok[0]}/{ok[1]} ({ok[0] / ok[1]:.4%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
