"""What the review report shows, read from the warehouse into one frozen value.

Data first, text last: every query lives here and returns plain frames; ``html`` only
renders. Each part is read on its own and a missing table leaves that part empty (with a
note) instead of failing the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from pipeline import review
from pipeline.privacy import token_hash, token_hash_key
from pipeline.review import findings_sql, table_exists
from pipeline.sql import query

# Lineage columns that are bulky (whole source objects) and add nothing to a drill-down.
_BULKY_COLUMNS = ("cdr_json", "tariff_json", "payload", "raw")
# Raw token columns are replaced by their keyed hash if another layer ever exposes one.
_RAW_TOKEN_COLUMNS = ("id_tag", "token_uid", "auth_id", "ocpp_id_tag", "backend_id_tag")


@dataclass(frozen=True)
class Drilldown:
    """One review item: its queue row, its findings (with evidence) and its lineage row."""

    item: dict[str, Any]
    findings: list[dict[str, Any]]
    lineage: dict[str, Any] | None


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    totals: dict[str, Any]
    by_check: pl.DataFrame
    by_site: pl.DataFrame
    by_site_type: pl.DataFrame
    queue: pl.DataFrame
    queue_total: int
    drilldowns: list[Drilldown]
    drift: pl.DataFrame
    site_intervals: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    gx: dict[str, Any] | None = None


def _safe(notes: list[str], what: str, fn, empty):
    try:
        return fn()
    except duckdb.Error as exc:
        notes.append(f"{what}: not available ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return empty


def _findings(conn) -> pl.DataFrame:
    return query(conn, f"select * exclude (evidence), evidence::varchar as evidence from ({findings_sql(conn)})")


def _sessions_count(conn) -> int | None:
    for table in ("marts.session_facts", "lineage.sessions"):
        if table_exists(conn, table):
            return conn.execute(f"select count(*) from {table}").fetchall()[0][0]
    return None


def _by_site(conn, findings: pl.DataFrame) -> pl.DataFrame:
    if table_exists(conn, "marts.site_daily_kpis"):
        return query(conn, """
            select site_id, max(site_type) as site_type, sum(sessions) as sessions,
                   sum(energy_kwh) as energy_kwh, sum(revenue_excl_vat) as revenue_excl_vat,
                   sum(findings) as findings, sum(money_at_risk) as money_at_risk,
                   case when sum(sessions) > 0
                        then 1 - sum(sessions_flagged) / sum(sessions) end as reconciliation_rate,
            from marts.site_daily_kpis group by site_id
            order by money_at_risk desc nulls last, site_id
        """)
    return (findings.group_by("site_id").agg(
                pl.col("site_type").max(), pl.len().alias("findings"),
                pl.col("money_at_risk").sum())
            .sort(["money_at_risk", "site_id"], descending=[True, False], nulls_last=True))


def _drilldowns(conn, queue: pl.DataFrame, findings: pl.DataFrame, key: str) -> list[Drilldown]:
    keys = queue["review_key"].to_list()
    if not keys:
        return []
    by_key: dict[str, list[dict]] = {}
    for f in findings.filter(pl.col("review_key").is_in(keys)).sort(
            ["money_at_risk", "check"], descending=[True, False], nulls_last=True).iter_rows(named=True):
        by_key.setdefault(f["review_key"], []).append(f)
    lineage: dict[str, dict] = {}
    session_keys = [k for k in queue["session_key"].to_list() if k]
    if session_keys and table_exists(conn, "lineage.sessions"):
        rows = query(conn, "select * from lineage.sessions where list_contains($keys, session_key)",
                     keys=session_keys)
        for row in rows.iter_rows(named=True):
            clean = {}
            for name, value in row.items():
                if name in _BULKY_COLUMNS:
                    continue
                if name in _RAW_TOKEN_COLUMNS:
                    name, value = f"{name}_hash", token_hash(value, key) if value else None
                clean[name] = value
            lineage.setdefault(row["session_key"], clean)
    return [Drilldown(item=it, findings=by_key.get(it["review_key"], []),
                      lineage=lineage.get(it["session_key"]) if it["session_key"] else None)
            for it in queue.iter_rows(named=True)]


def gather(conn: duckdb.DuckDBPyConnection, options: dict | None = None, queue_limit: int = 500,
           drilldown_limit: int = 200, gx: dict[str, Any] | None = None) -> ReportData:
    """Everything the report shows; parts whose tables are missing come back empty."""
    notes: list[str] = []
    empty = pl.DataFrame()
    findings = _safe(notes, "findings (recon.flags)", lambda: _findings(conn), empty)
    if findings.is_empty():
        findings = pl.DataFrame(schema={"review_key": pl.Utf8, "session_key": pl.Utf8,
                                        "check": pl.Utf8, "severity": pl.Utf8, "site_id": pl.Utf8,
                                        "site_type": pl.Utf8, "money_at_risk": pl.Float64,
                                        "currency": pl.Utf8})
    by_check = (findings.group_by("check").agg(
                    pl.len().alias("findings"),
                    pl.col("session_key").drop_nulls().n_unique().alias("sessions"),
                    (pl.col("severity") == "error").sum().alias("errors"),
                    pl.col("money_at_risk").sum())
                .sort(["money_at_risk", "findings"], descending=True, nulls_last=True))
    by_site = _safe(notes, "sites (marts.site_daily_kpis)", lambda: _by_site(conn, findings), empty)
    by_site_type = (findings.group_by("site_type").agg(
                        pl.len().alias("findings"), pl.col("money_at_risk").sum())
                    .sort("money_at_risk", descending=True, nulls_last=True))
    queue = _safe(notes, "queue (recon.review)", lambda: review.queue(conn), empty)
    if queue.is_empty():
        queue = pl.DataFrame(schema={c: pl.Utf8 for c in review.QUEUE_COLUMNS})
    shown = queue.head(queue_limit)
    drilldowns = _safe(notes, "drill-down (lineage.sessions)",
                       lambda: _drilldowns(conn, shown.head(drilldown_limit), findings,
                                           token_hash_key(options)), [])
    drift = empty
    if table_exists(conn, "marts.session_facts"):
        drift = _safe(notes, "start drift (marts.session_facts)", lambda: query(conn, """
            select charge_point_id, started_at, start_drift_s from marts.session_facts
            where start_drift_s is not null and started_at is not null
        """), empty)
    intervals = empty
    if table_exists(conn, "recon.site_intervals"):
        intervals = _safe(notes, "EMS intervals (recon.site_intervals)", lambda: query(conn, """
            select site_id, interval_start_at, ems_ev_energy_kwh, sessions_energy_kwh
            from recon.site_intervals where ems_ev_energy_kwh is not null
        """), empty)
    else:
        notes.append("EMS intervals: recon.site_intervals not built yet")
    open_q = queue.filter(pl.col("status") == "open") if queue.height else queue
    totals = {
        "sessions": _safe(notes, "sessions", lambda: _sessions_count(conn), None),
        "findings": findings.height,
        "review_items": queue.height,
        "open_items": open_q.height,
        "money_at_risk": float(findings["money_at_risk"].sum() or 0),
        "open_money_at_risk": float(open_q["money_at_risk"].cast(pl.Float64).sum() or 0) if open_q.height else 0.0,
        "currencies": sorted(c for c in findings["currency"].unique().to_list() if c),
    }
    return ReportData(generated_at=datetime.now(UTC), totals=totals, by_check=by_check,
                      by_site=by_site, by_site_type=by_site_type, queue=shown,
                      queue_total=queue.height, drilldowns=drilldowns, drift=drift,
                      site_intervals=intervals, notes=notes, gx=gx)
