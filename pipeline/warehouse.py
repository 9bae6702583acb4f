"""Opening the DuckDB warehouse the same way everywhere (CLI, Dagster, tests)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

SCHEMAS = ("meta", "raw", "quarantine", "staging", "lineage", "recon", "marts")


def configure(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Apply the session settings every chargeline connection relies on.

    UTC so that ``TIMESTAMPTZ`` renders and truncates the same on every machine; no
    extension autoinstall because nothing may be downloaded at run time.
    """
    conn.execute("SET TimeZone='UTC'")
    conn.execute("SET enable_progress_bar=false")
    conn.execute("SET autoinstall_known_extensions=false")
    # DuckDB would take 80 % of RAM; a bounded engine spills to disk instead, so a large
    # night cannot starve the machine (CHARGELINE_DUCKDB_MEMORY, e.g. "8GB", to change).
    conn.execute("SET memory_limit = $m", {"m": os.environ.get("CHARGELINE_DUCKDB_MEMORY", "3GB")})
    # Day runs side by side (one process each) share the cores: CHARGELINE_DUCKDB_THREADS.
    if os.environ.get("CHARGELINE_DUCKDB_THREADS"):
        conn.execute("SET threads = $t", {"t": int(os.environ["CHARGELINE_DUCKDB_THREADS"])})
    for schema in SCHEMAS:
        conn.execute(f"create schema if not exists {schema}")
    return conn


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Connect to a warehouse file (created, with its parent folder, if missing)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only)
    if read_only:
        conn.execute("SET TimeZone='UTC'")
        conn.execute("SET enable_progress_bar=false")
        return conn
    return configure(conn)
