"""The daily partitions of the reconciliation layers, and arithmetic on days.

Belongs here: the one ``DailyPartitionsDefinition`` (UTC days, by session start) shared by
assets, jobs, the schedule, the sensor and ``chargeline run``, and small helpers turning
sets of days into partition keys and contiguous ranges.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import dagster as dg

# BackfillPolicy.single_run() is what lets one run write a range of days; its beta label
# would print once per partitioned asset on every import.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

# Before the earliest data any deployment has (the generator writes 2026 days). A network
# with older history sets CHARGELINE_PARTITIONS_START before starting Dagster or a run.
DEFAULT_START = "2026-01-01"
TAG_RANGE_START = "dagster/asset_partition_range_start"
TAG_RANGE_END = "dagster/asset_partition_range_end"


def partitions_start() -> date:
    return date.fromisoformat(os.environ.get("CHARGELINE_PARTITIONS_START", DEFAULT_START))


# end_offset=1: today's partition exists, so a file with today's sessions can be reconciled
# the moment it lands instead of waiting for midnight.
daily = dg.DailyPartitionsDefinition(
    start_date=partitions_start().isoformat(), timezone="UTC", end_offset=1,
)


def last_day(now: datetime | None = None) -> date:
    """The newest partition: today (UTC)."""
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def clamp(days: Iterable[date], now: datetime | None = None) -> list[date]:
    """``days`` that are partitions (not before the start, not after today), sorted."""
    lo, hi = partitions_start(), last_day(now)
    return sorted({d for d in days if d is not None and lo <= d <= hi})


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


def context_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days an asset run covers: its partition keys (one or a range); none when the
    run is not partitioned (a test, a full rebuild), which then writes whole tables."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return []
    return [date.fromisoformat(k) for k in context.partition_keys]
