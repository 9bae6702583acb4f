"""Day engines: each reconcile run computes in its own DuckDB file from a bounded window.

Belongs here: the storage side of a night, between the *work* file (raw, staging, the
day queue: one writer, the ingest) and the published Delta tables.

- ``work_path`` / ``store_location`` / ``engine_path``: where each part lives, from the
  analysts' warehouse path (``data/warehouse.duckdb`` -> ``data/warehouse.work.duckdb``,
  ``data/warehouse.tables/``, ``data/warehouse.engines/<run>.duckdb``).
- ``prepare_engine``: copies into a fresh engine file the staged inputs of the run's days
  plus a lookback (sessions that cross midnight, late stops, the state a day starts in),
  under a shared lock on the work file, so the rest of the run never touches it and two
  runs on two days compute side by side. The night costs the days it reconciles: the
  window, not the history.
- ``publish_engine``: writes the run's own days of every table it computed to the store
  (one predicate overwrite per table), then takes the days off the queue in the work file.
- ``publish_work``: the ingest's tables (raw and frames by file, the rest whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.publish import arrow_of, columns_of, locked, publish, view_definitions
from pipeline.storage import PART_COLUMN, TableStore

DEFAULT_LOOKBACK_DAYS = 1

# --- where things live ------------------------------------------------------------------


def work_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.stem + ".work.duckdb")


def store_location(warehouse: Path, options: dict | None = None) -> str:
    configured = ((options or {}).get("storage") or {}).get("location")
    return configured or (warehouse.with_name(warehouse.stem + ".tables")).resolve().as_uri()


def engine_path(warehouse: Path, run_id: str) -> Path:
    return warehouse.with_name(warehouse.stem + ".engines") / f"{run_id}.duckdb"


def work_lock(work: Path) -> Path:
    return work.with_name(work.name + ".lock")


# --- the window a run reads -------------------------------------------------------------

# Staged inputs of a day run: (table, time column) copied for the window; None = whole.
WINDOWED: dict[str, str | None] = {
    "staging.ocpp_frames": "received_at",
    "staging.backend_sessions": "started_at",
    "staging.cdrs": "start_at",
    "staging.ems_intervals": "interval_start_at",
    "staging.location_evse_status": "snapshot_at",
    "staging.sites": None,
    "staging.evses": None,
    "staging.tariff_versions": None,
    "staging.tokens": None,
    "meta.files": None,
}
# Copied with their parents: periods of the copied CDRs.
_CHILDREN = {
    "staging.cdr_charging_periods": (
        "select p.* from src.staging.cdr_charging_periods as p semi join staging.cdrs as c "
        "on p.party_key = c.country_code || ':' || c.party_id and p.cdr_id = c.cdr_id"),
}
# The state a window starts in: the last published status of each EVSE, and the last
# StatusNotification of each connector in the week before the window (a bounded read:
# a connector silent for longer starts the window unknown, as after a reboot).
_CARRY_IN = {
    "staging.location_evse_status": """
        select * from src.staging.location_evse_status
        where snapshot_at < $lo
        qualify snapshot_at = max(snapshot_at) over (partition by location_id, evse_uid)""",
    "staging.ocpp_frames": """
        select * from src.staging.ocpp_frames
        where received_at < $lo and received_at >= $lo - interval 7 day
          and msg_type = 2 and action = 'StatusNotification'
        qualify row_number() over (
            partition by charge_point_id, payload->>'connectorId', payload->>'evseId'
            order by received_at desc) = 1""",
}


def window(days: Sequence[date], lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> tuple[datetime, datetime]:
    first, last = min(days), max(days)
    lo = datetime.combine(first - timedelta(days=lookback_days), time(), UTC)
    hi = datetime.combine(last + timedelta(days=1 + lookback_days), time(), UTC)
    return lo, hi


def _table_exists(conn: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    schema, name = table.split(".", 1)
    return bool(conn.execute(
        "select count(*) from duckdb_tables() where database_name = $c and schema_name = $s and table_name = $n",
        {"c": catalog, "s": schema, "n": name}).fetchall()[0][0])


# Engines in use by this process, each with its lock file held open: an engine whose
# lock nobody holds belongs to a killed run (``drop_abandoned``).
_HELD: dict[Path, object] = {}


def _hold(engine: Path) -> None:
    import fcntl

    if engine in _HELD:
        return
    fh = open(engine.with_name(engine.name + ".lock"), "a+")  # noqa: SIM115 - held until drop_engine
    fcntl.flock(fh, fcntl.LOCK_EX)
    _HELD[engine] = fh


def drop_abandoned(warehouse: Path) -> list[Path]:
    """Remove the engine files of runs that died (kill -9): nobody holds their lock."""
    import fcntl

    folder = warehouse.with_name(warehouse.stem + ".engines")
    removed = []
    for lock in folder.glob("*.duckdb.lock") if folder.is_dir() else []:
        engine = lock.with_name(lock.name[: -len(".lock")])
        if engine in _HELD:
            continue
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run in another process
            drop_engine(engine)
            lock.unlink(missing_ok=True)
            removed.append(engine)
    return removed


def prepare_engine(engine: Path, work: Path, days: Sequence[date], lookback_days: int,
                   configure) -> None:
    """Create ``engine`` with the window's inputs copied from ``work`` (idempotent per file)."""
    engine.parent.mkdir(parents=True, exist_ok=True)
    _hold(engine)
    done = engine.with_name(engine.name + ".ready")
    if done.exists():
        return
    engine.unlink(missing_ok=True)
    lo, hi = window(days, lookback_days)
    conn = configure(duckdb.connect(str(engine)))
    try:
        with locked(work_lock(work), exclusive=False):
            conn.execute("attach $p as src (read_only)", {"p": str(work)})
            try:
                for table, col in WINDOWED.items():
                    if not _table_exists(conn, "src", table):
                        continue
                    sql = f"select * from src.{table}"
                    if col:
                        sql += f" where {col} >= $lo and {col} < $hi"
                        if table in _CARRY_IN:
                            sql += " union all " + _CARRY_IN[table]
                    conn.execute(f"create or replace table {table} as {sql}",
                                 {"lo": lo, "hi": hi} if col else {}).fetchall()
                for table, sql in _CHILDREN.items():
                    if _table_exists(conn, "src", table):
                        conn.execute(f"create or replace table {table} as {sql}").fetchall()
                conn.execute("create or replace table meta.engine_window as select $lo::timestamptz as lo_at, "
                             "$hi::timestamptz as hi_at, $days::date[] as days", {"lo": lo, "hi": hi,
                                                                                   "days": list(days)}).fetchall()
            finally:
                conn.execute("detach src")
        conn.execute("checkpoint")
    finally:
        conn.close()
    done.touch()


