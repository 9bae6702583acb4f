"""The settlement review queue: ``recon.review`` and its audit trail ``recon.review_log``.

Belongs here: syncing the queue from ``recon.flags`` (an upsert that keeps decisions),
recording decisions, resolving the keys people type, and reading the queue for the CLI,
the report and the export. Rendering belongs to ``pipeline.commands.review`` and
``pipeline.report``.

One review item per flagged session (``review_key = session_key``) and one per charger,
EVSE or site finding (``review_key = 'flag:' || flag_id``; the identity is documented in
``assets/sql/marts/findings.sql`` and docs/review.md). A sync never deletes an item or
touches its decision: a finding that vanished after new data is marked
``finding_present = false``, and the decision stays.

Decisions themselves live in the decision store (``pipeline.decisions``: SQLite beside the
warehouse), never only in the warehouse a night rewrites: ``set_status`` records there
first, and every sync copies the store's decisions and log into ``recon.review`` and
``recon.review_log``. ``store_queue_connection`` serves the queue from the store's mirror
when a running night holds the warehouse.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.decisions import DecisionStore, store_path
from pipeline.sql import execute, load_sql, query, table_exists

STATUSES = ("open", "confirmed", "dismissed", "resolved")
SEVERITIES = ("info", "warn", "error")
FINDINGS_SQL = "assets/sql/marts/findings.sql"

# Names other layers may give the same quantity in lineage.sessions; the first present
# wins (coalesced in this order). lineage.sessions is specified by role in the contract,
# not column by column, so reading it by role keeps the queue working while it evolves.
SESSION_START_COLUMNS = (
    "started_at", "ocpp_started_at", "started_at_ocpp", "backend_started_at",
    "started_at_backend", "cdr_start_at", "cdr_started_at", "start_at_cdr", "started_at_cdr",
)

# A contract-shaped, empty recon.flags for warehouses where the checks have not run yet.
_EMPTY_FLAGS = """(select
    null::varchar as session_key, null::varchar as "check", null::varchar as severity,
    null::varchar as site_id, null::varchar as site_type, null::varchar as charge_point_id,
    null::varchar as evse_uid, null::varchar as ocpp_transaction_id,
    null::varchar as backend_session_id, null::varchar as cdr_id,
    null::timestamptz as interval_start, null::double as money_at_risk,
    null::varchar as currency, null::json as evidence, null::varchar as explanation
    where false)"""

REVIEW_DDL = """
create table if not exists recon.review (
    review_key varchar not null,
    session_key varchar,
    status varchar not null default 'open',
    reviewer varchar,
    note varchar,
    decided_at timestamptz,
    checks varchar[],
    max_severity varchar,
    money_at_risk double,
    currency varchar,
    n_findings integer,
    flag_ids varchar[],
    site_id varchar,
    site_type varchar,
    charge_point_id varchar,
    evse_uid varchar,
    ocpp_transaction_id varchar,
    backend_session_id varchar,
    cdr_id varchar,
    started_at timestamptz,
    first_flagged_at timestamptz not null,
    last_seen_at timestamptz not null,
    finding_present boolean not null default true
);
create sequence if not exists recon.review_log_seq;
create table if not exists recon.review_log (
    log_id bigint not null default nextval('recon.review_log_seq'),
    review_key varchar not null,
    session_key varchar,
    old_status varchar,
    new_status varchar not null,
    reviewer varchar,
    note varchar,
    decided_at timestamptz not null
);
"""

# Columns the sync refreshes from the current findings; everything else is the decision.
_FINDING_COLUMNS = (
    "session_key", "checks", "max_severity", "money_at_risk", "currency", "n_findings",
    "flag_ids", "site_id", "site_type", "charge_point_id", "evse_uid", "ocpp_transaction_id",
    "backend_session_id", "cdr_id", "started_at",
)


@dataclass(frozen=True)
class SyncReport:
    """What one sync changed in ``recon.review``."""

    items: int
    new: int
    refreshed: int
    disappeared: int
    reappeared: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One recorded decision (also a row of ``recon.review_log``)."""

    review_key: str
    old_status: str
    new_status: str
    reviewer: str
    note: str | None
    decided_at: datetime


class KeyNotFound(LookupError):
    """No review item matches the key."""


class AmbiguousKey(LookupError):
    """More than one review item matches the key."""

    def __init__(self, key: str, matches: list[str]):
        super().__init__(f"{key!r} matches {len(matches)} review items: {', '.join(matches[:10])}")
        self.matches = matches


