"""Great Expectations suites on the published tables, with Data Docs beside the report.

Belongs here: the suites (what must hold in ``recon.flags``, ``lineage.sessions``,
``recon.review`` and the per-site KPIs), running them, and summarising the outcome for the
report. Tables are handed to GX as pandas frames: GX's SQL source over DuckDB fails every
expectation (GX #10738). GX is imported inside ``run_suites`` because its import alone
takes seconds.

Thresholds are options under ``[quality]`` (defaults below); a missing table skips its
suite with a reason instead of failing the night.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipeline.review import SEVERITIES, STATUSES, findings_sql
from pipeline.sql import table_exists

CHECKS = (
    "timestamp_drift", "charger_clock_skew", "stale_tariff", "tariff_changed_during_session",
    "cost_mismatch", "energy_mismatch", "energy_attribution_mismatch", "missing_cdr",
    "orphan_cdr", "missing_backend_session", "duplicate_cdr", "meter_anomaly",
    "incomplete_session", "token_invalid", "status_mismatch", "capability_mismatch",
    "auth_latency",
)
# A site where fewer than 80 % of sessions are known to two sources has a matching or export
# outage, not everyday noise (2026-11, sample and generated networks link > 95 %).
LINK_COVERAGE_MIN = 0.8
# Fewer than half of a site's sessions clean means the checks or an input are broken rather
# than the site; the upper bound 1.0 only guards the arithmetic (2026-11).
RECONCILIATION_RATE_MIN = 0.5
RECONCILIATION_RATE_MAX = 1.0
DOCS_SITE = "chargeline"


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failed: int
    failed_expectations: list[str] = field(default_factory=list)
    skipped: str | None = None


@dataclass(frozen=True)
class GxResult:
    """The outcome of all suites; ``docs_index`` is the Data Docs entry page."""

    success: bool
    suites: list[SuiteResult]
    docs_index: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {"success": self.success, "suites": [asdict(s) for s in self.suites],
                "docs_index": str(self.docs_index) if self.docs_index else None}


def _thresholds(options: dict | None) -> dict[str, float]:
    q = (options or {}).get("quality", {})
    return {
        "link_coverage_min": float(q.get("link_coverage_min", LINK_COVERAGE_MIN)),
        "reconciliation_rate_min": float(q.get("reconciliation_rate_min", RECONCILIATION_RATE_MIN)),
        "reconciliation_rate_max": float(q.get("reconciliation_rate_max", RECONCILIATION_RATE_MAX)),
    }


def _frames(conn: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame | str]:
    """Each suite's frame, or the reason it is skipped."""
    frames: dict[str, pd.DataFrame | str] = {}
    frames["recon_flags"] = (
        conn.sql(f'select flag_id, "check", severity, money_at_risk from ({findings_sql(conn)})').df()
        if table_exists(conn, "recon.flags") else "recon.flags not built")
    frames["lineage_sessions"] = (
        conn.sql("select session_key from lineage.sessions").df()
        if table_exists(conn, "lineage.sessions") else "lineage.sessions not built")
    frames["recon_review"] = (
        conn.sql("select review_key, status, money_at_risk from recon.review").df()
        if table_exists(conn, "recon.review") else "recon.review not built")
    frames["site_kpis"] = (
        conn.sql("""
            select site_id,
                   case when sum(sessions) > 0 then 1 - sum(sessions_flagged) / sum(sessions) end
                       as reconciliation_rate,
                   sum(link_coverage * sessions) / nullif(sum(sessions), 0) as link_coverage,
            from marts.site_daily_kpis group by site_id
        """).df()
        if table_exists(conn, "marts.site_daily_kpis") else "marts.site_daily_kpis not built")
    return frames


def _expectations(gx, suite: str, t: dict[str, float]) -> list:
    e = gx.expectations
    if suite == "recon_flags":
        return [e.ExpectColumnValuesToNotBeNull(column="flag_id"),
                e.ExpectColumnValuesToBeUnique(column="flag_id"),
                e.ExpectColumnValuesToBeInSet(column="check", value_set=list(CHECKS)),
                e.ExpectColumnValuesToBeInSet(column="severity", value_set=list(SEVERITIES)),
                e.ExpectColumnValuesToBeBetween(column="money_at_risk", min_value=0)]
    if suite == "lineage_sessions":
        return [e.ExpectColumnValuesToNotBeNull(column="session_key"),
                e.ExpectColumnValuesToBeUnique(column="session_key")]
    if suite == "recon_review":
        return [e.ExpectColumnValuesToNotBeNull(column="review_key"),
                e.ExpectColumnValuesToBeUnique(column="review_key"),
                e.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
                e.ExpectColumnValuesToBeBetween(column="money_at_risk", min_value=0)]
    return [e.ExpectColumnValuesToBeBetween(column="link_coverage", min_value=t["link_coverage_min"],
                                            max_value=1.0),
            e.ExpectColumnValuesToBeBetween(column="reconciliation_rate",
                                            min_value=t["reconciliation_rate_min"],
                                            max_value=t["reconciliation_rate_max"])]


def _describe(result) -> str:
    cfg = result.expectation_config
    column = cfg.kwargs.get("column")
    return f"{cfg.type}({column})" if column else cfg.type


def run_suites(conn: duckdb.DuckDBPyConnection, out_dir: str | Path,
               options: dict | None = None) -> GxResult:
    """Validate the published tables and write Data Docs to ``<out_dir>/gx/``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    # GX logs every store action at INFO; the nightly log wants outcomes only.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    docs_dir = (Path(out_dir) / "gx").resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    # tqdm bars per metric would flood the nightly log.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ctx.add_data_docs_site(site_name=DOCS_SITE, site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    source = ctx.data_sources.add_pandas(name="warehouse")
    thresholds = _thresholds(options)
    results: list[SuiteResult] = []
    for name, frame in _frames(conn).items():
        if isinstance(frame, str):
            results.append(SuiteResult(name, True, 0, 0, skipped=frame))
            continue
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for expectation in _expectations(gx, name, thresholds):
            suite.add_expectation(expectation)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        # vd.run stores its result; the site is built once below (a checkpoint's docs action
        # would rebuild the whole site per suite, ~1 s each).
        validation = vd.run(batch_parameters={"dataframe": frame})
        failed = [_describe(r) for r in validation.results if not r.success]
        results.append(SuiteResult(name, bool(validation.success), len(validation.results),
                                   len(failed), failed))
    ctx.build_data_docs(site_names=[DOCS_SITE])
    index = docs_dir / "index.html"
    return GxResult(success=all(s.success for s in results), suites=results,
                    docs_index=index if index.exists() else None)
