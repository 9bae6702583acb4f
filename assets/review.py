"""Review layer: the settlement queue synced after each run, and the nightly report.

Belongs here: the ``recon_review`` asset (upsert of ``recon.review`` from ``recon.flags``,
keeping decisions) and the ``review_report`` asset (Great Expectations suites with Data
Docs, then the self-contained HTML report). The logic lives in ``pipeline.review``,
``pipeline.gx`` and ``pipeline.report``.
"""

import os
from pathlib import Path

import dagster as dg

from pipeline.decisions import DecisionStore, store_path
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.review import sync_review

REVIEW_GROUP = "review"


def reports_dir(database: str) -> Path:
    """``$CHARGELINE_REPORTS`` if set, else ``reports/`` beside the warehouse file.

    With the default warehouse ``data/warehouse.duckdb`` that is ``data/reports``; a test's
    temporary warehouse gets its own folder instead of writing into the checkout.
    """
    env = os.environ.get("CHARGELINE_REPORTS")
    return Path(env) if env else Path(database).parent / "reports"


@dg.asset(
    name="recon_review",
    group_name=REVIEW_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetKey("recon_flags"), dg.AssetKey("lineage_sessions")],
    description="recon.review: one review item per flagged session (or charger/site finding); "
    "decisions survive reruns. recon.review_log: every decision.",
    check_specs=[
        dg.AssetCheckSpec("review_key_unique", asset="recon_review",
                          description="one queue row per review_key"),
        dg.AssetCheckSpec("every_finding_queued", asset="recon_review",
                          description="every current finding belongs to a present queue item"),
    ],
)
def recon_review(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    from pipeline.review import findings_sql

    store = DecisionStore(store_path(duckdb.analysts or duckdb.database, landing.settings().options))
    with duckdb.get_connection() as conn:
        report = sync_review(conn, store=store)
        dupes = conn.execute(
            "select count(*) - count(distinct review_key) from recon.review").fetchall()[0][0]
        unqueued = conn.execute(f"""
            select count(*) from ({findings_sql(conn)}) as fi
            where fi.review_key not in (select review_key from recon.review where finding_present)
        """).fetchall()[0][0]
        open_money = conn.execute("""
            select coalesce(sum(money_at_risk), 0) from recon.review
            where status = 'open' and finding_present
        """).fetchall()[0][0]
    context.log.info(f"review queue: {report.to_dict()}")
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": report.items, **report.to_dict(), "open_money_at_risk": float(open_money)})
    yield dg.AssetCheckResult(check_name="review_key_unique", passed=dupes == 0,
                              metadata={"duplicates": dupes})
    yield dg.AssetCheckResult(check_name="every_finding_queued", passed=unqueued == 0,
                              metadata={"findings_without_item": unqueued})


@dg.asset(
    name="review_report",
    group_name=REVIEW_GROUP,
    kinds={"html"},
    deps=[dg.AssetKey(k) for k in (
        "recon_flags", "recon_review", "marts_findings", "marts_session_facts",
        "marts_site_daily_kpis", "marts_charger_health", "marts_flagged_sessions",
        "recon_site_intervals")],
    description="The nightly review report (one offline HTML file) and Great Expectations "
    "Data Docs, in the reports folder.",
    check_specs=[dg.AssetCheckSpec("data_quality_suites_pass", asset="review_report",
                                   description="every Great Expectations suite passes")],
)
def review_report(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    from pipeline.report import write_report

    settings = landing.settings()
    out_dir = settings.reports if landing.reports else reports_dir(duckdb.analysts or duckdb.database)
    run_gx = bool(settings.option("report", "gx", default=True))
    with duckdb.get_connection() as conn:
        gx = None
        if run_gx:
            from pipeline.gx import run_suites

            gx = run_suites(conn, out_dir, settings.options).to_dict()
        path = write_report(conn, out_dir, settings.options, gx=gx)
    context.log.info(f"review report: {path}")
    metadata = {"path": dg.MetadataValue.path(str(path)), "size_bytes": path.stat().st_size}
    if gx and gx["docs_index"]:
        metadata["data_docs"] = dg.MetadataValue.path(gx["docs_index"])
    yield dg.MaterializeResult(metadata=metadata)
    failed = [s["suite"] for s in gx["suites"] if not s["success"]] if gx else []
    yield dg.AssetCheckResult(
        check_name="data_quality_suites_pass",
        passed=bool(gx is None or gx["success"]),
        # Quality findings inform the analyst; they never block the night.
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"suites_run": len(gx["suites"]) if gx else 0, "failed_suites": ", ".join(failed),
                  "skipped": "gx disabled ([report] gx = false)" if gx is None else ""},
    )