def table_columns(conn: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    schema, table = qualified.split(".", 1)
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = $s and table_name = $t order by ordinal_position",
        {"s": schema, "t": table},
    ).fetchall()
    return [r[0] for r in rows]


def coalesce_expr(present: list[str], candidates: tuple[str, ...], alias: str, cast: str) -> str:
    """``coalesce(<present candidates>)`` cast to ``cast``, or a typed null when none exist."""
    cols = [f'{alias}."{c}"' for c in candidates if c in present]
    if not cols:
        return f"null::{cast}"
    inner = cols[0] if len(cols) == 1 else f"coalesce({', '.join(cols)})"
    return f"try_cast({inner} as {cast})"


def findings_sql(conn: duckdb.DuckDBPyConnection) -> str:
    """The findings query over ``recon.flags``, or over an empty stand-in when it is missing."""
    sql = load_sql(FINDINGS_SQL)
    if table_exists(conn, "recon.flags"):
        return sql
    return sql.replace("from recon.flags as f", f"from {_EMPTY_FLAGS} as f")


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in REVIEW_DDL.split(";"):
        if statement.strip():
            execute(conn, statement)


def _now() -> datetime:
    return datetime.now(UTC)


def store_for(conn: duckdb.DuckDBPyConnection) -> DecisionStore:
    """The decision store beside the warehouse file ``conn`` is connected to."""
    path = conn.execute(
        "select path from duckdb_databases() where database_name = current_database()").fetchall()[0][0]
    if not path or path == ":memory:":
        raise ValueError("an in-memory warehouse has no decision store beside it: pass store=")
    return DecisionStore(store_path(path))


def _apply_store(conn: duckdb.DuckDBPyConnection, store: DecisionStore) -> None:
    """Copy the store's decisions and log over ``recon.review`` / ``recon.review_log``
    (inside the caller's transaction)."""
    decisions = store.decisions()
    execute(conn, """create or replace temp table _decisions (review_key varchar, session_key varchar,
        status varchar, reviewer varchar, note varchar, decided_at timestamptz)""")
    if decisions:
        conn.executemany("insert into _decisions values (?, ?, ?, ?, ?, ?)", decisions)
    execute(conn, """
        update recon.review set status = d.status, reviewer = d.reviewer, note = d.note,
                                decided_at = d.decided_at
        from _decisions as d where recon.review.review_key = d.review_key
    """)
    execute(conn, "drop table _decisions")
    execute(conn, "delete from recon.review_log")
    log = [(d.log_id, d.review_key, d.session_key, d.old_status, d.new_status, d.reviewer, d.note,
            d.decided_at) for d in store.log()]
    if log:
        conn.executemany("insert into recon.review_log values (?, ?, ?, ?, ?, ?, ?, ?)", log)


def _adopt_legacy(conn: duckdb.DuckDBPyConnection, store: DecisionStore) -> None:
    """Decisions a warehouse holds that an empty store lacks (a warehouse from before the
    store, or a store file lost): the store adopts them rather than resetting them."""
    decided = conn.execute("""select review_key, session_key, status, reviewer, note, decided_at
                              from recon.review where decided_at is not null""").fetchall()
    log = conn.execute("""select review_key, session_key, old_status, new_status, reviewer, note,
                          decided_at from recon.review_log order by log_id""").fetchall()
    if decided or log:
        store.import_legacy(decided, log)


