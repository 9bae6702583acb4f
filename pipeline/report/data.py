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
from pipeline.review import findings_sql
from pipeline.sql import query, table_exists

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


def _findings_from(conn) -> str:
    """The findings relation: the built mart when there is one, else computed from recon.flags."""
    if table_exists(conn, "marts.findings"):
        return "marts.findings"
    return f"({findings_sql(conn)})"


def _sessions_count(conn) -> int | None:
    for table in ("marts.session_facts", "lineage.sessions"):
        if table_exists(conn, table):
            return conn.execute(f"select count(*) from {table}").fetchall()[0][0]
    return None


def _by_site(conn, findings: str) -> pl.DataFrame:
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
    return query(conn, f"""
        select site_id, max(site_type) as site_type, count(*) as findings,
               sum(money_at_risk) as money_at_risk
        from {findings} group by site_id order by money_at_risk desc nulls last, site_id
    """)


def _drilldowns(conn, queue: pl.DataFrame, findings: str, key: str) -> list[Drilldown]:
    keys = queue["review_key"].to_list()
    if not keys:
        return []
    by_key: dict[str, list[dict]] = {}
    rows = query(conn, f"""
        select review_key, flag_id, "check", severity, money_at_risk, currency, interval_start,
               explanation, evidence::varchar as evidence
        from {findings} where list_contains($keys, review_key)
        order by money_at_risk desc nulls last, "check"
    """, keys=keys)
    for f in rows.iter_rows(named=True):
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


# Plots stay readable and the page small (a few hundred kB) at any network size: the
# coloured chargers and the worst intervals are drawn in full, the rest as a sample.
_PLOT_TOP_CHARGERS = 8
_PLOT_SAMPLE = 3000


def _drift(conn) -> pl.DataFrame:
    return query(conn, """
        with d as (
            select charge_point_id, started_at, start_drift_s from marts.session_facts
            where start_drift_s is not null and started_at is not null
        ),
        top as (
            select charge_point_id from d group by charge_point_id
            order by median(abs(start_drift_s)) desc, charge_point_id limit $top
        ),
        mine as (
            select * from d where charge_point_id in (select charge_point_id from top)
            using sample reservoir(4000 rows) repeatable (7)
        ),
        rest as (
            select * from d where charge_point_id not in (select charge_point_id from top)
            using sample reservoir(3000 rows) repeatable (7)
        )
        select * from mine union all select * from rest
    """, top=_PLOT_TOP_CHARGERS)


def _intervals(conn) -> pl.DataFrame:
    return query(conn, """
        with i as (
            select site_id, interval_start_at, ems_ev_energy_kwh, sessions_energy_kwh,
                   abs(ems_ev_energy_kwh - sessions_energy_kwh) as gap
            from recon.site_intervals where ems_ev_energy_kwh is not null
        ),
        worst as (select * from i order by gap desc limit $n),
        rest as (
            select * from i where (site_id, interval_start_at) not in
                (select (site_id, interval_start_at) from worst)
            using sample reservoir(3000 rows) repeatable (7)
        )
        select site_id, interval_start_at, ems_ev_energy_kwh, sessions_energy_kwh from worst
        union all
        select site_id, interval_start_at, ems_ev_energy_kwh, sessions_energy_kwh from rest
    """, n=_PLOT_SAMPLE)


def gather(conn: duckdb.DuckDBPyConnection, options: dict | None = None, queue_limit: int = 500,
           drilldown_limit: int = 200, gx: dict[str, Any] | None = None) -> ReportData:
    """Everything the report shows; parts whose tables are missing come back empty."""
    notes: list[str] = []
    empty = pl.DataFrame()
    findings = _findings_from(conn)
    by_check = _safe(notes, "findings (recon.flags)", lambda: query(conn, f"""
        select "check", count(*) as findings, count(distinct session_key) as sessions,
               count(*) filter (where severity = 'error') as errors,
               sum(money_at_risk) as money_at_risk
        from {findings} group by "check" order by money_at_risk desc nulls last, findings desc
    """), empty)
    by_site = _safe(notes, "sites (marts.site_daily_kpis)", lambda: _by_site(conn, findings), empty)
    by_site_type = _safe(notes, "site types", lambda: query(conn, f"""
        select site_type, count(*) as findings, sum(money_at_risk) as money_at_risk
        from {findings} group by site_type order by money_at_risk desc nulls last
    """), empty)
    counts = _safe(notes, "totals", lambda: query(conn, f"""
        select count(*) as findings, coalesce(sum(money_at_risk), 0) as money_at_risk,
               list_sort(list_distinct(list(currency))) as currencies
        from {findings}
    """).row(0, named=True), {"findings": 0, "money_at_risk": 0.0, "currencies": []})
    shown = _safe(notes, "queue (recon.review)", lambda: review.queue(conn, limit=queue_limit), empty)
    if shown.is_empty():
        shown = pl.DataFrame(schema=dict.fromkeys(review.QUEUE_COLUMNS, pl.Utf8))
    queue_counts = {"items": 0, "open_items": 0, "open_money": 0.0}
    if table_exists(conn, "recon.review"):
        queue_counts = _safe(notes, "queue totals", lambda: query(conn, """
            select count(*) as items, count(*) filter (where status = 'open') as open_items,
                   coalesce(sum(money_at_risk) filter (where status = 'open'), 0) as open_money
            from recon.review
        """).row(0, named=True), queue_counts)
    drilldowns = _safe(notes, "drill-down (lineage.sessions)",
                       lambda: _drilldowns(conn, shown.head(drilldown_limit), findings,
                                           token_hash_key(options)), [])
    drift = empty
    if table_exists(conn, "marts.session_facts"):
        drift = _safe(notes, "start drift (marts.session_facts)", lambda: _drift(conn), empty)
    intervals = empty
    if table_exists(conn, "recon.site_intervals"):
        intervals = _safe(notes, "EMS intervals (recon.site_intervals)", lambda: _intervals(conn), empty)
    else:
        notes.append("EMS intervals: recon.site_intervals not built yet")
    totals = {
        "sessions": _safe(notes, "sessions", lambda: _sessions_count(conn), None),
        "findings": counts["findings"],
        "review_items": queue_counts["items"],
        "open_items": queue_counts["open_items"],
        "money_at_risk": float(counts["money_at_risk"] or 0),
        "open_money_at_risk": float(queue_counts["open_money"] or 0),
        "currencies": [c for c in (counts["currencies"] or []) if c],
    }
    return ReportData(generated_at=datetime.now(UTC), totals=totals, by_check=by_check,
                      by_site=by_site, by_site_type=by_site_type, queue=shown,
                      queue_total=queue_counts["items"], drilldowns=drilldowns, drift=drift,
                      site_intervals=intervals, notes=notes, gx=gx)