def drop_engine(engine: Path) -> None:
    for p in (engine, engine.with_name(engine.name + ".wal"), engine.with_name(engine.name + ".ready")):
        p.unlink(missing_ok=True)
    fh = _HELD.pop(engine, None)
    if fh is not None:
        engine.with_name(engine.name + ".lock").unlink(missing_ok=True)
        fh.close()


# --- what a day run writes ----------------------------------------------------------------

# The day of a row of each table a day run computes (``t``: the row). A null day means a
# charger- or network-level row: it belongs to the run's last day, and the published view
# keeps each key's newest (pipeline.publish.LATEST_KEYS).
_SESSION_DAY = "(select min(s.started_at) from lineage.sessions as s where s.session_key = t.session_key)"
DAY_OF: dict[str, str] = {
    "staging.ocpp_frames": "t.received_at",
    "staging.ocpp_calls": "t.call_at",
    "staging.ocpp_meter_values": "t.received_at",
    "staging.ocpp_transaction_events": "t.received_at",
    "staging.ocpp_status": "t.received_at",
    "staging.ocpp_authorizations": "t.requested_at",
    "staging.ocpp_boots": "t.requested_at",
    "lineage.transactions": "coalesce(t.start_received_at, t.started_at, t.stop_received_at)",
    "lineage.sessions": "t.started_at",
    "recon.flags": f"coalesce(t.interval_start, {_SESSION_DAY})",
    "marts.findings": f"coalesce(t.interval_start, {_SESSION_DAY})",
    "recon.review": f"coalesce(t.started_at, {_SESSION_DAY})",
    "recon.session_prices": "t.started_at",
    "recon.session_intervals": "t.interval_start_at",  # a session's intervals: the window holds it whole
    "recon.site_intervals": "t.interval_start_at",
    "recon.attribution_judgement": "t.interval_start_at",
    "recon.status_timeline": "t.valid_from_at",
    "recon.status_published": "t.published_from_at",
    "recon.status_comparison": "t.from_at",
    "marts.session_facts": "t.session_day",
    "marts.site_daily_kpis": "t.day",
    "marts.session_energy_sources": _SESSION_DAY,
    "recon.charger_clock": "null",
    "marts.charger_health": "null",
    "marts.auth_latency": "null",
}
# Rows a day run leaves out although it computed them: a charger or site review item
# whose finding this window did not see belongs to the day that saw it.
KEEP: dict[str, str] = {"recon.review": "(t.finding_present or t.session_key is not null)"}
# Matching internals (candidates, scores): the last run's window, for debugging a match.
LATEST_RUN = (
    "lineage.candidates_ocpp_backend", "lineage.candidates_session_cdr", "lineage.link_candidates",
    "lineage.link_ocpp_backend", "lineage.link_session_cdr", "lineage.links", "lineage.match_backend",
    "lineage.match_cdrs", "lineage.match_ocpp", "lineage.stage_sessions",
)
# Inputs a run copied (published by the ingest) and bookkeeping kept in the work file.
# The window's frames are published by the run, per day: the ingest never reads them back.
_NOT_PUBLISHED = ("meta.", "staging.backend_sessions", "staging.cdrs",
                  "staging.cdr_charging_periods", "staging.ems_intervals", "staging.location_evse_status",
                  "staging.sites", "staging.evses", "staging.tariff_versions", "staging.tokens",
                  "recon.review_log",  # published from the decision store by every publish
                  "raw.", "quarantine.")


