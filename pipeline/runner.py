"""Run the pipeline in-process (what ``chargeline run`` and ``demo`` do): ingest, then the days.

A night is two kinds of run. The *ingest* run materializes every asset that is not
downstream of a partitioned one (raw, staging, ``meta_file_days``): it loads new and
changed files and queues the days they touch, whatever their year. Then one *reconcile*
run per contiguous range of queued (or requested) days materializes the partitioned
assets for that range and everything downstream of them.

A night never stops on data: integrity checks report (a check result and a row in
``meta.integrity_results``) and never block, and a reconcile run that fails leaves its
days queued while the other ranges still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg

from pipeline.config import Settings
from pipeline.day_partitions import contiguous, day_range, range_tags, register_days
from pipeline.day_queue import pending_days
from pipeline.definitions import ALL_ASSETS, ALL_CHECKS
from pipeline.engine import drop_abandoned, finish_day_run, finish_ingest, work_lock, work_path
from pipeline.publish import locked
from pipeline.resources import make_resources
from pipeline.schedules import split_assets
from pipeline.warehouse import connect


def asset_split() -> tuple[frozenset[dg.AssetKey], frozenset[dg.AssetKey]]:
    return split_assets(tuple(ALL_ASSETS))


@dataclass
class NightlyResult:
    """The runs of one night, in order; quacks like one ``ExecuteInProcessResult``."""

    runs: list[tuple[str, dg.ExecuteInProcessResult]] = field(default_factory=list)
    days: list[date] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(r.success for _, r in self.runs)

    @property
    def failed_runs(self) -> list[str]:
        """Names of the runs with a failed step (``ingest`` or ``first..last``)."""
        return [name for name, r in self.runs if not r.success]

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for _, r in self.runs]

    @property
    def all_events(self) -> list:
        return [e for _, r in self.runs for e in r.all_events]

    def get_asset_materialization_events(self) -> list:
        return [e for _, r in self.runs for e in r.get_asset_materialization_events()]

    def get_asset_check_evaluations(self) -> list:
        return [e for _, r in self.runs for e in r.get_asset_check_evaluations()]


def _materialize(settings, keys, tags, raise_on_error, instance, log_level) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=dg.AssetSelection.assets(*keys),
        resources=make_resources(settings),
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=raise_on_error,
        instance=instance,
        tags=tags,
    )


def run_pipeline(
    settings: Settings,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "WARNING",
    days: tuple[date, date] | None = None,
    only: bool = False,
    ingest: bool = True,
) -> NightlyResult:
    """Ingest what is new, then reconcile the queued days and ``days`` (first, last).

    ``only``: reconcile exactly ``days`` (other queued days wait for their own run: what a
    process of a parallel backfill does). ``ingest=False``: the files were ingested already.

    The console log defaults to warnings: the CLI prints its own summary, and Dagster's
    per-step chatter would bury it. Failures still print their stack traces. A failed
    ingest run ends the night (nothing current to reconcile from); a failed reconcile run
    keeps its days queued for the next night and the other ranges still run. After each
    run its results are published (``pipeline.engine``) and the analysts' views rebuilt.
    """
    instance = instance or dg.DagsterInstance.ephemeral()
    ingest_keys, reconcile_keys = asset_split()
    out = NightlyResult()
    options = settings.options
    drop_abandoned(settings.warehouse)
    if ingest:
        run = _materialize(settings, ingest_keys, None, raise_on_error, instance, log_level)
        out.runs.append(("ingest", run))
        if not run.success:
            return out
        finish_ingest(settings.warehouse, options)
    work = work_path(settings.warehouse)
    queued: list[date] = []
    if work.exists():
        with locked(work_lock(work), exclusive=False), connect(work, read_only=True) as conn:
            queued = [d for d, _ in pending_days(conn)]
    requested = day_range(*days) if days else []
    wanted = sorted(set(requested) if only else {*queued, *requested})
    out.days = wanted
    register_days(instance, wanted)
    for first, last in contiguous(wanted):
        started = datetime.now(UTC)
        run = _materialize(settings, reconcile_keys, range_tags(first, last), raise_on_error, instance, log_level)
        out.runs.append((f"{first}..{last}", run))
        finish_day_run(settings.warehouse, run.run_id, day_range(first, last), started, run.success, options)
    return out
