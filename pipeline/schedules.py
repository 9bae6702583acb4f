"""Jobs, the nightly schedule and the landing sensor shown in ``dagster dev``.

Belongs here: how Dagster decides *when* to run (the assets decide *what*). Two jobs:
``ingest`` (raw, staging, ``meta_file_days``: unpartitioned, writes the work file) and
``reconcile`` (the partitioned assets and everything downstream, for one day or a range,
each run in its own engine file). ``nightly_schedule`` runs ``ingest`` at 04:30 UTC;
``landing_sensor`` ingests files that are new or changed in the landing folder, then
requests a ``reconcile`` run for each day the ingested files queued in
``meta.pending_days``; ``publish_finished_runs`` publishes each finished run to the
analysts' warehouse (``chargeline run`` does the same in-process). The partitions are
dynamic: the schedule and the sensor register the days they ask for (any year).
"""

import functools
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.day_partitions import register_days
from pipeline.day_queue import LEGACY_GLOBAL_DAY
from pipeline.resources import LandingResource, WarehouseResource

TAG_NIGHT = "chargeline/night"
NIGHTLY_CRON = "30 4 * * *"  # 04:30 UTC: after partners' midnight exports have landed


@functools.cache
def split_assets(assets: tuple[dg.AssetsDefinition, ...]) -> tuple[frozenset[dg.AssetKey], frozenset[dg.AssetKey]]:
    """(ingest keys, reconcile keys): what is downstream of a partitioned asset reconciles."""
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for a in assets:
        for key, deps in a.asset_deps.items():
            parents[key] = set(deps)
    reconcile = {k for a in assets if a.partitions_def is not None for k in a.keys}
    grew = True
    while grew:
        before = len(reconcile)
        reconcile |= {k for k, deps in parents.items() if deps & reconcile}
        grew = len(reconcile) > before
    return frozenset(set(parents) - reconcile), frozenset(reconcile)


def build_jobs(ingest_keys, reconcile_keys) -> dict:
    return {
        "ingest": dg.define_asset_job(
            "ingest", selection=dg.AssetSelection.assets(*ingest_keys),
            description="Load new and changed landing files, stage them, queue the days they touch."),
        "reconcile": dg.define_asset_job(
            "reconcile", selection=dg.AssetSelection.assets(*reconcile_keys),
            description="Lineage, recon and marts for one day (or a range: single-run backfill)."),
    }


def yesterday(now: datetime) -> str:
    return (now.astimezone(UTC).date() - timedelta(days=1)).isoformat()


def build_schedule(ingest_job) -> dg.ScheduleDefinition:
    @dg.schedule(name="nightly_schedule", cron_schedule=NIGHTLY_CRON, job=ingest_job, execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description="Every morning at 04:30 UTC: ingest what landed; the landing sensor then "
                 "requests a reconcile run per day the files queued (yesterday among them).")
    def nightly_schedule(context: dg.ScheduleEvaluationContext):
        day = yesterday(context.scheduled_execution_time or datetime.now(UTC))
        register_days(context.instance, [date.fromisoformat(day)])
        # The ingest writes the work file; each day then runs in its own engine (a run
        # with a partition computes in one, so ingest and days are separate runs).
        return dg.RunRequest(run_key=f"nightly:{day}", tags={TAG_NIGHT: day})

    return nightly_schedule


def _finish_run(run: dg.DagsterRun, instance: dg.DagsterInstance, duckdb: WarehouseResource,
                landing: LandingResource, success: bool) -> str:
    """Publish what a run launched by Dagster wrote (``chargeline run`` does it in-process)."""
    from pipeline.day_partitions import days_of_run
    from pipeline.engine import finish_day_run, finish_ingest

    warehouse = Path(duckdb.analysts or duckdb.database)
    if not duckdb.store:
        return "no store: nothing to publish"
    options = landing.settings().options
    days = days_of_run(run.tags, instance)
    if not days:
        if success:
            finish_ingest(warehouse, options)
        return f"ingest run {run.run_id}: published"
    stats = instance.get_run_stats(run.run_id)
    started = datetime.fromtimestamp(stats.start_time, UTC) if stats and stats.start_time else datetime.now(UTC)
    finish_day_run(warehouse, run.run_id, days, started, success, options)
    return f"run {run.run_id} of {days[0]}..{days[-1]}: {'published' if success else 'failed, days stay queued'}"


