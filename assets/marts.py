"""Marts layer: the analyst-facing tables over lineage, findings and the review queue.

Belongs here: ``marts.findings``, ``marts.session_facts``, ``marts.site_daily_kpis``,
``marts.charger_health`` (tables rebuilt each run) and ``marts.flagged_sessions`` (a view,
so that review decisions show the moment they are made). Token UIDs appear only as their
keyed hash. SQL lives in ``assets/sql/marts/``; inputs that another layer has not built
yet (or built with fewer columns) are read through typed stand-ins, so the marts always
build and simply come out empty.
"""

import dagster as dg
import duckdb

from pipeline.privacy import token_hash_key, token_hash_params, token_hash_sql
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.review import ensure_tables, findings_sql, table_columns
from pipeline.sql import execute, load_sql, table_exists

MARTS_GROUP = "marts"

# lineage.sessions columns session_facts reads, with the names other layers may use for
# the same role (first present wins) and the type of the stand-in when none is present.
SESSION_INPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "session_key": ("varchar", ()),
    "site_id": ("varchar", ()),
    "site_type": ("varchar", ()),
    "charge_point_id": ("varchar", ()),
    "connector_id": ("integer", ()),
    "evse_uid": ("varchar", ()),
    "ocpp_transaction_id": ("varchar", ()),
    "backend_session_id": ("varchar", ()),
    "ocpi_session_id": ("varchar", ()),
    "cdr_id": ("varchar", ()),
    "started_at": ("timestamptz", ("ocpp_started_at", "backend_started_at", "cdr_started_at")),
    "stopped_at": ("timestamptz", ("ocpp_stopped_at", "backend_stopped_at", "cdr_stopped_at")),
    "ocpp_started_at": ("timestamptz", ("started_at_ocpp",)),
    "backend_started_at": ("timestamptz", ("started_at_backend",)),
    "ocpp_energy_kwh": ("double", ("energy_kwh_ocpp",)),
    "backend_energy_kwh": ("double", ("energy_kwh_backend",)),
    "cdr_energy_kwh": ("double", ("energy_kwh_cdr", "cdr_total_energy_kwh")),
    "currency": ("varchar", ("cdr_currency", "backend_currency")),
    "cdr_total_cost_excl_vat": ("double", ("cdr_cost_excl_vat", "total_cost_excl_vat")),
    "token_hash": ("varchar", ()),
    "has_ocpp": ("boolean", ()),
    "has_backend": ("boolean", ()),
    "has_cdr": ("boolean", ()),
}
# Raw token columns hashed when lineage.sessions carries no token_hash yet.
RAW_TOKEN_COLUMNS = ("id_tag", "token_uid", "auth_id", "ocpp_id_tag", "backend_id_tag")
_HAS_FROM_ID = {"has_ocpp": "ocpp_transaction_id", "has_backend": "backend_session_id",
                "has_cdr": "cdr_id"}

_EMPTY_SITES = """(select null::varchar as site_id, null::varchar as site_type,
    null::varchar as time_zone, null::varchar as name, null::varchar as country where false)"""
_EMPTY_CLOCK = """(select null::varchar as charge_point_id, null::double as skew_s,
    null::boolean as is_skewed where false)"""
_EMPTY_PRICES = """(select null::varchar as session_key, null::double as price_in_force_excl_vat
    where false)"""

MART_TABLES = ("findings", "session_facts", "site_daily_kpis", "charger_health")


def _sessions_standin(conn: duckdb.DuckDBPyConnection) -> str:
    """``lineage.sessions`` read by role: every column session_facts needs, typed."""
    present = table_columns(conn, "lineage.sessions") if table_exists(conn, "lineage.sessions") else []
    exprs = []
    for name, (sql_type, alternatives) in SESSION_INPUTS.items():
        found = [c for c in (name, *alternatives) if c in present]
        if found:
            cols = ", ".join(f'ls."{c}"' for c in found)
            expr = f"try_cast(coalesce({cols}) as {sql_type})"
        elif name == "token_hash" and (raw := [c for c in RAW_TOKEN_COLUMNS if c in present]):
            raw_cols = ", ".join(f'ls."{c}"' for c in raw)
            expr = token_hash_sql(f"coalesce({raw_cols})")
        elif name in _HAS_FROM_ID and _HAS_FROM_ID[name] in present:
            expr = f'ls."{_HAS_FROM_ID[name]}" is not null'
        else:
            expr = f"null::{sql_type}"
        exprs.append(f"{expr} as {name}")
    source = "lineage.sessions as ls" if present else "(select 1 where false) as ls"
    return f"(select {', '.join(exprs)} from {source})"


def _has_duplicate_keys(conn: duckdb.DuckDBPyConnection) -> bool:
    if "session_key" not in (table_columns(conn, "lineage.sessions")
                             if table_exists(conn, "lineage.sessions") else []):
        return False
    return conn.execute(
        "select count(*) > count(distinct session_key) from lineage.sessions").fetchall()[0][0]