def sync_review(conn: duckdb.DuckDBPyConnection, at: datetime | None = None,
                store: DecisionStore | None = None) -> SyncReport:
    """Upsert the queue from ``recon.flags`` by ``review_key``, keeping every decision.

    Items whose findings are present are refreshed (checks, severity, money, ids) and
    marked present; items with no finding any more are marked ``finding_present = false``
    and keep their status, reviewer and note. New items start ``open``. Decisions and the
    log are then laid over from ``store`` (default: the one beside the warehouse), and the
    store's queue mirror is refreshed.
    """
    at = at or _now()
    store = store or store_for(conn)
    ensure_tables(conn)
    _adopt_legacy(conn, store)
    start_join, start_expr = "", "null::timestamptz"
    if table_exists(conn, "lineage.sessions"):
        present = table_columns(conn, "lineage.sessions")
        if "session_key" in present:
            start_expr = f"min({coalesce_expr(present, SESSION_START_COLUMNS, 'ls', 'timestamptz')})"
            start_join = (
                "left join (select distinct on (session_key) * from lineage.sessions) as ls"
                " on ls.session_key = fi.session_key"
            )
    current = f"""
        with fi as ({findings_sql(conn)})
        select
            fi.review_key,
            max(fi.session_key) as session_key,
            list_sort(list_distinct(list(fi."check"))) as checks,
            case max(fi.severity_rank) when 3 then 'error' when 2 then 'warn' else 'info' end
                as max_severity,
            coalesce(sum(fi.money_at_risk), 0)::double as money_at_risk,
            case when count(distinct fi.currency) > 1 then 'MIXED' else max(fi.currency) end
                as currency,
            count(*)::integer as n_findings,
            list_sort(list_distinct(list(fi.flag_id))) as flag_ids,
            max(fi.site_id) as site_id,
            max(fi.site_type) as site_type,
            max(fi.charge_point_id) as charge_point_id,
            max(fi.evse_uid) as evse_uid,
            max(fi.ocpp_transaction_id) as ocpp_transaction_id,
            max(fi.backend_session_id) as backend_session_id,
            max(fi.cdr_id) as cdr_id,
            coalesce({start_expr}, min(fi.interval_start)) as started_at,
        from fi
        {start_join}
        group by fi.review_key
    """
    execute(conn, "begin transaction")
    try:
        execute(conn, f"create or replace temp table _review_current as {current}")
        refresh = ", ".join(f"{c} = cur.{c}" for c in _FINDING_COLUMNS)
        counts = conn.execute("""
            select
                count(*) filter (where r.review_key is null),
                count(*) filter (where r.review_key is not null),
                count(*) filter (where r.review_key is not null and not r.finding_present)
            from _review_current as cur left join recon.review as r using (review_key)
        """).fetchall()[0]
        disappeared = conn.execute("""
            select count(*) from recon.review
            where finding_present and review_key not in (select review_key from _review_current)
        """).fetchall()[0][0]
        execute(conn, f"""
            update recon.review set {refresh}, last_seen_at = $at, finding_present = true
            from _review_current as cur where recon.review.review_key = cur.review_key
        """, {"at": at})
        cols = ", ".join(_FINDING_COLUMNS)
        execute(conn, f"""
            insert into recon.review (review_key, status, first_flagged_at, last_seen_at,
                                      finding_present, {cols})
            select cur.review_key, 'open', $at, $at, true, {', '.join(f'cur.{c}' for c in _FINDING_COLUMNS)}
            from _review_current as cur
            where cur.review_key not in (select review_key from recon.review)
        """, {"at": at})
        execute(conn, """
            update recon.review set finding_present = false
            where finding_present and review_key not in (select review_key from _review_current)
        """)
        _apply_store(conn, store)
        items = conn.execute("select count(*) from recon.review").fetchall()[0][0]
        execute(conn, "drop table _review_current")
        execute(conn, "commit")
    except BaseException:
        execute(conn, "rollback")
        raise
    store.replace_items(query(conn, "select * from recon.review").to_dicts(), at)
    return SyncReport(items=items, new=counts[0], refreshed=counts[1], disappeared=disappeared,
                      reappeared=counts[2])


def resolve_key(conn: duckdb.DuckDBPyConnection, key: str) -> str:
    """The ``review_key`` a user's KEY names.

    KEY may be a review key, session key, flag id, CDR id, backend session id, OCPI
    session id or ``charger:transaction`` (as for ``chargeline trace``).
    """
    if not table_exists(conn, "recon.review"):
        raise KeyNotFound("no review queue yet")
    key = key.strip()
    flag = key.removeprefix("flag:")
    matches = {r[0] for r in conn.execute("""
        select review_key from recon.review
        where review_key = $k or session_key = $k or list_contains(flag_ids, $f)
           or cdr_id = $k or backend_session_id = $k
           or charge_point_id || ':' || ocpp_transaction_id = $k
    """, {"k": key, "f": flag}).fetchall()}
    if not matches and table_exists(conn, "lineage.sessions"):
        present = set(table_columns(conn, "lineage.sessions"))
        conds = [f'ls."{c}" = $k' for c in ("cdr_id", "backend_session_id", "ocpi_session_id")
                 if c in present]
        if {"charge_point_id", "ocpp_transaction_id"} <= present:
            conds.append("ls.charge_point_id || ':' || ls.ocpp_transaction_id = $k")
        if conds and "session_key" in present:
            matches = {r[0] for r in conn.execute(f"""
                select distinct r.review_key from lineage.sessions as ls
                join recon.review as r on r.session_key = ls.session_key
                where {' or '.join(conds)}
            """, {"k": key}).fetchall()}
    if not matches:
        raise KeyNotFound(f"no review item matches {key!r}")
    if len(matches) > 1:
        raise AmbiguousKey(key, sorted(matches))
    return matches.pop()


