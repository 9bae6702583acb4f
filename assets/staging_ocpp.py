"""Staging layer, OCPP: frames typed to UTC and paired, then split by message kind.

Belongs here: the thin assets that build ``staging.ocpp_*`` from ``raw.ocpp_frames``
(SQL in ``assets/sql/staging/ocpp_*.sql``) and move frames that cannot be typed to
``quarantine.rejects``. Record-level table: ``staging.ocpp_frames``; the others are
derived from it and do not count in the per-file accounting.
"""

import hashlib

import dagster as dg
import duckdb

from pipeline.day_partitions import daily
from pipeline.models.staging import StgOcppFrames
from pipeline.ocpp import ocpp_params
from pipeline.quarantine import enforce, route_rejects
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table, execute, table_sql

STAGING_GROUP = "staging"
def stage_frames(conn: duckdb.DuckDBPyConnection, params: dict) -> dict:
    """Stage the frames of new and changed OCPP files, quarantine untypable ones, enforce
    the contract; the rows of unchanged files stay as they were staged.

    A file is (re)staged when its ``meta.files.records_staged`` is unknown (new or changed
    version) or when the staging SQL changed since the table was built (then every file).
    Rows of removed files go with them.
    """
    from pipeline.ingest.run import ensure_tables

    ensure_tables(conn)
    version = hashlib.sha256(table_sql("staging", "ocpp_frames").encode()).hexdigest()[:16]
    conn.execute("create table if not exists meta.staged_versions (table_name varchar primary key, sql_version varchar)")
    built = conn.execute("select sql_version from meta.staged_versions where table_name = 'staging.ocpp_frames'"
                         ).fetchall()
    exists = conn.execute("select count(*) from information_schema.tables "
                          "where table_schema = 'staging' and table_name = 'ocpp_frames'").fetchall()[0][0]
    whole = not exists or not built or built[0][0] != version
    batch = [r[0] for r in conn.execute(
        "select source_file from meta.files where source = 'ocpp' and ($whole or records_staged is null)",
        {"whole": whole}).fetchall()]
    batch_params = {**params, "batch_files": batch}
    # No transaction around this: rows created in one get transaction-local rowids,
    # which the contract's rowid slices cannot walk. A killed run leaves its batch files
    # unstaged (records_staged null), and the next run deletes and restages them.
    _note_batch(conn, None)
    if whole:
        conn.execute("drop table if exists staging.ocpp_frames").fetchall()
        conn.execute("delete from meta.staged_files").fetchall()
        conn.execute("delete from quarantine.rejects where staging_table = 'staging.ocpp_frames'").fetchall()
    else:
        # Only files that have staged rows are looked for (meta.staged_files): a scan of
        # the staged history for every new file would make each night cost more.
        stale = [r[0] for r in conn.execute("""
            select source_file from meta.staged_files
            where source_file in (select unnest($f::varchar[]))
               or source_file not in (select source_file from meta.files where source = 'ocpp')
        """, {"f": batch}).fetchall()]
        if stale:
            conn.execute("delete from staging.ocpp_frames where source_file in (select unnest($f::varchar[]))",
                         {"f": stale}).fetchall()
            conn.execute("delete from meta.staged_files where source_file in (select unnest($f::varchar[]))",
                         {"f": stale}).fetchall()
        conn.execute("delete from quarantine.rejects where staging_table = 'staging.ocpp_frames' and "
                     "(source_file in (select unnest($f::varchar[])) or source_file not in "
                     "(select source_file from meta.files where source = 'ocpp'))", {"f": batch}).fetchall()
    # the batch is typed, quarantined and checked on its own, then appended
    execute(conn, "create or replace table staging.ocpp_frames_batch as\n"
            + table_sql("staging", "ocpp_frames"), batch_params)
    routed = route_rejects(conn, "staging.ocpp_frames_batch", "ocpp", raw_table="raw.ocpp_frames",
                           recorded_as="staging.ocpp_frames", clear=False)
    contract = enforce(conn, "staging.ocpp_frames_batch", StgOcppFrames, "ocpp", raw_table="raw.ocpp_frames",
                       recorded_as="staging.ocpp_frames", clear=False)
    _note_batch(conn, "staging.ocpp_frames_batch")
    if whole:
        conn.execute("alter table staging.ocpp_frames_batch rename to ocpp_frames").fetchall()
    else:
        conn.execute("insert into staging.ocpp_frames by name select * from staging.ocpp_frames_batch").fetchall()
        conn.execute("drop table staging.ocpp_frames_batch").fetchall()
    conn.execute("insert or replace into meta.staged_versions values ('staging.ocpp_frames', $v)",
                 {"v": version}).fetchall()
    _update_staged_counts(conn, batch)
    return {"routed": routed, "contract": contract, "files": len(batch), "whole": whole}