def engine_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute("select schema_name || '.' || table_name from duckdb_tables() "
                        "where database_name = current_database() order by 1").fetchall()
    return [r[0] for r in rows if not any(r[0] == p or (p.endswith(".") and r[0].startswith(p))
                                          for p in _NOT_PUBLISHED)]


def publish_engine(conn: duckdb.DuckDBPyConnection, store: TableStore, days: Sequence[date]) -> dict[str, int]:
    """Write ``days`` of every table the run computed; rows written per table."""
    days = sorted(set(days))
    out: dict[str, int] = {}
    for table in engine_tables(conn):
        cols = columns_of(conn, table)
        if table in LATEST_RUN:
            out[table] = store.write_whole(table, arrow_of(conn, f"select * from {table}"), cols)
            continue
        if table not in DAY_OF:
            raise KeyError(f"{table}: a day run built it but pipeline.engine.DAY_OF does not say its day")
        data = arrow_of(conn, f"""
            select t.*, coalesce(cast({DAY_OF[table]} as date), $last::date) as {PART_COLUMN}
            from {table} as t
            where coalesce(cast({DAY_OF[table]} as date), $last::date) in (select unnest($days::date[]))
              and {KEEP.get(table, "true")}
        """, {"days": days, "last": days[-1]})
        out[table] = store.write_days(table, data, days, cols)
    return out


