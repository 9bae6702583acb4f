"""The analysts' warehouse: one DuckDB file of read-only views over published table versions.

Belongs here: turning what ``pipeline.storage`` holds into ``warehouse.duckdb`` and
writing DuckDB rows out to it.

A publish writes a new file beside the old one and renames it over it: a reader that
opened the old file keeps reading the table versions it was published with (the files
stay until ``vacuum``); a new reader gets the new file. One publish at a time (a lock file
beside the warehouse); nights, ingest and ``review set`` never hold the analysts' file, so
``duckdb -readonly data/warehouse.duckdb`` works at any time.

Each view reads the data files of one committed Delta version, so a reader never sees
half a night. Tables computed per charger or per review item by every day's run (the
*latest* tables) show, per key, the row of the newest day that computed it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.storage import PART_COLUMN, TableStore

# Tables with rows that every day's run may compute again (charger and site aggregates,
# findings and review items without a day of their own): the view keeps, per key, the
# row of the newest day. Keys as the tables document them (docs/warehouse.md).
LATEST_KEYS: dict[str, tuple[str, ...]] = {
    "recon.flags": ("flag_id",),
    "marts.findings": ("flag_id",),
    "recon.review": ("review_key",),
    "recon.charger_clock": ("charge_point_id",),
    "marts.charger_health": ("charge_point_id",),
    "marts.auth_latency": ("level", "site_id", "charge_point_id"),
}

VIEWS_TABLE = "meta.published_views"


@contextmanager
def locked(path: Path, exclusive: bool = True) -> Iterator[None]:
    """An advisory ``flock`` on ``path`` (created): one writer, or many readers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def columns_of(conn: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(f"describe {relation}").fetchall()]


def arrow_of(conn: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pa.Table:
    """Rows as Arrow, JSON as text (Delta has no JSON type; views cast it back)."""
    return conn.sql(sql, params=params or None).to_arrow_table()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    # DDL cannot take parameters: a view's file list is written into its definition.
    return "'" + text.replace("'", "''") + "'"


def _view_sql(store: TableStore, table: str) -> str:
    columns = store.columns(table)
    _, files = store.files(table)
    cols = [(n, t) for n, t in columns if n != PART_COLUMN]
    if not files:
        body = ", ".join(f"cast(null as {t}) as {_quote(n)}" for n, t in cols) or "null as empty"
        return f"select {body} where false"
    select = ", ".join(f"cast({_quote(n)} as {t}) as {_quote(n)}" if t == "JSON" else _quote(n) for n, t in cols)
    listing = "[" + ", ".join(_sql_string(f) for f in files) + "]"
    partitioned = store.is_partitioned(table)
    source = f"read_parquet({listing}, hive_partitioning = {'true' if partitioned else 'false'}, union_by_name = true)"
    keys = LATEST_KEYS.get(table)
    if table == "lineage.sessions" and store.exists("recon.session_prices"):
        # The product contract puts the recomputed cost in lineage.sessions; pricing writes
        # only its own table, so the analysts' view joins it in.
        return (f"select s.*, p.price_in_force_excl_vat as recomputed_cost_excl_vat, "
                f"p.price_in_force_incl_vat as recomputed_cost_incl_vat, "
                f"p.in_force_version_id as recomputed_tariff_version_id "
                f"from (select {select} from {source}) as s "
                f"left join (select session_key, price_in_force_excl_vat, price_in_force_incl_vat, "
                f"in_force_version_id from ({_view_sql(store, 'recon.session_prices')})) as p using (session_key)")
    if table == "recon.review" and store.exists("recon.review_decisions"):
        # decisions recorded since the last day run show at the next publish
        latest = (f"select {select} from {source} qualify row_number() over "
                  f"(partition by review_key order by {PART_COLUMN} desc) = 1") if partitioned else \
            f"select {select} from {source}"
        decided = ("status", "reviewer", "note", "decided_at")
        outer = ", ".join(f"case when d.review_key is null then r.{_quote(n)} else d.{_quote(n)} end as {_quote(n)}"
                          if n in decided else f"r.{_quote(n)}" for n, _ in cols)
        return (f"select {outer} from ({latest}) as r "
                f"left join ({_view_sql(store, 'recon.review_decisions')}) as d using (review_key)")
    if keys and partitioned:
        order = ", ".join(_quote(k) for k in keys)
        return (f"select {select} from {source} "
                f"qualify row_number() over (partition by {order} order by {PART_COLUMN} desc) = 1")
    return f"select {select} from {source}"


def publish(store: TableStore, analysts: Path, extra_views: Sequence[tuple[str, str]] = ()) -> dict[str, int]:
    """Rebuild ``analysts`` (views over every table in ``store``); {table: Delta version}.

    ``extra_views`` are (name, SQL) views over those tables (``marts.flagged_sessions``),
    kept from the previous publish when not given.
    """
    analysts = Path(analysts)
    with locked(analysts.with_name(analysts.name + ".publish.lock")):
        previous = _previous_views(analysts) if not extra_views else []
        # a publish killed half-way left its file; under the lock no other one is writing
        for stale in analysts.parent.glob(f"{analysts.name}.*.publishing"):
            stale.unlink(missing_ok=True)
        tmp = analysts.with_name(f"{analysts.name}.{os.getpid()}.publishing")
        versions: dict[str, int] = {}
        conn = duckdb.connect(str(tmp))
        try:
            conn.execute("SET TimeZone='UTC'")
            for table in store.tables():
                schema, _ = table.split(".", 1)
                conn.execute(f"create schema if not exists {_quote(schema)}")
                conn.execute(f"create view {table} as {_view_sql(store, table)}")
                versions[table] = store.files(table)[0]
            views = list(extra_views) or previous
            for name, sql in views:
                conn.execute(f"create schema if not exists {_quote(name.split('.', 1)[0])}")
                conn.execute(f"create or replace view {name} as {sql}")
            conn.execute("create schema if not exists meta")
            conn.execute(f"create or replace table {VIEWS_TABLE} (name varchar, sql varchar)")
            if views:
                conn.executemany(f"insert into {VIEWS_TABLE} values (?, ?)", [list(v) for v in views])
            conn.execute("create or replace table meta.published (table_name varchar, delta_version bigint, "
                         "location varchar, published_at timestamptz)")
            now = datetime.now(UTC)
            if versions:
                conn.executemany("insert into meta.published values (?, ?, ?, ?)",
                                 [[t, v, store.uri(t), now] for t, v in versions.items()])
            conn.execute("checkpoint")
        finally:
            conn.close()
        os.replace(tmp, analysts)
    return versions


def _previous_views(analysts: Path) -> list[tuple[str, str]]:
    if not analysts.exists():
        return []
    try:
        with duckdb.connect(str(analysts), read_only=True) as conn:
            return [tuple(r) for r in conn.execute(f"select name, sql from {VIEWS_TABLE}").fetchall()]
    except duckdb.Error:
        return []


def view_definitions(conn: duckdb.DuckDBPyConnection, schemas: Sequence[str]) -> list[tuple[str, str]]:
    """(schema.name, select SQL) of the views a run built (re-created over published tables)."""
    rows = conn.execute(
        "select schema_name, view_name, sql from duckdb_views() where not internal and list_contains($s, schema_name)",
        {"s": list(schemas)}).fetchall()
    out = []
    for schema, name, sql in rows:
        body = sql.split(" AS ", 1)[1] if " AS " in sql else sql
        out.append((f"{schema}.{name}", body.rstrip().rstrip(";")))
    return out
