"""The day queue: which days a landing file touches, and which days wait to be reconciled.

Belongs here: the bookkeeping of the nightly operation in the work file, independent of
any one layer (``pipeline.day_partitions`` is the Dagster side: partitions and ranges).

- ``replace_partitions``: for a warehouse without a store (a test's temporary file),
  wraps an asset's whole-table builder so that only the rows of the run's days change;
  the other days' rows wait in a stash table that survives a crash. Day runs with a
  store compute their own window instead (``pipeline.engine``) and skip it.
- ``refresh_file_days``: which UTC days (by session start) each ingested file version
  touches, in ``meta.file_days``; the days of new, changed or removed versions are queued
  in ``meta.pending_days`` until a run has reconciled them (``mark_reconciled``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime

import duckdb

from pipeline.sql import table_exists

# Queued by chargeline before the partitions became dynamic, for changes before a fixed
# first day: "rebuild every day". ``ensure_meta`` turns it into the days it stood for.
LEGACY_GLOBAL_DAY = date(1, 1, 1)

META_DDL = (
    "create table if not exists meta.file_days (source_file varchar, content_hash varchar, day date)",
    "create table if not exists meta.pending_days (day date primary key, since_at timestamptz)",
    "create table if not exists meta.partition_stash "
    "(table_name varchar, stash varchar, day date)",
)

# Per table written by day: the day of a row, an expression over the table aliased ``t``.
# A session's day is its start (UTC) as lineage.sessions states it; a finding's day is its
# interval's or its session's; rows whose expression is null belong to every run.
DAY_OF: dict[str, str] = {
    "lineage.transactions": "cast(coalesce(t.start_received_at, t.started_at, t.stop_received_at) as date)",
    "lineage.sessions": "cast(t.started_at as date)",
    "recon.flags": """cast(coalesce(t.interval_start,
        (select min(s.started_at) from lineage.sessions as s where s.session_key = t.session_key)) as date)""",
}

# Per landing source, the days each staged record touches: (source_file, day) rows. OCPP
# frames also touch the day before, because a session is filed under its start day and a
# stop or meter value after midnight changes yesterday's session.
# OCPP files: the days staging noted per file (meta.staged_files), no scan of history.
_SOURCE_DAYS: dict[str, str] = {
    "staging.backend_sessions": "started_at",
    "staging.cdrs": "start_at",
    "staging.ems_intervals": "interval_start_at",
    "staging.location_evse_status": "snapshot_at",
}
# Sources whose records apply to every day: registry rows and token snapshots change how
# any session is read. Tariff versions touch the days they are in force.
_EVERY_DAY = ("staging.sites", "staging.evses", "staging.tokens")


def ensure_meta(conn: duckdb.DuckDBPyConnection) -> None:
    for ddl in META_DDL:
        conn.execute(ddl).fetchall()
    # a warehouse from before dynamic partitions may still queue "every day"
    conn.execute("""
        insert into meta.pending_days
        select distinct d.day, q.since_at from meta.file_days as d, meta.pending_days as q
        where q.day = $legacy and d.day is not null
        on conflict (day) do update set since_at = excluded.since_at
    """, {"legacy": LEGACY_GLOBAL_DAY}).fetchall()
    conn.execute("delete from meta.pending_days where day = $legacy", {"legacy": LEGACY_GLOBAL_DAY}).fetchall()


def _exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return table_exists(conn, table)


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    return [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = $s and table_name = $n "
        "order by ordinal_position", {"s": schema, "n": name}).fetchall()]


def _in_partitions(day_sql: str) -> str:
    """True when a row has a day (every day is a partition); dayless rows are global."""
    return f"(({day_sql}) is not null)"


# --- writing by day -------------------------------------------------------------------

@contextmanager
def replace_partitions(
    conn: duckdb.DuckDBPyConnection, table: str, days: Sequence[date], day_sql: str | None = None,
) -> Iterator[None]:
    """Let the body rebuild ``table`` whole; afterwards only ``days`` (and dayless rows) changed.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        Warehouse connection.
    table : str
        ``schema.table`` the body rebuilds (``create or replace`` or delete + insert).
    days : sequence of date
        The run's partitions. Empty means "not a partitioned run": the whole table is kept
        as the body built it.
    day_sql : str, optional
        The day of a row of ``t``; defaults to ``DAY_OF[table]``.

    Notes
    -----
    Before the body runs, the rows of every other day are copied to a stash table and the
    days it excludes are recorded in ``meta.partition_stash`` (one transaction). After the
    body, one transaction deletes the body's rows of other days, puts the stash back and
    drops it. If the process dies in between, the stash is still there: the next run
    reuses it (its rows are the pre-crash state) and also rewrites the days the killed run
    was rewriting, so no day is lost. A changed column set means the table was redefined:
    then the whole rebuilt table is kept.
    """
    ensure_meta(conn)
    if not days:
        yield
        return
    day_sql = day_sql or DAY_OF[table]
    stash = "meta.stash__" + table.replace(".", "__")
    conn.execute("begin transaction")
    try:
        leftover = [r[0] for r in conn.execute(
            "select day from meta.partition_stash where table_name = $t", {"t": table}).fetchall()]
        if not leftover and not _exists(conn, stash):
            if _exists(conn, table):
                conn.execute(f"create or replace table {stash} as select t.* from {table} as t "
                             f"where {_in_partitions(day_sql)} and not list_contains($days::date[], {day_sql})",
                             {"days": list(days)}).fetchall()
            conn.execute("insert into meta.partition_stash select $t, $s, unnest($days::date[])",
                         {"t": table, "s": stash, "days": list(days)}).fetchall()
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    rewrite = sorted(set(days) | set(leftover))

    yield

    conn.execute("begin transaction")
    try:
        if _exists(conn, stash) and _columns(conn, stash) == _columns(conn, table):
            conn.execute(f"delete from {table} as t where {_in_partitions(day_sql)} and not list_contains($days::date[], {day_sql})",
                         {"days": rewrite}).fetchall()
            conn.execute(f"insert into {table} select t.* from {stash} as t where not list_contains($days::date[], {day_sql})",
                         {"days": rewrite}).fetchall()
        elif not _exists(conn, stash):  # the table did not exist before: only the run's days
            conn.execute(f"delete from {table} as t where {_in_partitions(day_sql)} and not list_contains($days::date[], {day_sql})",
                         {"days": rewrite}).fetchall()
        conn.execute(f"drop table if exists {stash}")
        conn.execute("delete from meta.partition_stash where table_name = $t", {"t": table}).fetchall()
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


# --- which days files touch -----------------------------------------------------------

def _record_days_sql(conn: duckdb.DuckDBPyConnection) -> str:
    """``(source_file, day)`` of the staged records of the files in ``_fresh``.

    Only new file versions are read (a night costs its files, not the history): each
    table's rows are filtered to those files before their days are taken, and the days
    an every-day source applies to are the days already known plus the new ones.
    """
    fresh = "source_file in (select source_file from _fresh)"
    parts: list[str] = []
    if _exists(conn, "meta.staged_files"):
        parts.append(f"select source_file, unnest(days) as day from meta.staged_files where {fresh}")
        parts.append(f"select source_file, unnest(days) - 1 as day from meta.staged_files where {fresh}")
    for table, col in _SOURCE_DAYS.items():
        if _exists(conn, table):
            parts.append(f"select source_file, cast({col} as date) as day from {table} where {fresh}")
    own = " union ".join(parts) or "select null::varchar as source_file, null::date as day where false"
    data_days = f"select day from meta.file_days where day is not null union select day from ({own})"
    for table in _EVERY_DAY:
        if _exists(conn, table):
            parts.append(f"select distinct x.source_file, d.day from {table} as x, ({data_days}) as d "
                         f"where x.{fresh} and d.day is not null")
    if _exists(conn, "staging.tariff_versions"):
        # in force from valid_from to valid_to (open: to the last day with data)
        parts.append(f"""
            select v.source_file, d.day from staging.tariff_versions as v, ({data_days}) as d
            where v.{fresh} and d.day is not null and d.day >= cast(v.valid_from_at as date)
              and (v.valid_to_at is null or d.day <= cast(v.valid_to_at as date))""")
    return " union ".join(parts) or "select null::varchar as source_file, null::date as day where false"


def refresh_file_days(conn: duckdb.DuckDBPyConnection, now: datetime | None = None) -> list[date]:
    """Map new file versions to their days and queue the days that changed; those days.

    A file version is ``(source_file, content_hash)`` of ``meta.files``. The days of a new
    version, and the days of a version that was replaced or removed, are pending until
    reconciled: a corrected file re-opens the days its old rows were on as well as its new
    ones. Every day is a partition, whatever its year. Runs after staging.
    """
    ensure_meta(conn)
    now = now or datetime.now(UTC)
    conn.execute("begin transaction")
    try:
        conn.execute("""
            create or replace temp table _fresh as
            select f.source_file, f.content_hash from meta.files as f
            where not exists (select 1 from meta.file_days as d
                              where d.source_file = f.source_file and d.content_hash = f.content_hash)
        """).fetchall()
        conn.execute(f"""
            create or replace temp table _new_file_days as
            select fresh.source_file, fresh.content_hash, r.day
            from _fresh as fresh left join ({_record_days_sql(conn)}) as r on r.source_file = fresh.source_file
        """).fetchall()
        conn.execute("""
            create or replace temp table _touched as
            select day from _new_file_days where day is not null
            union
            select d.day from meta.file_days as d
            where d.day is not null and not exists (
                select 1 from meta.files as f
                where f.source_file = d.source_file and f.content_hash = d.content_hash)
        """).fetchall()
        conn.execute("""
            delete from meta.file_days as d where not exists (
                select 1 from meta.files as f
                where f.source_file = d.source_file and f.content_hash = d.content_hash)
        """).fetchall()
        # a version with no staged record keeps one null-day row: it is mapped, not new
        conn.execute("insert into meta.file_days select distinct source_file, content_hash, day "
                     "from _new_file_days").fetchall()
        conn.execute("""
            insert into meta.pending_days
            select distinct day, $now::timestamptz from _touched
            on conflict (day) do update set since_at = excluded.since_at
        """, {"now": now}).fetchall()
        touched = [r[0] for r in conn.execute("select day from _touched order by day").fetchall()]
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return touched


def pending_days(conn: duckdb.DuckDBPyConnection) -> list[tuple[date, datetime]]:
    """Days waiting to be reconciled, with when they were queued (read-only safe)."""
    if not _exists(conn, "meta.pending_days"):
        return []
    return [tuple(r) for r in conn.execute("select day, since_at from meta.pending_days order by day").fetchall()]


def mark_reconciled(conn: duckdb.DuckDBPyConnection, days: Sequence[date] | None, as_of: datetime) -> int:
    """Take ``days`` off the queue unless they were queued again after ``as_of`` (run start).

    ``None`` means a run without partitions: it rewrote every day, so every queued day goes.
    """
    ensure_meta(conn)
    if days is None:
        rows = conn.execute("delete from meta.pending_days where since_at <= $as_of returning day",
                            {"as_of": as_of}).fetchall()
    else:
        rows = conn.execute(
            "delete from meta.pending_days where list_contains($days::date[], day) and since_at <= $as_of "
            "returning day", {"days": list(days), "as_of": as_of}).fetchall()
    return len(rows)
