"""Nightly bookkeeping: which days new files touch, and which days are reconciled.

Belongs here: ``meta_file_days`` (after staging: the days each new or changed file
version touches, queued in ``meta.pending_days``) and ``meta_reconciled_days`` (the last
step of a partitioned run: its days leave the queue). The logic is in
``pipeline.day_queue``; the sensor and ``chargeline run`` read the queue.
"""

from datetime import UTC, datetime

import dagster as dg

from pipeline.day_partitions import context_days, daily
from pipeline.day_queue import mark_reconciled, pending_days, refresh_file_days
from pipeline.resources import WarehouseResource

STAGING_KEYS = (
    "stg_sites", "stg_evses", "stg_ocpp_frames", "stg_backend_sessions", "stg_cdrs", "stg_tariff_versions",
    "stg_ems_intervals", "stg_location_evse_status", "stg_tokens",
)
# The night's results: once these are built for a day, the day is reconciled.
RESULT_KEYS = ("lineage_sessions", "recon_flags", "recon_review", "marts_session_facts")


@dg.asset(
    name="meta_file_days",
    group_name="meta",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in STAGING_KEYS],
    description="meta.file_days: the UTC days (by session start) each ingested file version touches; "
    "new, changed and removed versions queue their days in meta.pending_days.",
)
def meta_file_days(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    with duckdb.get_connection() as conn:
        touched = refresh_file_days(conn)
        pending = [d.isoformat() for d, _ in pending_days(conn)]
    context.log.info(f"days touched by new files: {[d.isoformat() for d in touched]}; pending: {pending}")
    return dg.MaterializeResult(metadata={
        "days_touched": dg.MetadataValue.json([d.isoformat() for d in touched]),
        "days_pending": dg.MetadataValue.json(pending),
    })


@dg.asset(
    name="meta_reconciled_days",
    group_name="meta",
    kinds={"duckdb"},
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[dg.AssetKey(k) for k in RESULT_KEYS],
    description="Takes the run's days off meta.pending_days once the night's results are built for them.",
)
def meta_reconciled_days(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    stats = context.instance.get_run_stats(context.run.run_id)
    # the run's start: a file landing while the run was busy keeps its day queued
    as_of = datetime.fromtimestamp(stats.start_time, UTC) if stats and stats.start_time else datetime.now(UTC)
    days = context_days(context)
    with duckdb.get_connection() as conn:
        done = mark_reconciled(conn, days or None, as_of)
    return dg.MaterializeResult(metadata={"days": len(days), "dequeued": done})
