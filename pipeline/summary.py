"""The summary printed after a run: what was loaded, linked and flagged."""

from __future__ import annotations

import json

import duckdb
from tabulate import tabulate

from pipeline.integrity import results as integrity_results
from pipeline.sql import table_exists


def _table(title: str, rows: list[tuple], headers: list[str]) -> str:
    return f"{title}\n" + tabulate(rows, headers=headers, tablefmt="github", floatfmt=".2f")


def _days(days) -> str:
    if not days:
        return "all"
    days = sorted(days)
    return str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)})"


def _integrity(conn: duckdb.DuckDBPyConnection, run_ids) -> str | None:
    """One line per integrity check result of the night, failures first, with their details."""
    rows = integrity_results(conn, run_ids)
    if not rows:
        return None
    failed = [r for r in rows if not r[4]]
    head = f"Integrity checks: {len(rows) - len(failed)} passed, {len(failed)} failed"
    lines = [f"FAILED integrity check {check} on {asset} (days {_days(days)}): {_brief(details)}"
             for _, check, asset, days, _, details in failed]
    return "\n".join([head, *lines])


def _brief(details) -> str:
    """The counts of a result's details (samples stay in meta.integrity_results)."""
    doc = json.loads(details) if isinstance(details, str) else (details or {})
    return ", ".join(f"{k}={v}" for k, v in doc.items() if isinstance(v, int | float) and not isinstance(v, bool))


def render_summary(conn: duckdb.DuckDBPyConnection, run_ids=None) -> str:
    """The summary of the warehouse; integrity results of ``run_ids`` (default: the newest)."""
    parts = []
    if table_exists(conn, "meta.files"):
        rows = conn.execute("""
            select source, count(*), sum(records_read), sum(records_staged),
                   sum(records_rejected)
            from meta.files group by source order by source
        """).fetchall()
        rejected = conn.execute("select count(*) from quarantine.rejects").fetchone()[0]
        parts.append(_table("Records per source", rows, ["source", "files", "read", "staged", "rejected"])
                     + f"\nquarantine.rejects: {rejected} rows")
    if table_exists(conn, "lineage.sessions"):
        rows = conn.execute("""
            select count(*),
                   count(ocpp_transaction_id), count(backend_session_id), count(cdr_id),
                   count(*) filter (where ocpp_transaction_id is not null and backend_session_id is not null
                                    and cdr_id is not null)
            from lineage.sessions
        """).fetchall()
        parts.append(_table("Sessions and links", rows,
                            ["sessions", "with OCPP", "with backend", "with CDR", "all three linked"]))
        links = conn.execute("""
            select rule, count(*), round(avg(confidence), 3) from lineage.links group by rule order by 2 desc
        """).fetchall() if table_exists(conn, "lineage.links") else []
        if links:
            parts.append(_table("Links by rule", links, ["rule", "links", "mean confidence"]))
    if table_exists(conn, "recon.flags"):
        rows = conn.execute("""
            select "check",
                   count(*) filter (where severity = 'error'), count(*) filter (where severity = 'warn'),
                   count(*) filter (where severity = 'info'), count(*),
                   sum(money_at_risk)::double, string_agg(distinct currency, ',')
            from recon.flags group by "check" order by sum(money_at_risk) desc nulls last, "check"
        """).fetchall()
        total = conn.execute("select count(*), coalesce(sum(money_at_risk), 0)::double from recon.flags").fetchone()
        parts.append(_table("Findings by check (most money at risk first)", rows,
                            ["check", "error", "warn", "info", "total", "money at risk", "currency"])
                     + f"\n{total[0]} findings, {total[1]:.2f} at risk")
    integrity = _integrity(conn, run_ids)
    if integrity:
        parts.append(integrity)
    return "\n\n".join(parts)