def engine_views(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return view_definitions(conn, ("lineage", "recon", "marts"))


# --- what the ingest writes -----------------------------------------------------------------

# Record-level tables keyed by file: a night appends its new files.
BY_FILE = ("raw.registry_sites", "raw.registry_evses", "raw.ocpp_frames", "raw.backend_sessions", "raw.cdrs",
           "raw.tariffs", "raw.ems_intervals", "raw.locations", "raw.tokens")
WORK_WHOLE = ("staging.sites", "staging.evses", "staging.backend_sessions", "staging.cdrs",
              "staging.cdr_charging_periods", "staging.tariff_versions", "staging.ems_intervals",
              "staging.location_evse_status", "staging.tokens", "quarantine.rejects", "meta.files",
              "meta.file_days", "meta.pending_days", "meta.integrity_results")


def publish_work(conn: duckdb.DuckDBPyConnection, store: TableStore) -> dict[str, int]:
    """Write the work file's changes to the store; rows written per table.

    ``meta.published_files`` remembers which version of each file a by-file table holds,
    so a night writes only new, changed and removed files.
    """
    conn.execute("create table if not exists meta.published_files "
                 "(table_name varchar, source_file varchar, content_hash varchar)")
    out: dict[str, int] = {}
    for table in BY_FILE:
        if not _table_exists(conn, current_catalog(conn), table):
            continue
        stale = [r[0] for r in conn.execute("""
            select p.source_file from meta.published_files as p
            where p.table_name = $t and not exists (
                select 1 from meta.files as f where f.source_file = p.source_file and f.content_hash = p.content_hash)
        """, {"t": table}).fetchall()]
        fresh = conn.execute("""
            select f.source_file, f.content_hash from meta.files as f
            where not exists (select 1 from meta.published_files as p where p.table_name = $t
                              and p.source_file = f.source_file and p.content_hash = f.content_hash)
        """, {"t": table}).fetchall()
        if not stale and not fresh and store.exists(table):
            continue
        # rows are appended in ingest order: the time filter lets DuckDB skip the row
        # groups of earlier nights instead of scanning the history for the new files
        data = arrow_of(conn, f"""
            select t.* from {table} as t
            where t.ingested_at >= (select min(ingested_at) from meta.files
                                    where source_file in (select unnest($f::varchar[])))
              and t.source_file in (select unnest($f::varchar[]))""", {"f": [f for f, _ in fresh]})
        out[table] = store.write_files(table, data, stale + [f for f, _ in fresh], columns_of(conn, table))
        conn.execute("delete from meta.published_files where table_name = $t and "
                     "source_file in (select unnest($f::varchar[]))",
                     {"t": table, "f": stale + [f for f, _ in fresh]}).fetchall()
        conn.execute("insert into meta.published_files select $t, unnest($f::varchar[]), unnest($h::varchar[])",
                     {"t": table, "f": [f for f, _ in fresh], "h": [h for _, h in fresh]}).fetchall()
    for table in WORK_WHOLE:
        if _table_exists(conn, current_catalog(conn), table):
            out[table] = store.write_whole(table, arrow_of(conn, f"select * from {table}"), columns_of(conn, table))
    return out


def current_catalog(conn: duckdb.DuckDBPyConnection) -> str:
    return conn.execute("select current_database()").fetchall()[0][0]


# --- the end of a run ---------------------------------------------------------------------

_DECISION_COLUMNS = [("review_key", "VARCHAR"), ("session_key", "VARCHAR"), ("status", "VARCHAR"),
                     ("reviewer", "VARCHAR"), ("note", "VARCHAR"), ("decided_at", "TIMESTAMP WITH TIME ZONE")]
_LOG_COLUMNS = [("log_id", "BIGINT"), ("review_key", "VARCHAR"), ("session_key", "VARCHAR"),
                ("old_status", "VARCHAR"), ("new_status", "VARCHAR"), ("reviewer", "VARCHAR"), ("note", "VARCHAR"),
                ("decided_at", "TIMESTAMP WITH TIME ZONE")]


def publish_decisions(store: TableStore, warehouse: Path, options: dict | None = None) -> int:
    """The decision store's current decisions and log, so every publish shows them
    (``recon.review`` lays ``recon.review_decisions`` over the queue: pipeline.publish)."""
    from pipeline.decisions import DecisionStore, store_path

    decisions = DecisionStore(store_path(warehouse, options))
    rows = decisions.decisions()
    log = decisions.log()

    def table(cols, values):
        return pa.table({c: pa.array([v[i] for v in values], _ARROW[t]) for i, (c, t) in enumerate(cols)})

    store.write_whole("recon.review_decisions", table(_DECISION_COLUMNS, rows), _DECISION_COLUMNS)
    store.write_whole("recon.review_log", table(_LOG_COLUMNS, [
        (d.log_id, d.review_key, d.session_key, d.old_status, d.new_status, d.reviewer, d.note, d.decided_at)
        for d in log]), _LOG_COLUMNS)
    return len(rows)


_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC")}

def _connect_work(work: Path) -> duckdb.DuckDBPyConnection:
    from pipeline.warehouse import connect

    return connect(work)


def finish_ingest(warehouse: Path, options: dict | None = None) -> dict[str, int]:
    """After an ingest run: publish what it changed, then the analysts' views."""
    work = work_path(warehouse)
    store = TableStore(store_location(warehouse, options))
    if not work.exists():
        return {}
    with locked(work_lock(work)):
        conn = _connect_work(work)
        try:
            written = publish_work(conn, store)
        finally:
            conn.close()
    publish_decisions(store, warehouse, options)
    publish(store, warehouse)
    # superseded files go once no reader can still hold a view of them
    keep = float(((options or {}).get("storage") or {}).get("keep_superseded_hours", 168))
    store.vacuum(keep)
    return written


def finish_day_run(warehouse: Path, run_id: str, days: Sequence[date], as_of: datetime, success: bool,
                   options: dict | None = None) -> dict[str, int]:
    """After a run of ``days``: publish its tables, dequeue its days, refresh the views.

    A failed run publishes nothing and its days stay queued; its integrity results are
    still kept (they say what went wrong). The engine file is removed either way: the
    next run prepares its own.
    """
    from pipeline.day_queue import mark_reconciled
    from pipeline.integrity import ensure_table

    engine = engine_path(warehouse, run_id)
    work = work_path(warehouse)
    store = TableStore(store_location(warehouse, options))
    written: dict[str, int] = {}
    views: list[tuple[str, str]] = []
    integrity = None
    if engine.exists():
        conn = duckdb.connect(str(engine))
        try:
            conn.execute("SET TimeZone='UTC'")
            if success:
                written = publish_engine(conn, store, days)
                views = engine_views(conn)
            if _table_exists(conn, current_catalog(conn), "meta.integrity_results"):
                integrity = arrow_of(conn, "select * from meta.integrity_results")
        finally:
            conn.close()
    with locked(work_lock(work)):
        w = _connect_work(work)
        try:
            if integrity is not None and integrity.num_rows:
                ensure_table(w)
                w.register("_engine_integrity", integrity)
                w.execute("delete from meta.integrity_results where run_id in "
                          "(select run_id from _engine_integrity)").fetchall()
                w.execute("insert into meta.integrity_results by name select * from _engine_integrity").fetchall()
                w.unregister("_engine_integrity")
            if success:
                mark_reconciled(w, list(days), as_of)
            for table in ("meta.pending_days", "meta.integrity_results"):
                if _table_exists(w, current_catalog(w), table):
                    store.write_whole(table, arrow_of(w, f"select * from {table}"), columns_of(w, table))
        finally:
            w.close()
    publish_decisions(store, warehouse, options)
    publish(store, warehouse, views)
    drop_engine(engine)
    return written