def build_publish_sensors(ingest_job, reconcile_job) -> list:
    """After a Dagster-launched run: publish its tables and views (success) or drop its
    engine and keep its days queued (failure)."""

    @dg.run_status_sensor(name="publish_finished_runs", run_status=dg.DagsterRunStatus.SUCCESS,
                          monitored_jobs=[ingest_job, reconcile_job], default_status=dg.DefaultSensorStatus.RUNNING,
                          description="Publishes each finished ingest or reconcile run to the analysts' warehouse.")
    def publish_finished_runs(context: dg.RunStatusSensorContext, duckdb: WarehouseResource,
                              landing: LandingResource):
        context.log.info(_finish_run(context.dagster_run, context.instance, duckdb, landing, True))

    @dg.run_failure_sensor(name="drop_failed_runs", monitored_jobs=[reconcile_job],
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="A failed reconcile run: its engine is dropped, its days stay queued.")
    def drop_failed_runs(context: dg.RunFailureSensorContext, duckdb: WarehouseResource, landing: LandingResource):
        context.log.info(_finish_run(context.dagster_run, context.instance, duckdb, landing, False))

    return [publish_finished_runs, drop_failed_runs]


def _changed_files(landing, known: dict[str, str]) -> list[tuple[str, str]]:
    from pipeline.ingest.files import discover

    out = []
    for f in discover(landing):
        digest = f.content_hash()
        if known.get(f.rel) != digest:
            out.append((f.rel, digest))
    return out


def evaluate_landing(landing, warehouse) -> list[dg.RunRequest] | dg.SkipReason:
    """What the sensor asks for, given the landing folder and the warehouse file.

    New or changed files first: one ``ingest`` run keyed by the set of file versions (so a
    tick that sees the same files again asks for nothing new). With nothing to ingest, one
    ``reconcile`` run per queued day, keyed by day and queue time (a day queued again by a
    later file gets a new run).
    """
    from pipeline.engine import work_path

    warehouse = Path(warehouse)
    if work_path(warehouse).exists():  # the queue as the ingest keeps it, not as last published
        warehouse = work_path(warehouse)
    try:
        conn = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:  # a run holds the write lock, or no warehouse yet
        if not warehouse.exists():
            conn = None
        else:
            return dg.SkipReason(f"warehouse busy: {exc.__class__.__name__}")
    try:
        known, pending = {}, []
        if conn is not None:
            tables = {r[0] for r in conn.execute(
                "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
            if "meta.files" in tables:
                known = dict(conn.execute("select source_file, content_hash from meta.files").fetchall())
            if "meta.pending_days" in tables:
                pending = conn.execute("select day, since_at from meta.pending_days order by day").fetchall()
    finally:
        if conn is not None:
            conn.close()
    changed = _changed_files(landing, known)
    if changed:
        key = hashlib.sha256(json.dumps(sorted(changed)).encode()).hexdigest()[:16]
        return [dg.RunRequest(job_name="ingest", run_key=f"ingest:{key}",
                              tags={"chargeline/files": str(len(changed))})]
    requests = [dg.RunRequest(job_name="reconcile", partition_key=day.isoformat(),
                              run_key=f"reconcile:{day.isoformat()}:{since.isoformat()}")
                for day, since in pending if day != LEGACY_GLOBAL_DAY]
    return requests or dg.SkipReason("no new files, no queued days")


def build_sensor(ingest_job, reconcile_job) -> dg.SensorDefinition:
    @dg.sensor(name="landing_sensor", jobs=[ingest_job, reconcile_job], minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description="Late or corrected files in the landing folder: ingest them, then "
               "re-materialize exactly the days they touch.")
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource, duckdb: WarehouseResource):
        requests = evaluate_landing(landing.settings().landing, Path(duckdb.analysts or duckdb.database))
        if isinstance(requests, list):
            register_days(context.instance, [date.fromisoformat(r.partition_key)
                                             for r in requests if r.partition_key])
        return requests

    return landing_sensor