def mart_sql(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    """The mart's SQL with stand-ins for inputs that are missing (or read by role)."""
    if table == "findings":
        return findings_sql(conn)
    sql = load_sql(f"assets/sql/marts/{table}.sql")
    sessions = _sessions_standin(conn)
    if table == "session_facts" and _has_duplicate_keys(conn):
        # A window over every session costs ~10 s per million rows: only pay it when needed.
        sessions = (f"(select * from {sessions} as d qualify row_number() over "
                    "(partition by d.session_key order by d.started_at nulls last) = 1)")
    sql = sql.replace("from lineage.sessions as ls", f"from {sessions} as ls")
    if not table_exists(conn, "staging.sites"):
        sql = sql.replace("staging.sites as st", f"{_EMPTY_SITES} as st")
    if not table_exists(conn, "recon.charger_clock"):
        sql = sql.replace("recon.charger_clock as cc", f"{_EMPTY_CLOCK} as cc")
    if not table_exists(conn, "recon.session_prices"):
        sql = sql.replace("recon.session_prices as sp", f"{_EMPTY_PRICES} as sp")
    return sql


def build_mart(conn: duckdb.DuckDBPyConnection, table: str, options: dict | None = None) -> int:
    """(Re)build ``marts.<table>``; its row count."""
    params = token_hash_params(token_hash_key(options))
    execute(conn, f"create or replace table marts.{table} as\n{mart_sql(conn, table)}", params)
    return conn.execute(f"select count(*) from marts.{table}").fetchall()[0][0]


def build_flagged_sessions_view(conn: duckdb.DuckDBPyConnection) -> int:
    """``marts.flagged_sessions``: a view, so decisions made after the run show at once."""
    ensure_tables(conn)
    execute(conn, "create or replace view marts.flagged_sessions as\n"
            + load_sql("assets/sql/marts/flagged_sessions.sql"))
    return conn.execute("select count(*) from marts.flagged_sessions").fetchall()[0][0]


def build_marts(conn: duckdb.DuckDBPyConnection, options: dict | None = None) -> dict[str, int]:
    """Every mart in dependency order (what the assets do, without Dagster); row counts."""
    rows = {t: build_mart(conn, t, options) for t in MART_TABLES}
    rows["flagged_sessions"] = build_flagged_sessions_view(conn)
    return rows


def _mart_asset(table: str, deps: list, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"marts_{table}", group_name=MARTS_GROUP, kinds={"duckdb"}, deps=deps,
              description=description)
    def _asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
        with duckdb.get_connection() as conn:
            rows = build_mart(conn, table, landing.settings().options)
        context.log.info(f"marts.{table}: {rows} rows")
        return dg.MaterializeResult(metadata={"dagster/row_count": rows})

    return _asset


marts_findings = _mart_asset(
    "findings", [dg.AssetKey("recon_flags")],
    "recon.flags with each finding's stable flag_id and its review item (review_key).")
marts_session_facts = _mart_asset(
    # recomputed_cost_excl_vat is recon.session_prices.price_in_force_excl_vat
    "session_facts",
    [dg.AssetKey("lineage_sessions"), dg.AssetKey("stg_sites"), dg.AssetKey("recon_session_prices")],
    "One row per session: billed energy, revenue, start drift, sources; tokens hashed.")
marts_site_daily_kpis = _mart_asset(
    "site_daily_kpis", [marts_findings, marts_session_facts],
    "Per site and UTC day: sessions, energy, revenue, reconciliation rate, findings by class.")
marts_charger_health = _mart_asset(
    "charger_health", [marts_findings, marts_session_facts, dg.AssetKey("recon_charger_clock")],
    "Per charger: clock skew, start drift, meter anomalies and other findings.")


@dg.asset(name="marts_flagged_sessions", group_name=MARTS_GROUP, kinds={"duckdb"},
          deps=[marts_session_facts, dg.AssetKey("recon_review")],
          description="View: the review queue with decisions and session facts.")
def marts_flagged_sessions(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    with duckdb.get_connection() as conn:
        rows = build_flagged_sessions_view(conn)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


def _unique_key_check(asset, table: str, key: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=f"{table}_{key}_unique",
                    description=f"marts.{table}: {key} is unique and never null")
    def _check(duckdb: WarehouseResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            dupes, nulls = conn.execute(f"""
                select count(*) - count(distinct {key}), count(*) filter (where {key} is null)
                from marts.{table}
            """).fetchall()[0]
        return dg.AssetCheckResult(passed=dupes == 0 and nulls == 0,
                                   metadata={"duplicates": dupes, "nulls": nulls})

    return _check


findings_flag_id_unique = _unique_key_check(marts_findings, "findings", "flag_id")
session_facts_session_key_unique = _unique_key_check(marts_session_facts, "session_facts", "session_key")
charger_health_unique = _unique_key_check(marts_charger_health, "charger_health", "charge_point_id")
flagged_sessions_review_key_unique = _unique_key_check(marts_flagged_sessions, "flagged_sessions", "review_key")


@dg.asset_check(asset=marts_site_daily_kpis,
                description="reconciliation_rate and link_coverage are shares in [0, 1]; one row per site and day")
def site_daily_kpis_rates_are_shares(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        bad, dupes = conn.execute("""
            select
                count(*) filter (where reconciliation_rate not between 0 and 1
                                    or link_coverage not between 0 and 1),
                count(*) - count(distinct (site_id, day)),
            from marts.site_daily_kpis
        """).fetchall()[0]
    return dg.AssetCheckResult(passed=bad == 0 and dupes == 0,
                               metadata={"rows_out_of_range": bad, "duplicate_site_days": dupes})
