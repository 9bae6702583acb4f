"""Integrity results: what the pipeline's self-checks found, kept as warehouse rows.

Belongs here: ``meta.integrity_results`` (one row per integrity check per run) and the
helpers that write and read it. An integrity check says whether the pipeline's own
bookkeeping holds (every record staged or quarantined, every transaction event in a
transaction) for what its run wrote. It never blocks the night: a failure is a Dagster
check result *and* a row here, which ``chargeline run`` prints in its summary, while the
rest of the night's results are still written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from pipeline.sql import table_exists

DDL = """
    create table if not exists meta.integrity_results (
        run_id varchar, check_name varchar, asset varchar, days date[], passed boolean,
        details json, checked_at timestamptz
    )
"""


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists meta").fetchall()
    conn.execute(DDL).fetchall()


def record_result(
    conn: duckdb.DuckDBPyConnection, *, run_id: str, check_name: str, asset: str, days: Sequence[date],
    passed: bool, details: dict[str, Any], checked_at: datetime | None = None,
) -> None:
    """Write one check's result for ``run_id``; a retried check replaces its earlier row."""
    ensure_table(conn)
    params = {"run": run_id, "check": check_name, "asset": asset}
    conn.execute("begin transaction")
    try:
        conn.execute("delete from meta.integrity_results where run_id = $run and check_name = $check "
                     "and asset = $asset", params).fetchall()
        conn.execute("insert into meta.integrity_results values ($run, $check, $asset, $days::date[], $passed, "
                     "$details::json, $at)",
                     {**params, "days": list(days), "passed": passed,
                      "details": json.dumps(details, default=str, sort_keys=True),
                      "at": checked_at or datetime.now(UTC)}).fetchall()
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


def results(conn: duckdb.DuckDBPyConnection, run_ids: Sequence[str] | None = None) -> list[tuple]:
    """(run_id, check_name, asset, days, passed, details) of ``run_ids``, or of the latest
    night when none are given (the rows of the newest run of each check and asset)."""
    if not table_exists(conn, "meta.integrity_results"):
        return []
    if run_ids is not None:
        return conn.execute("""
            select run_id, check_name, asset, days, passed, details from meta.integrity_results
            where list_contains($runs::varchar[], run_id) order by checked_at, check_name, asset
        """, {"runs": list(run_ids)}).fetchall()
    return conn.execute("""
        select run_id, check_name, asset, days, passed, details from meta.integrity_results
        qualify checked_at = max(checked_at) over (partition by check_name, asset)
        order by checked_at, check_name, asset
    """).fetchall()