def _note_batch(conn: duckdb.DuckDBPyConnection, table: str | None) -> None:
    """Remember per staged file its frame count and the days its frames are on
    (``meta.staged_files``), read from the batch while it is small (``None``: only make
    sure the table exists)."""
    conn.execute("create table if not exists meta.staged_files "
                 "(source_file varchar, frames bigint, days date[])").fetchall()
    if table is None:
        return
    conn.execute(f"""
        insert into meta.staged_files
        select source_file, count(*), list_sort(list(distinct cast(received_at as date)))
        from {table} group by source_file
    """).fetchall()


def _update_staged_counts(conn: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """``meta.files.records_staged`` for the staged OCPP files: frames that reached staging."""
    conn.execute("""
        update meta.files as f
        set records_staged = coalesce(s.frames, 0)
        from (
            select m.source_file, sf.frames
            from meta.files as m
            left join meta.staged_files as sf on sf.source_file = m.source_file
            where m.source = 'ocpp' and m.source_file in (select unnest($f::varchar[]))
        ) as s
        where f.source_file = s.source_file
    """, {"f": files}).fetchall()


DERIVED = (
    "staging.ocpp_calls",
    "staging.ocpp_meter_values",
    "staging.ocpp_transaction_events",
    "staging.ocpp_status",
    "staging.ocpp_authorizations",
    "staging.ocpp_boots",
)


def stage_ocpp(conn: duckdb.DuckDBPyConnection, options: dict) -> dict[str, int]:
    """Every OCPP staging table in dependency order; row count per table."""
    params = ocpp_params(options)
    stage_frames(conn, params)
    counts = {"staging.ocpp_frames": conn.execute("select count(*) from staging.ocpp_frames").fetchone()[0]}
    for table in DERIVED:
        counts[table] = build_table(conn, table, params)
    return counts


def _ensure_raw(conn: duckdb.DuckDBPyConnection) -> None:
    from pipeline.ingest.run import ensure_tables

    ensure_tables(conn)


@dg.asset(
    name="stg_ocpp_frames",
    group_name=STAGING_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetKey("raw_ocpp")],
    description="staging.ocpp_frames: every OCPP-J frame typed (UTC, message type, id, action, "
    "payload, version, retransmission flag); untypable frames go to quarantine.rejects.",
)
def stg_ocpp_frames(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    params = ocpp_params(landing.settings().options)
    with duckdb.get_connection() as conn:
        _ensure_raw(conn)
        res = stage_frames(conn, params)
        n, retrans = conn.execute(
            "select count(*), count(*) filter (where is_retransmit) from staging.ocpp_frames").fetchone()
    rejected = res["routed"].rejected + res["contract"].rejected
    top = res["routed"].top_reasons + res["contract"].top_reasons
    context.log.info(f"ocpp frames: {n} staged, {rejected} rejected, {retrans} retransmissions")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "rejected": rejected,
        "retransmissions": retrans,
        "top_reasons": dg.MetadataValue.json([list(r) for r in top]),
    })


def _derived_asset(table: str, deps: list[str], description: str) -> dg.AssetsDefinition:
    name = "stg_" + table.split(".", 1)[1]

    # Derived per day from the frames of the day's window (pipeline.engine): a night
    # re-derives the days it reconciles, not the history.
    @dg.asset(name=name, group_name=STAGING_GROUP, kinds={"duckdb"}, partitions_def=daily,
              backfill_policy=dg.BackfillPolicy.single_run(),
              deps=[dg.AssetKey(d) for d in deps], description=description)
    def _asset(duckdb: WarehouseResource, landing: LandingResource):
        params = ocpp_params(landing.settings().options)
        with duckdb.get_connection() as conn:
            n = build_table(conn, table, params)
        return dg.MaterializeResult(metadata={"dagster/row_count": n})

    return _asset


stg_ocpp_calls = _derived_asset(
    "staging.ocpp_calls", ["stg_ocpp_frames"],
    "staging.ocpp_calls: each CALL with its CALLRESULT/CALLERROR (by charger and message id) and latency.")
stg_ocpp_meter_values = _derived_asset(
    "staging.ocpp_meter_values", ["stg_ocpp_frames"],
    "staging.ocpp_meter_values: one row per sampled value, normalized to kWh/kW.")
stg_ocpp_transaction_events = _derived_asset(
    "staging.ocpp_transaction_events", ["stg_ocpp_calls", "stg_ocpp_meter_values"],
    "staging.ocpp_transaction_events: 1.6 Start/StopTransaction and 2.0.1 TransactionEvent.")
stg_ocpp_status = _derived_asset(
    "staging.ocpp_status", ["stg_ocpp_frames"],
    "staging.ocpp_status: StatusNotification per connector (2.0.1: per EVSE).")
stg_ocpp_authorizations = _derived_asset(
    "staging.ocpp_authorizations", ["stg_ocpp_calls"],
    "staging.ocpp_authorizations: Authorize requests with the CSMS's status and latency.")
stg_ocpp_boots = _derived_asset(
    "staging.ocpp_boots", ["stg_ocpp_calls"],
    "staging.ocpp_boots: BootNotification and Heartbeat with the CSMS's currentTime.")