def default_reviewer() -> str:
    try:
        return os.environ.get("CHARGELINE_REVIEWER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def set_status(
    conn: duckdb.DuckDBPyConnection,
    key: str,
    status: str,
    note: str | None = None,
    reviewer: str | None = None,
    at: datetime | None = None,
    store: DecisionStore | None = None,
) -> Decision:
    """Record a decision on the item KEY names in the decision store, then show it in
    ``recon.review`` / ``recon.review_log`` of ``conn`` at once.

    A decision without a note keeps the item's earlier note; the log keeps what was given.
    ``conn`` may be the store's own queue (``store_queue_connection``) while a night holds
    the warehouse: the decision reaches the warehouse with the next sync.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    at = at or _now()
    reviewer = reviewer or default_reviewer()
    store = store or store_for(conn)
    review_key = resolve_key(conn, key)
    session_key = conn.execute(
        "select session_key from recon.review where review_key = $k", {"k": review_key}).fetchall()[0][0]
    d = store.record(review_key, session_key, status, reviewer, note, at)
    execute(conn, "begin transaction")
    try:
        execute(conn, """
            update recon.review
            set status = $s, reviewer = $r, note = coalesce($n, note), decided_at = $at
            where review_key = $k
        """, {"s": status, "r": reviewer, "n": note, "at": at, "k": review_key})
        execute(conn, """
            insert into recon.review_log
                (log_id, review_key, session_key, old_status, new_status, reviewer, note, decided_at)
            values ($id, $k, $sk, $o, $s, $r, $n, $at)
        """, {"id": d.log_id, "k": review_key, "sk": session_key, "o": d.old_status, "s": status,
              "r": reviewer, "n": note, "at": at})
        execute(conn, "commit")
    except BaseException:
        execute(conn, "rollback")
        raise
    return Decision(review_key, d.old_status, status, reviewer, note, at)


def review_connection(warehouse, store: DecisionStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for the review commands: every published table of ``warehouse``
    (attached read-only, so a night, a publish or an analyst never waits for a clerk) and a
    ``recon.review`` / ``recon.review_log`` of the published queue with every decision the
    store holds now laid over it. Without a published warehouse: the store's own queue.
    """
    if warehouse is None:
        return store_queue_connection(store)
    from pipeline.warehouse import configure

    conn = configure(duckdb.connect())
    try:
        conn.execute("attach $p as wh (read_only)", {"p": str(warehouse)})
    except duckdb.IOException as exc:  # someone holds the file for writing (not a night: it never does)
        if "lock" not in str(exc).lower():
            raise
        conn.close()
        print(f"warehouse busy (another process holds it): the queue as of {store.items_synced_at() or 'never'}, "
              "decisions current", file=sys.stderr)
        return store_queue_connection(store)
    rows = conn.execute("select schema_name, table_name from duckdb_tables() where database_name = 'wh' "
                        "union all select schema_name, view_name from duckdb_views() "
                        "where database_name = 'wh' and not internal").fetchall()
    published = {f"{s}.{n}" for s, n in rows}
    for schema, name in rows:
        if f"{schema}.{name}" in ("recon.review", "recon.review_log") or schema in ("main", "information_schema",
                                                                                   "pg_catalog"):
            continue
        conn.execute(f'create schema if not exists "{schema}"')
        conn.execute(f'create or replace view "{schema}"."{name}" as select * from wh."{schema}"."{name}"')
    ensure_tables(conn)
    if "recon.review" in published:
        execute(conn, "insert into recon.review by name select * from wh.recon.review")
        _apply_store(conn, store)
    else:
        conn.close()
        return store_queue_connection(store)
    return conn


