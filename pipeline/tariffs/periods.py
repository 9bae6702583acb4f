"""Charging periods built from OCPP meter samples, split so that each one is homogeneous.

OCPI asks the CPO to start a new ChargingPeriod at every moment that matters for the cost
(mod_cdrs, "ChargingPeriod"). When we re-price from OCPP data we play the CPO: the interval
between two meter samples becomes a period, cut again wherever a restriction of the tariff
can flip (a local time-of-day edge, local midnight, an energy threshold, a duration
threshold), with energy shared linearly in time inside a sample interval.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.tariffs.model import CdrDimension, CdrDimensionType, ChargingPeriod, Tariff

ZERO = Decimal(0)
SECONDS_PER_HOUR = Decimal(3600)
# Below this average power an interval counts as parking: meters creep a few Wh while idle.
IDLE_POWER_KW = Decimal("0.05")


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One OCPP sample: the energy register (kWh, cumulative) and optional power/current."""

    at: datetime
    energy_kwh: Decimal | None = None
    power_kw: Decimal | None = None
    current_a: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BuiltPeriods:
    """Periods for ``engine.price`` plus what was odd in the samples."""

    periods: tuple[ChargingPeriod, ...]
    warnings: tuple[str, ...]


def _seconds(a: datetime, b: datetime) -> Decimal:
    return Decimal((b - a) // timedelta(microseconds=1)) / Decimal(1_000_000)


def _zone(time_zone: str | tzinfo | None) -> tzinfo:
    if isinstance(time_zone, tzinfo):
        return time_zone
    try:
        return ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _tariff_edges(tariff: Tariff | None) -> tuple[set[int], list[Decimal], list[Decimal], bool]:
    """Minutes of day, kWh and duration thresholds, and whether local midnight matters."""
    minutes: set[int] = set()
    kwh: set[Decimal] = set()
    durations: set[Decimal] = set()
    midnight = False
    for element in tariff.elements if tariff else ():
        r = element.restrictions
        for m in (r.start_time, r.end_time):
            if m is not None:
                minutes.add(m % 1440)
        for v in (r.min_kwh, r.max_kwh):
            if v is not None:
                kwh.add(v)
        for v in (r.min_duration, r.max_duration):
            if v is not None:
                durations.add(v)
        if r.day_of_week is not None or r.start_date is not None or r.end_date is not None:
            midnight = True
    if midnight:
        minutes.add(0)
    return minutes, sorted(kwh), sorted(durations), bool(minutes)


def _clock_edges(a: datetime, b: datetime, minutes: set[int], zone: tzinfo) -> list[datetime]:
    """Instants strictly inside (a, b) where local time reads one of ``minutes``."""
    found = []
    day = a.astimezone(zone).date()
    last = b.astimezone(zone).date()
    while day <= last:
        for m in minutes:
            local = datetime.combine(day, time(m // 60, m % 60), tzinfo=zone)
            instant = local.astimezone(UTC)
            if a < instant < b:
                found.append(instant)
        day += timedelta(days=1)
    return found


def build_periods(
    samples: Iterable[MeterSample],
    *,
    tariff: Tariff | None = None,
    time_zone: str | tzinfo | None = "UTC",
    session_start: datetime | None = None,
    session_end: datetime | None = None,
    idle_power_kw: Decimal = IDLE_POWER_KW,
) -> BuiltPeriods:
    """Turn meter samples into charging periods for pricing.

    Parameters
    ----------
    samples
        Meter samples of one transaction, in any order; the energy register is cumulative.
        A sample without a register reading keeps the previous reading.
    tariff
        The tariff to be applied; its restrictions decide where periods are cut. Without one,
        periods follow the sample intervals only.
    time_zone
        The location's IANA zone, for time-of-day and day edges.
    session_start, session_end
        Transaction bounds; default to the first and last sample. Time outside the samples
        gets no energy.
    idle_power_kw
        Average power under which an interval counts as ``PARKING_TIME``.

    Returns
    -------
    BuiltPeriods
        Periods with ``ENERGY`` (kWh), ``TIME`` or ``PARKING_TIME`` (hours) and, when known,
        ``MIN_POWER``/``MAX_POWER`` (kW) and ``MIN_CURRENT``/``MAX_CURRENT`` (A).
    """
    warnings: list[str] = []
    zone = _zone(time_zone)
    ordered: dict[datetime, MeterSample] = {}
    for s in samples:
        if s.at.tzinfo is None:
            warnings.append(f"sample at {s.at.isoformat()} has no offset; read as UTC")
            s = MeterSample(s.at.replace(tzinfo=UTC), s.energy_kwh, s.power_kw, s.current_a)
        ordered[s.at] = s
    points = [ordered[k] for k in sorted(ordered)]
    if not points:
        return BuiltPeriods((), ("no meter samples",))
    start = session_start or points[0].at
    end = session_end or points[-1].at
    if points[0].at > start:
        points.insert(0, MeterSample(start, points[0].energy_kwh))
    if points[-1].at < end:
        points.append(MeterSample(end, None))
    points = [p for p in points if start <= p.at <= end]

    minutes, kwh_edges, duration_edges, _ = _tariff_edges(tariff)
    periods: list[ChargingPeriod] = []
    register: Decimal | None = None
    energy_total = ZERO
    for a, b in itertools.pairwise(points):
        seconds = _seconds(a.at, b.at)
        if seconds <= 0:
            continue
        if a.energy_kwh is not None:
            register = a.energy_kwh if register is None or a.energy_kwh >= register else register
        nxt = b.energy_kwh if b.energy_kwh is not None else register
        delta = ZERO
        if register is not None and nxt is not None:
            delta = nxt - register
            if delta < 0:
                warnings.append(
                    f"energy register fell from {register} to {nxt} kWh at {b.at.isoformat()}; "
                    "interval priced with no energy"
                )
                delta = ZERO
        power = a.power_kw if a.power_kw is not None else delta * SECONDS_PER_HOUR / seconds
        charging = delta > 0 or (a.power_kw is not None and a.power_kw > idle_power_kw)
        if delta > 0 and delta * SECONDS_PER_HOUR / seconds < idle_power_kw and a.power_kw is None:
            charging = False
        cuts = set(_clock_edges(a.at, b.at, minutes, zone)) if minutes else set()
        for threshold in kwh_edges:
            if delta > 0 and energy_total < threshold < energy_total + delta:
                offset = seconds * (threshold - energy_total) / delta
                cuts.add(a.at + timedelta(microseconds=int(offset * 1_000_000)))
        for threshold in duration_edges:
            edge = start + timedelta(seconds=float(threshold))
            if a.at < edge < b.at:
                cuts.add(edge)
        bounds = [a.at, *sorted(cuts), b.at]
        for lo, hi in itertools.pairwise(bounds):
            part = _seconds(lo, hi)
            if part <= 0:
                continue
            energy = delta * part / seconds
            dims = [
                CdrDimension(CdrDimensionType.energy, energy),
                CdrDimension(
                    CdrDimensionType.time if charging else CdrDimensionType.parking_time,
                    part / SECONDS_PER_HOUR,
                ),
            ]
            if charging:
                dims.append(CdrDimension(CdrDimensionType.min_power, power))
                dims.append(CdrDimension(CdrDimensionType.max_power, power))
                if a.current_a is not None:
                    dims.append(CdrDimension(CdrDimensionType.min_current, a.current_a))
                    dims.append(CdrDimension(CdrDimensionType.max_current, a.current_a))
            periods.append(ChargingPeriod(lo, tuple(dims), tariff.id if tariff else None, hi))
            energy_total += energy
        if b.energy_kwh is not None and (register is None or b.energy_kwh >= register):
            register = b.energy_kwh
    return BuiltPeriods(tuple(periods), tuple(warnings))
