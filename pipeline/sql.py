"""SQL files beside the assets: load them, bind parameters, build tables.

One table per file under ``assets/sql/<layer>/<table>.sql``: a bare ``SELECT`` that also
runs as-is in the DuckDB CLI (with its ``$name`` parameters set, after ``create_macros``).
Values are always bound, never formatted into the text.

Definitions several SQL files share are DuckDB temp macros, each written once beside its
Python twin (``token_hash``: ``pipeline.privacy``; ``version_id`` and ``tariff_in_force``:
``pipeline.tariffs.history``). ``execute`` and ``query`` create them on a connection the first
time they run SQL on it; ``create_macros`` does it explicitly (e.g. on opening a warehouse).
"""

from __future__ import annotations

import functools
import re
import weakref
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
_PARAM = re.compile(r"(?<![:$\w])\$([A-Za-z_]\w*)")


# Temp macros live per connection (a cursor is a connection of its own).
_WITH_MACROS: weakref.WeakSet = weakref.WeakSet()


def macro_sql() -> tuple[str, ...]:
    """The ``create or replace temp macro`` statements of every shared SQL definition."""
    from pipeline.privacy import TOKEN_HASH_MACRO
    from pipeline.tariffs.history import IN_FORCE_MACRO, VERSION_ID_MACRO

    return (TOKEN_HASH_MACRO, VERSION_ID_MACRO, IN_FORCE_MACRO)


def create_macros(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the shared macros on ``conn`` (temp: works on read-only connections too)."""
    for statement in macro_sql():
        conn.execute(statement).fetchall()
    _WITH_MACROS.add(conn)


def _ensure_macros(conn: duckdb.DuckDBPyConnection) -> None:
    if conn not in _WITH_MACROS:
        create_macros(conn)


def table_exists(conn: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.table`` exists (a table or a view)."""
    schema, table = qualified.split(".", 1)
    return conn.execute(
        "select count(*) from information_schema.tables where table_schema = $s and table_name = $t",
        {"s": schema, "t": table},
    ).fetchall()[0][0] > 0


@functools.cache
def load_sql(relpath: str) -> str:
    """Text of a SQL file, relative to the repository root (e.g. ``assets/sql/x/y.sql``)."""
    return (ROOT / relpath).read_text(encoding="utf-8")


def _bound(sql: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only the parameters the statement names: DuckDB rejects unused named parameters."""
    if not params:
        return None
    wanted = set(_PARAM.findall(sql))
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"SQL parameters not given: {sorted(missing)}")
    return {k: v for k, v in params.items() if k in wanted} or None


def execute(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None):
    """Execute a statement with named parameters and drain it (DuckDB 2.0 wants that)."""
    _ensure_macros(conn)
    res = conn.execute(sql, _bound(sql, params))
    return res.fetchall()


def query(conn: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> pl.DataFrame:
    """Run a query and return a polars frame."""
    _ensure_macros(conn)
    return conn.sql(sql, params=_bound(sql, params)).pl()


def table_sql(layer: str, table: str) -> str:
    return load_sql(f"assets/sql/{layer}/{table}.sql")


def build_table(
    conn: duckdb.DuckDBPyConnection, qualified: str, params: dict[str, Any] | None = None
) -> int:
    """``create or replace table schema.table as <assets/sql/schema/table.sql>``; row count."""
    schema, table = qualified.split(".", 1)
    body = table_sql(schema, table)
    execute(conn, f"create or replace table {qualified} as\n{body}", params)
    return conn.execute(f"select count(*) from {qualified}").fetchall()[0][0]