def store_queue_connection(store: DecisionStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose ``recon.review`` / ``recon.review_log`` come from the
    store: the queue as of the last sync with every decision recorded since. The queue
    functions of this module work on it unchanged (findings and lineage are absent)."""
    from pipeline.warehouse import configure

    conn = configure(duckdb.connect())
    ensure_tables(conn)
    items = store.items()
    if items:
        conn.register("_mirror", pl.DataFrame(items, infer_schema_length=None))
        execute(conn, "insert into recon.review by name select * from _mirror")
        conn.unregister("_mirror")
    log = [(d.log_id, d.review_key, d.session_key, d.old_status, d.new_status, d.reviewer, d.note,
            d.decided_at) for d in store.log()]
    if log:
        conn.executemany("insert into recon.review_log values (?, ?, ?, ?, ?, ?, ?, ?)", log)
    return conn


QUEUE_COLUMNS = (
    "review_key", "status", "max_severity", "money_at_risk", "currency", "checks", "n_findings",
    "site_id", "site_type", "charge_point_id", "evse_uid", "ocpp_transaction_id",
    "backend_session_id", "cdr_id", "session_key", "started_at", "finding_present", "reviewer",
    "decided_at", "note", "first_flagged_at", "last_seen_at",
)


def queue(
    conn: duckdb.DuckDBPyConnection,
    status: str | None = None,
    check: str | None = None,
    site: str | None = None,
    site_type: str | None = None,
    severity: str | None = None,
    day_from: str | None = None,
    day_to: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """The queue, most money at risk first (then severity), filtered.

    ``severity`` keeps items whose worst finding is at least that severe; ``day_from`` and
    ``day_to`` (inclusive, UTC days) filter on the session start, or the finding's interval
    for charger and site findings.
    """
    if not table_exists(conn, "recon.review"):
        return pl.DataFrame(schema=dict.fromkeys(QUEUE_COLUMNS, pl.Utf8))
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    sev_rank = "case max_severity when 'error' then 3 when 'warn' then 2 when 'info' then 1 else 0 end"
    where, params = [], {}
    for name, value, cond in (
        ("status", status, "status = $status"),
        ("check", check, 'list_contains(checks, $check)'),
        ("site", site, "site_id = $site"),
        ("site_type", site_type, "site_type = $site_type"),
        ("severity", severity and SEVERITIES.index(severity) + 1, f"{sev_rank} >= $severity"),
        ("day_from", day_from, "started_at >= cast($day_from as date)::timestamptz"),
        ("day_to", day_to, "started_at < (cast($day_to as date) + 1)::timestamptz"),
    ):
        if value is not None:
            where.append(cond)
            params[name] = value
    sql = f"""
        select {', '.join(QUEUE_COLUMNS)} from recon.review
        {'where ' + ' and '.join(where) if where else ''}
        order by money_at_risk desc nulls last, {sev_rank} desc, review_key
        {'limit $limit' if limit else ''}
    """
    if limit:
        params["limit"] = limit
    return query(conn, sql, **params)


def item(conn: duckdb.DuckDBPyConnection, review_key: str) -> dict[str, Any]:
    """One review item with its findings, its decision history and its lineage row."""
    row = query(conn, "select * from recon.review where review_key = $k", k=review_key)
    if row.is_empty():
        raise KeyNotFound(f"no review item {review_key!r}")
    findings = query(conn, f"""
        with fi as ({findings_sql(conn)})
        select flag_id, "check", severity, money_at_risk, currency, interval_start, explanation,
               evidence
        from fi where review_key = $k order by money_at_risk desc nulls last, "check"
    """, k=review_key)
    log = query(conn, """
        select decided_at, old_status, new_status, reviewer, note from recon.review_log
        where review_key = $k order by log_id
    """, k=review_key)
    lineage = None
    session_key = row["session_key"][0]
    if session_key is not None and table_exists(conn, "lineage.sessions"):
        ls = query(conn, "select * from lineage.sessions where session_key = $k limit 1", k=session_key)
        if not ls.is_empty():
            lineage = ls.row(0, named=True)
    return {"item": row.row(0, named=True), "findings": findings, "log": log, "lineage": lineage}


def flatten_lists(frame: pl.DataFrame) -> pl.DataFrame:
    """List columns joined with ``;`` so that a frame can go to CSV."""
    return frame.with_columns(
        pl.col(c).list.join(";") for c, t in frame.schema.items() if isinstance(t, pl.List)
    )


def export_queue(conn: duckdb.DuckDBPyConnection, out: Path) -> int:
    """Write the whole queue (decisions included) to ``out`` (.csv or .parquet); rows."""
    frame = queue(conn)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.write_parquet(out)
    elif out.suffix.lower() == ".csv":
        flatten_lists(frame).write_csv(out)
    else:
        raise ValueError(f"export file must end in .csv or .parquet: {out}")
    return frame.height
