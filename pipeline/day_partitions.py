"""The daily partitions of the reconciliation layers, and arithmetic on days.

Belongs here: the one partitions definition (UTC days, by session start) shared by assets,
jobs, the schedule, the sensor and ``chargeline run``, registering the days data arrives
for, and small helpers turning sets of days into partition keys and contiguous ranges.

The partitions are *dynamic*: there is no first day and no last one. A day becomes a
partition when data touches it (the runner and the sensor register the queued days, the
schedule yesterday), so a 2019 CDR and a 2035 test file are reconciled like today's.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import date, timedelta

import dagster as dg

# BackfillPolicy.single_run() is what lets one run write a range of days; its beta label
# would print once per partitioned asset on every import.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

PARTITIONS_NAME = "days"
TAG_RANGE_START = "dagster/asset_partition_range_start"
TAG_RANGE_END = "dagster/asset_partition_range_end"
TAG_PARTITION = "dagster/partition"

daily = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)


def register_days(instance: dg.DagsterInstance, days: Iterable[date]) -> list[str]:
    """Make ``days`` partitions of ``instance``; the keys added.

    Dagster orders dynamic partitions by insertion, and a key range (a backfill, a
    single-run range) means "the keys between these two in that order". Days are kept in
    calendar order so a range is the days between its bounds: a day older than the newest
    known one (2019 data arriving after 2026 data) re-inserts the later keys behind it.
    Materialization history is stored by key, so it survives the re-insertion.
    """
    wanted = {d.isoformat() for d in days if d is not None}
    known = list(instance.get_dynamic_partitions(PARTITIONS_NAME))
    new = sorted(wanted - set(known))
    if not new:
        return []
    later = [k for k in known if k > new[0]]
    for key in later:
        instance.delete_dynamic_partition(PARTITIONS_NAME, key)
    instance.add_dynamic_partitions(PARTITIONS_NAME, sorted({*new, *later}))
    return new


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def contiguous(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as (first, last) runs of consecutive days: one Dagster run per run."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run materialize the partitions first..last (single-run backfill)."""
    return {TAG_RANGE_START: first.isoformat(), TAG_RANGE_END: last.isoformat()}


def context_days(context) -> list[date]:
    """The days an asset (or asset check) run covers: its partition keys (one or a range),
    sorted; none when the run is not partitioned (a test, a full rebuild), which then
    writes and judges whole tables."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return []
    return sorted(date.fromisoformat(k) for k in context.partition_keys)


def days_of_run(tags, instance) -> list[date]:
    """The days a run's tags name: one partition, or a single-run range (its registered days)."""
    if TAG_PARTITION in tags:
        return [date.fromisoformat(tags[TAG_PARTITION])]
    if TAG_RANGE_START in tags and TAG_RANGE_END in tags:
        first, last = date.fromisoformat(tags[TAG_RANGE_START]), date.fromisoformat(tags[TAG_RANGE_END])
        known = {date.fromisoformat(k) for k in instance.get_dynamic_partitions(PARTITIONS_NAME)} if instance else set()
        return [d for d in day_range(first, last) if d in known] or day_range(first, last)
    return []


def run_days(context) -> list[date]:
    """The days of the run an asset check executes in.

    Checks of unpartitioned specs do not see the run's partitions through the context, so
    the run's tags are read: a single partition, or a single-run range (every registered
    day between its bounds). Empty: the run is not partitioned.
    """
    try:
        days = context_days(context)
    except Exception:  # an unpartitioned check context raises instead of answering
        days = []
    return days or days_of_run(context.run.tags, context.instance)
