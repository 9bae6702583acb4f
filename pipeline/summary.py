"""The summary printed after a run: what was loaded, linked and flagged."""

from __future__ import annotations

import duckdb
from tabulate import tabulate


def _exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return conn.execute(
        "select count(*) from information_schema.tables where table_schema = $s and table_name = $t",
        {"s": schema, "t": table},
    ).fetchone()[0] > 0


def render_summary(conn: duckdb.DuckDBPyConnection) -> str:
    parts = []
    if _exists(conn, "meta", "files"):
        rows = conn.execute("""
            select source, count(*) as files, sum(records_read) as records_read,
                   sum(records_loaded) as records_loaded, sum(records_rejected) as records_rejected
            from meta.files group by source order by source
        """).fetchall()
        parts.append("Records per source\n" + tabulate(
            rows, headers=["source", "files", "read", "loaded", "rejected"], tablefmt="github"))
    return "\n\n".join(parts)
