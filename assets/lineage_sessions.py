"""Lineage layer, second part: link OCPP transactions, backend sessions and CDRs.

Belongs here: the thin assets that build ``lineage.links`` and ``lineage.sessions``
(logic in ``pipeline.lineage``, SQL in ``assets/sql/lineage/``). The OCPP transaction
reconstruction (``lineage.transactions``) and the staging tables are other modules'
assets, referenced by key only.
"""

import dagster as dg

from pipeline.day_partitions import context_days, daily
from pipeline.day_queue import replace_partitions
from pipeline.lineage.build import LinkOptions, build_links, build_sessions
from pipeline.resources import LandingResource, WarehouseResource

LINEAGE_GROUP = "lineage"

_UPSTREAM = [
    "lineage_transactions",
    "stg_backend_sessions",
    "stg_cdrs",
    "stg_evses",
    "stg_sites",
    "stg_tariff_versions",
]


@dg.asset(
    name="lineage_links",
    group_name=LINEAGE_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("lineage_transactions", "stg_backend_sessions", "stg_cdrs", "stg_evses")],
    description=(
        "lineage.links: accepted links between OCPP transactions, backend sessions and CDRs "
        "(exact ids first, then EVSE + time + token scored, one-to-one), plus duplicate and "
        "credit CDRs attached to their CDR. Candidates with their scores: lineage.link_candidates."
    ),
)
def lineage_links(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    opts = LinkOptions.from_options(landing.settings().options)
    with duckdb.get_connection() as conn:
        report = build_links(conn, opts)
    context.log.info(f"links by rule: {report.links_by_rule}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(report.links_by_rule.values()),
        "candidates_ocpp_backend": report.candidates_ocpp_backend,
        "candidates_session_cdr": report.candidates_session_cdr,
        "links_by_rule": dg.MetadataValue.json(report.links_by_rule),
        "match_window_s": opts.window_s,
    })


@dg.asset(
    name="lineage_sessions",
    group_name=LINEAGE_GROUP,
    kinds={"duckdb"},
    deps=[lineage_links, *(dg.AssetKey(k) for k in _UPSTREAM)],
    description="lineage.sessions: one row per charging session from any source (contract §3).",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("session_key_unique", asset="lineage_sessions",
                                   description="No two sessions share a session_key.")],
)
def lineage_sessions(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    with duckdb.get_connection() as conn:
        # a day run computes its whole window and publishes its own days (pipeline.engine)
        with replace_partitions(conn, "lineage.sessions", [] if duckdb.engine else context_days(context)):
            build_sessions(conn)
        rows = conn.execute("select count(*) from lineage.sessions").fetchall()[0][0]
        dupes = conn.execute(
            "select count(*) - count(distinct session_key) from lineage.sessions"
        ).fetchall()[0][0]
        by_anchor = dict(conn.execute(
            "select anchor_kind, count(*) from lineage.sessions group by all order by all"
        ).fetchall())
    context.log.info(f"{rows} sessions, by anchor: {by_anchor}")
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "sessions_by_anchor": dg.MetadataValue.json(by_anchor),
    })
    yield dg.AssetCheckResult(check_name="session_key_unique", passed=dupes == 0,
                              metadata={"duplicate_keys": dupes})
