"""OCPI 2.2.1 tariff pricing: charging periods + one tariff version -> a priced breakdown.

The rules follow the OCPI 2.2.1 text of the ``release-2.2.1-bugfixes`` branch (mod_tariffs and
the ``step_size`` paragraph of mod_cdrs); ``docs/tariff-engine.md`` quotes them and lists the
decisions taken where the text is silent. Money is ``Decimal`` throughout and only rounded
(4 decimals, half up) when the breakdown is rendered by ``to_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.tariffs.model import (
    SESSION_TIME,
    CdrDimensionType,
    ChargingPeriod,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
SECONDS_PER_HOUR = Decimal(3600)
WH_PER_KWH = Decimal(1000)
MONEY_PLACES = Decimal("0.0001")

# Cost buckets of the breakdown, named after the CDR fields they fill.
ENERGY = "ENERGY"
TIME = "TIME"
PARKING_TIME = "PARKING_TIME"
FLAT = "FLAT"
RESERVATION_TIME = "RESERVATION_TIME"
RESERVATION_FLAT = "RESERVATION_FLAT"
# GIREVE SESSION_TIME (model.SESSION_TIME): billed in the CDR's total_time_cost, as OCPI
# has no field for time charging or not.
SESSION = SESSION_TIME

_PRICED_DIMENSIONS = {
    CdrDimensionType.energy,
    CdrDimensionType.time,
    CdrDimensionType.parking_time,
    CdrDimensionType.reservation_time,
}
_BUCKET_KIND = {
    ENERGY: TariffDimensionType.energy,
    TIME: TariffDimensionType.time,
    PARKING_TIME: TariffDimensionType.parking_time,
    RESERVATION_TIME: TariffDimensionType.time,
    SESSION: SESSION_TIME,
}
# Dimensions the engine reads for restrictions, not prices; anything else gets a warning.
_CONTEXT_DIMENSIONS = {
    CdrDimensionType.current,
    CdrDimensionType.max_current,
    CdrDimensionType.min_current,
    CdrDimensionType.power,
    CdrDimensionType.max_power,
    CdrDimensionType.min_power,
    CdrDimensionType.state_of_charge,
    CdrDimensionType.energy_import,
    CdrDimensionType.energy_export,
}


@dataclass(frozen=True, slots=True)
class CostLine:
    """One priced quantity: a period's volume of one dimension under one price component.

    ``volume`` is what was consumed (kWh, or seconds for time dimensions); ``billed`` adds the
    ``step_size`` round-up, which lands on the last line of its dimension only.
    """

    period: int
    bucket: str
    element: int
    volume: Decimal
    billed: Decimal
    price: Decimal
    vat: Decimal | None
    excl_vat: Decimal
    incl_vat: Decimal | None


@dataclass(frozen=True, slots=True)
class PeriodChoice:
    """The tariff element chosen per dimension for one charging period (None = free)."""

    period: int
    start: datetime
    elements: Mapping[str, int | None]


def _round_money(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(MONEY_PLACES, ROUND_HALF_UP))


def _round_volume(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(MONEY_PLACES, ROUND_HALF_UP))


def _price_dict(price: Price) -> dict[str, float | None]:
    return {"excl_vat": _round_money(price.excl_vat), "incl_vat": _round_money(price.incl_vat)}


@dataclass(frozen=True)
class PriceBreakdown:
    """The price of one session under one tariff version, per CDR cost field.

    ``incl_vat`` is None (unknown) as soon as a non-zero cost comes from a price component
    without ``vat``: OCPI says an absent VAT is not 0 % VAT. ``total_cost`` is clamped by the
    tariff's ``min_price``/``max_price``; the component costs are not.
    """

    currency: str
    tariff_id: str
    total_cost: Price
    total_cost_before_limits: Price
    total_fixed_cost: Price
    total_energy_cost: Price
    total_time_cost: Price
    total_parking_cost: Price
    total_reservation_cost: Price
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal
    total_reservation_time: Decimal
    billed_energy: Decimal
    billed_time: Decimal
    billed_parking_time: Decimal
    billed_reservation_time: Decimal
    price_limit_applied: str | None
    reservation_expired: bool
    periods: tuple[PeriodChoice, ...]
    lines: tuple[CostLine, ...]
    warnings: tuple[str, ...]

    def cdr_fields(self) -> dict[str, Any]:
        """The CDR's own total_* field names, money as ``{"excl_vat", "incl_vat"}`` (4 dp)."""
        return {
            "total_cost": _price_dict(self.total_cost),
            "total_fixed_cost": _price_dict(self.total_fixed_cost),
            "total_energy_cost": _price_dict(self.total_energy_cost),
            "total_time_cost": _price_dict(self.total_time_cost),
            "total_parking_cost": _price_dict(self.total_parking_cost),
            "total_reservation_cost": _price_dict(self.total_reservation_cost),
            "total_energy": _round_volume(self.total_energy),
            "total_time": _round_volume(self.total_time),
            "total_parking_time": _round_volume(self.total_parking_time),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready; money and volumes rounded half up to 4 decimals."""
        return {
            "currency": self.currency,
            "tariff_id": self.tariff_id,
            **self.cdr_fields(),
            "total_reservation_time": _round_volume(self.total_reservation_time),
            "total_cost_before_limits": _price_dict(self.total_cost_before_limits),
            "price_limit_applied": self.price_limit_applied,
            "reservation_expired": self.reservation_expired,
            "billed": {
                "energy_kwh": _round_volume(self.billed_energy),
                "time_h": _round_volume(self.billed_time),
                "parking_time_h": _round_volume(self.billed_parking_time),
                "reservation_time_h": _round_volume(self.billed_reservation_time),
            },
            "periods": [
                {
                    "period": p.period,
                    "start_date_time": p.start.isoformat().replace("+00:00", "Z"),
                    "elements": dict(p.elements),
                }
                for p in self.periods
            ],
            "lines": [
                {
                    "period": line.period,
                    "dimension": line.bucket,
                    "element": line.element,
                    "volume": float(line.volume),
                    "billed": float(line.billed),
                    "price": float(line.price),
                    "vat": None if line.vat is None else float(line.vat),
                    "excl_vat": _round_money(line.excl_vat),
                    "incl_vat": _round_money(line.incl_vat),
                }
                for line in self.lines
            ],
            "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class _State:
    """What restrictions are evaluated against, at the start of one charging period."""

    seconds_of_day: int
    local_date: Any
    weekday: int
    energy_before_kwh: Decimal
    duration_s: Decimal
    power_min: Decimal | None
    power_max: Decimal | None
    current_min: Decimal | None
    current_max: Decimal | None


def _resolve_zone(time_zone: str | tzinfo | None, warnings: list[str]) -> tzinfo:
    if isinstance(time_zone, tzinfo):
        return time_zone
    try:
        return ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        warnings.append(f"unknown time zone {time_zone!r}; local time read as UTC")
        return ZoneInfo("UTC")


def _holds(r: TariffRestrictions, st: _State, missing: set[str]) -> bool:
    """All restrictions of one element hold for this state (min inclusive, max exclusive)."""
    if r.start_time is not None or r.end_time is not None:
        start = (r.start_time or 0) * 60
        end = (r.end_time if r.end_time is not None else 1440) * 60
        t = st.seconds_of_day
        if start < end:
            if not start <= t < end:
                return False
        elif start > end and not (t >= start or t < end):
            # the window wraps midnight, e.g. 22:00-06:00 or 20:00-00:00
            return False
        # start == end reads as the whole day
    if r.start_date is not None and st.local_date < r.start_date:
        return False
    if r.end_date is not None and st.local_date >= r.end_date:
        return False
    if r.day_of_week is not None and st.weekday not in r.day_of_week:
        return False
    if r.min_kwh is not None and st.energy_before_kwh < r.min_kwh:
        return False
    if r.max_kwh is not None and st.energy_before_kwh >= r.max_kwh:
        return False
    if r.min_duration is not None and st.duration_s < r.min_duration:
        return False
    if r.max_duration is not None and st.duration_s >= r.max_duration:
        return False
    if r.min_power is not None:
        if st.power_min is None:
            missing.add("power")
            return False
        if st.power_min < r.min_power:
            return False
    if r.max_power is not None:
        if st.power_max is None:
            missing.add("power")
            return False
        if st.power_max >= r.max_power:
            return False
    if r.min_current is not None:
        if st.current_min is None:
            missing.add("current")
            return False
        if st.current_min < r.min_current:
            return False
    if r.max_current is not None:
        if st.current_max is None:
            missing.add("current")
            return False
        if st.current_max >= r.max_current:
            return False
    return True


def _first_of(
    values: Mapping[CdrDimensionType, Decimal], *kinds: CdrDimensionType
) -> Decimal | None:
    for kind in kinds:
        if kind in values:
            return values[kind]
    return None


def _candidates(
    tariff: Tariff, reservation: bool, expired: bool
) -> list[tuple[int, TariffElement]]:
    """Elements that may price a context, in the order the spec says to try them."""
    indexed = list(enumerate(tariff.elements))
    if not reservation:
        return [(i, e) for i, e in indexed if e.restrictions.reservation is None]
    booked = [(i, e) for i, e in indexed if e.restrictions.reservation is ReservationRestrictionType.reservation]
    if not expired:
        return booked
    # An expired reservation is priced by RESERVATION_EXPIRES elements first (spec note on
    # ReservationRestrictionType); RESERVATION elements still price what those lack.
    expires = [
        (i, e)
        for i, e in indexed
        if e.restrictions.reservation is ReservationRestrictionType.reservation_expires
    ]
    return expires + booked


def _find(
    candidates: Sequence[tuple[int, TariffElement]],
    kind: TariffDimensionType,
    st: _State,
    missing: set[str],
) -> tuple[int, PriceComponent] | None:
    for index, element in candidates:
        component = next((c for c in element.price_components if c.type == kind), None)
        if component is None:
            continue
        if element.restrictions.is_empty or _holds(element.restrictions, st, missing):
            return index, component
    return None


def _step_up(total: Decimal, step: Decimal) -> Decimal:
    if step <= 0 or total <= 0:
        return total
    return (total / step).to_integral_value(ROUND_CEILING) * step


def price(
    periods: Iterable[ChargingPeriod],
    tariff: Tariff,
    time_zone: str | tzinfo | None = "UTC",
    *,
    session_start: datetime | None = None,
    session_end: datetime | None = None,
    reservation_expired: bool | None = None,
) -> PriceBreakdown:
    """Price charging periods under one tariff version with the OCPI 2.2.1 rules.

    Parameters
    ----------
    periods
        Charging periods (from a CDR, or built by ``pipeline.tariffs.periods``). Time volumes
        are hours, energy kWh; ``RESERVATION_TIME`` volumes are priced by reservation elements.
    tariff
        The tariff version in force at session start.
    time_zone
        IANA name (or tzinfo) of the location: restrictions on time of day, date and day of
        week are local time.
    session_start, session_end
        The charging session's bounds; default to the first non-reservation period's start
        and the last period's ``end``. ``min_duration``/``max_duration`` count from the start.
    reservation_expired
        Whether a reservation expired without charging; by default, inferred as "the periods
        hold reservation time and nothing else".

    Returns
    -------
    PriceBreakdown
        Costs per CDR field, the element chosen per period and dimension, and warnings for
        every deviation met on the way. Never raises on odd data.
    """
    warnings: list[str] = list(tariff.warnings)
    zone = _resolve_zone(time_zone, warnings)
    ordered = sorted(periods, key=lambda p: p.start)

    # Per period: priced volumes (time in whole seconds), restriction context, reservation flag.
    volumes: list[dict[CdrDimensionType, Decimal]] = []
    context: list[dict[CdrDimensionType, Decimal]] = []
    unknown: set[str] = set()
    for p in ordered:
        vol: dict[CdrDimensionType, Decimal] = {}
        ctx: dict[CdrDimensionType, Decimal] = {}
        for d in p.dimensions:
            kind = d.type
            if kind in _PRICED_DIMENSIONS:
                value = d.volume
                if value < 0:
                    warnings.append(f"negative {kind} volume {value} in period at {p.start.isoformat()}; read as 0")
                    value = ZERO
                vol[kind] = vol.get(kind, ZERO) + value
            elif kind in _CONTEXT_DIMENSIONS:
                ctx[kind] = d.volume
            elif kind is not CdrDimensionType.flat:
                unknown.add(str(kind))
        for kind in (CdrDimensionType.time, CdrDimensionType.parking_time, CdrDimensionType.reservation_time):
            if kind in vol:
                # OCPI times have whole seconds; CDR hours carry 4 decimals (0.36 s), so
                # snapping to the nearest second restores the duration that was measured.
                vol[kind] = (vol[kind] * SECONDS_PER_HOUR).quantize(Decimal(1), ROUND_HALF_UP)
        volumes.append(vol)
        context.append(ctx)
    if unknown:
        warnings.append(f"dimension types not priced: {', '.join(sorted(unknown))}")

    charging_kinds = (CdrDimensionType.energy, CdrDimensionType.time, CdrDimensionType.parking_time)
    is_reservation = [
        CdrDimensionType.reservation_time in vol and not any(vol.get(k, ZERO) > 0 for k in charging_kinds)
        for vol in volumes
    ]
    has_reservation = any(vol.get(CdrDimensionType.reservation_time, ZERO) > 0 for vol in volumes)
    has_charging = any(any(vol.get(k, ZERO) > 0 for k in charging_kinds) for vol in volumes)
    expired = has_reservation and not has_charging if reservation_expired is None else reservation_expired

    charging_idx = [i for i, r in enumerate(is_reservation) if not r]
    start = session_start or (ordered[charging_idx[0]].start if charging_idx else None)
    reservation_start = ordered[0].start if ordered else None
    end = session_end or (ordered[-1].end if ordered else None)

    charge_candidates = _candidates(tariff, reservation=False, expired=False)
    has_session_time = any(c.type == SESSION_TIME for e in tariff.elements for c in e.price_components)
    reserve_candidates = _candidates(tariff, reservation=True, expired=expired)

    lines: list[CostLine] = []
    choices: list[PeriodChoice] = []
    missing: set[str] = set()
    energy_so_far = ZERO
    flat_done = reservation_flat_done = False
    for i, p in enumerate(ordered):
        vol, ctx = volumes[i], context[i]
        local = p.start.astimezone(zone)
        origin = reservation_start if is_reservation[i] else start
        st = _State(
            seconds_of_day=local.hour * 3600 + local.minute * 60 + local.second,
            local_date=local.date(),
            weekday=local.weekday(),
            energy_before_kwh=energy_so_far,
            duration_s=Decimal((p.start - origin).total_seconds()) if origin else ZERO,
            power_min=_first_of(ctx, CdrDimensionType.min_power, CdrDimensionType.power, CdrDimensionType.max_power),
            power_max=_first_of(ctx, CdrDimensionType.max_power, CdrDimensionType.power, CdrDimensionType.min_power),
            current_min=_first_of(ctx, CdrDimensionType.min_current, CdrDimensionType.current, CdrDimensionType.max_current),
            current_max=_first_of(ctx, CdrDimensionType.max_current, CdrDimensionType.current, CdrDimensionType.min_current),
        )
        chosen: dict[str, int | None] = {}
        plan: list[tuple[str, CdrDimensionType, TariffDimensionType, Sequence[tuple[int, TariffElement]]]] = [
            (ENERGY, CdrDimensionType.energy, TariffDimensionType.energy, charge_candidates),
            (TIME, CdrDimensionType.time, TariffDimensionType.time, charge_candidates),
            (PARKING_TIME, CdrDimensionType.parking_time, TariffDimensionType.parking_time, charge_candidates),
            (RESERVATION_TIME, CdrDimensionType.reservation_time, TariffDimensionType.time, reserve_candidates),
        ]
        for bucket, cdr_kind, tariff_kind, candidates in plan:
            amount = vol.get(cdr_kind)
            if amount is None or amount <= 0:
                continue
            found = _find(candidates, tariff_kind, st, missing)
            chosen[bucket] = None if found is None else found[0]
            if found is not None:
                index, component = found
                lines.append(CostLine(i, bucket, index, amount, amount, component.price, component.vat, ZERO, None))
        if has_session_time and not is_reservation[i]:
            # The whole period, charging or not: its length when known, else its time volumes.
            if p.end is not None and p.end > p.start:
                amount = Decimal((p.end - p.start).total_seconds()).quantize(Decimal(1), ROUND_HALF_UP)
            else:
                amount = vol.get(CdrDimensionType.time, ZERO) + vol.get(CdrDimensionType.parking_time, ZERO)
            found = _find(charge_candidates, SESSION_TIME, st, missing) if amount > 0 else None
            if found is not None:
                chosen[SESSION] = found[0]
                lines.append(CostLine(i, SESSION, found[0], amount, amount, found[1].price, found[1].vat, ZERO, None))
        if is_reservation[i]:
            if not reservation_flat_done:
                found = _find(reserve_candidates, TariffDimensionType.flat, st, missing)
                if found is not None:
                    reservation_flat_done = True
                    chosen[RESERVATION_FLAT] = found[0]
                    lines.append(CostLine(i, RESERVATION_FLAT, found[0], Decimal(1), Decimal(1), found[1].price, found[1].vat, ZERO, None))
        elif not flat_done and not expired:
            # FLAT is billed once per session: by the first period whose element has one.
            found = _find(charge_candidates, TariffDimensionType.flat, st, missing)
            if found is not None:
                flat_done = True
                chosen[FLAT] = found[0]
                lines.append(CostLine(i, FLAT, found[0], Decimal(1), Decimal(1), found[1].price, found[1].vat, ZERO, None))
        energy_so_far += vol.get(CdrDimensionType.energy, ZERO)
        choices.append(PeriodChoice(i, p.start, chosen))
    if not ordered:
        warnings.append("no charging periods: nothing to price")
    for what in sorted(missing):
        warnings.append(f"a {what} restriction could not be evaluated (periods carry no {what}); element skipped")

    # step_size, once per session (mod_cdrs, bugfix branch): ENERGY on its total; TIME and
    # PARKING_TIME once between them, on parking only when parking was priced; reservation
    # time on its own total. The round-up lands on the last priced line of that dimension.
    time_bucket = PARKING_TIME if any(line.bucket == PARKING_TIME for line in lines) else TIME
    for bucket, unit in ((ENERGY, WH_PER_KWH), (time_bucket, Decimal(1)), (RESERVATION_TIME, Decimal(1)),
                         (SESSION, Decimal(1))):
        priced = [k for k, line in enumerate(lines) if line.bucket == bucket]
        if not priced:
            continue
        last = lines[priced[-1]]
        kind = _BUCKET_KIND[bucket]
        step = next(
            (c.step_size for c in tariff.elements[last.element].price_components if c.type == kind), 0
        )
        total = sum((lines[k].volume for k in priced), ZERO)
        extra = _step_up(total, Decimal(step) / unit) - total
        if extra > 0:
            lines[priced[-1]] = CostLine(
                last.period, last.bucket, last.element, last.volume, last.volume + extra,
                last.price, last.vat, ZERO, None,
            )

    vat_missing = False
    tax_included = bool(tariff.tax_included)
    costed: list[CostLine] = []
    # Exact numerators (price x volume, VAT factor applied) per line; the division by 3600
    # for time happens once per sum, so splitting a period cannot change a total.
    numerators: list[tuple[str, bool, Decimal, Decimal | None]] = []
    for line in lines:
        per_hour = line.bucket not in (ENERGY, FLAT, RESERVATION_FLAT)
        amount = line.price * line.billed
        if line.vat is not None:
            factor = (HUNDRED + line.vat) / HUNDRED
            excl, incl = (amount / factor, amount) if tax_included else (amount, amount * factor)
        elif amount == 0:
            excl, incl = amount, amount
        else:
            vat_missing = True
            excl, incl = amount, (amount if tax_included else None)
        numerators.append((line.bucket, per_hour, excl, incl))
        divisor = SECONDS_PER_HOUR if per_hour else Decimal(1)
        costed.append(CostLine(
            line.period, line.bucket, line.element, line.volume, line.billed, line.price, line.vat,
            excl / divisor, None if incl is None else incl / divisor,
        ))
    if vat_missing:
        if tax_included:
            warnings.append("tax_included tariff without vat: excl. VAT amounts equal the tax-inclusive prices")
        else:
            warnings.append("price component without vat: incl. VAT unknown (absent VAT is not 0 % VAT)")

    def bucket_price(*buckets: str) -> Price:
        sums = {False: [ZERO, ZERO], True: [ZERO, ZERO]}
        incl_known = True
        for bucket, per_hour, excl, incl in numerators:
            if buckets and bucket not in buckets:
                continue
            sums[per_hour][0] += excl
            if incl is None:
                incl_known = False
            else:
                sums[per_hour][1] += incl
        total_excl = sums[False][0] + sums[True][0] / SECONDS_PER_HOUR
        total_incl = sums[False][1] + sums[True][1] / SECONDS_PER_HOUR
        return Price(total_excl, total_incl if incl_known else None)

    energy_cost = bucket_price(ENERGY)
    time_cost = bucket_price(TIME, SESSION)
    parking_cost = bucket_price(PARKING_TIME)
    fixed_cost = bucket_price(FLAT)
    reservation_cost = bucket_price(RESERVATION_TIME, RESERVATION_FLAT)
    before = bucket_price()
    total_excl, total_incl = before.excl_vat, before.incl_vat
    limit: str | None = None
    if tariff.min_price is not None:
        if tariff.min_price.excl_vat is not None and total_excl < tariff.min_price.excl_vat:
            total_excl, limit = tariff.min_price.excl_vat, "min_price"
        if total_incl is not None and tariff.min_price.incl_vat is not None and total_incl < tariff.min_price.incl_vat:
            total_incl, limit = tariff.min_price.incl_vat, "min_price"
    if tariff.max_price is not None:
        if tariff.max_price.excl_vat is not None and total_excl > tariff.max_price.excl_vat:
            total_excl, limit = tariff.max_price.excl_vat, "max_price"
        if total_incl is not None and tariff.max_price.incl_vat is not None and total_incl > tariff.max_price.incl_vat:
            total_incl, limit = tariff.max_price.incl_vat, "max_price"

    def volume_sum(kind: CdrDimensionType) -> Decimal:
        total = ZERO
        for p in ordered:
            for d in p.dimensions:
                if d.type == kind and d.volume > 0:
                    total += d.volume
        return total

    def billed_sum(bucket: str, unit: Decimal) -> Decimal:
        return sum((line.billed for line in costed if line.bucket == bucket), ZERO) / unit

    if start is not None and end is not None and end >= start:
        total_time = Decimal((end - start).total_seconds()) / SECONDS_PER_HOUR
    else:
        total_time = volume_sum(CdrDimensionType.time) + volume_sum(CdrDimensionType.parking_time)
    return PriceBreakdown(
        currency=tariff.currency,
        tariff_id=tariff.id,
        total_cost=Price(total_excl, total_incl),
        total_cost_before_limits=before,
        total_fixed_cost=fixed_cost,
        total_energy_cost=energy_cost,
        total_time_cost=time_cost,
        total_parking_cost=parking_cost,
        total_reservation_cost=reservation_cost,
        total_energy=volume_sum(CdrDimensionType.energy),
        total_time=total_time,
        total_parking_time=volume_sum(CdrDimensionType.parking_time),
        total_reservation_time=volume_sum(CdrDimensionType.reservation_time),
        billed_energy=billed_sum(ENERGY, Decimal(1)),
        billed_time=billed_sum(TIME, SECONDS_PER_HOUR),
        billed_parking_time=billed_sum(PARKING_TIME, SECONDS_PER_HOUR),
        billed_reservation_time=billed_sum(RESERVATION_TIME, SECONDS_PER_HOUR),
        price_limit_applied=limit,
        reservation_expired=bool(expired),
        periods=tuple(choices),
        lines=tuple(costed),
        warnings=tuple(warnings),
    )
