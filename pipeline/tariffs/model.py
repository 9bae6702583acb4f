"""OCPI tariff and charging-period model, read from OCPI 2.1.1, 2.2.1 and 2.3.0 JSON.

Wire names are kept as ``StrEnum`` values; amounts are ``Decimal``. The readers never raise
on a malformed field of a record that is otherwise usable: they drop the field and append a
sentence to the object's ``warnings`` so that pricing can say what it could not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.models.ocpi import (
    CdrDimensionType,
    DayOfWeek,
    ReservationRestrictionType,
    TariffDimensionType,
    TariffType,
)


def to_decimal(value: Any) -> Decimal | None:
    """Read a JSON number (int, float, Decimal or numeric string) as ``Decimal``.

    Floats go through ``str`` so that ``0.1`` stays ``Decimal('0.1')``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def parse_datetime(value: Any) -> datetime | None:
    """Read an OCPI DateTime; one without an offset is UTC, as OCPI prescribes."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_DATE_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


def parse_time_of_day(value: Any) -> int | None:
    """``"HH:MM"`` to minutes after midnight; ``"24:00"`` reads as 1440 (end of day)."""
    if not isinstance(value, str):
        return None
    m = _TIME_RE.match(value)
    if not m:
        return None
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def parse_date(value: Any) -> date | None:
    """``"YYYY-MM-DD"`` to a date, or None when it is not one."""
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Price:
    """An amount excluding and including VAT; ``None`` means unknown, not zero."""

    excl_vat: Decimal | None
    incl_vat: Decimal | None = None


def read_price(value: Any) -> Price | None:
    """Read a Price in any OCPI shape.

    2.2.1 ``{"excl_vat", "incl_vat"}``; 2.3.0 ``{"before_taxes", "taxes": [{"amount"}]}`` (or
    ``after_taxes`` as in 2.3.0 tariff min/max prices); 2.1.1 a bare number (excl. VAT).
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        amount = to_decimal(value)
        return None if amount is None else Price(amount, None)
    if "excl_vat" in value or "incl_vat" in value:
        return Price(to_decimal(value.get("excl_vat")), to_decimal(value.get("incl_vat")))
    if "before_taxes" in value:
        before = to_decimal(value.get("before_taxes"))
        after = to_decimal(value.get("after_taxes"))
        taxes = value.get("taxes")
        if after is None and isinstance(taxes, list) and before is not None:
            amounts = [to_decimal(t.get("amount")) if isinstance(t, Mapping) else None for t in taxes]
            if all(a is not None for a in amounts):
                after = before + sum(amounts, Decimal(0))
        return Price(before, after)
    return None


# GIREVE's OCPI 2.1.1 deviation (GIREVE_Tech_OCPI_V2.1.1, cpo_tariffs.md 3.11.2): "time
# charging or not: defined in hours, step_size multiplier: 1 second", i.e. the whole session
# from start to end, parking included. Not an OCPI TariffDimensionType; read, priced and warned.
SESSION_TIME = "SESSION_TIME"


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """OCPI ``PriceComponent``: price per unit excl. VAT, VAT percentage, step size.

    ``type`` is a ``TariffDimensionType`` or the string ``SESSION_TIME`` (GIREVE).
    """

    type: TariffDimensionType | str
    price: Decimal
    step_size: int = 0
    vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """OCPI ``TariffRestrictions``, pre-parsed (times of day as minutes after midnight)."""

    start_time: int | None = None
    end_time: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: Decimal | None = None
    max_duration: Decimal | None = None
    day_of_week: frozenset[int] | None = None
    reservation: ReservationRestrictionType | None = None

    @property
    def is_empty(self) -> bool:
        return self == _NO_RESTRICTIONS


_NO_RESTRICTIONS = TariffRestrictions()


@dataclass(frozen=True, slots=True)
class TariffElement:
    """OCPI ``TariffElement``: price components that apply while the restrictions hold."""

    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions = _NO_RESTRICTIONS


@dataclass(frozen=True, slots=True)
class Tariff:
    """OCPI ``Tariff`` (one version), whichever OCPI version it was read from."""

    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    country_code: str | None = None
    party_id: str | None = None
    type: TariffType | str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    last_updated: datetime | None = None
    tax_included: bool | None = None
    ocpi_version: str = "2.2.1"
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CdrDimension:
    """One measured quantity of a charging period; ``type`` is a raw string when unknown."""

    type: CdrDimensionType | str
    volume: Decimal


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    """OCPI ``ChargingPeriod``; ``end`` is the next period's start (or the session end)."""

    start: datetime
    dimensions: tuple[CdrDimension, ...]
    tariff_id: str | None = None
    end: datetime | None = None

    def volume(self, dimension: CdrDimensionType) -> Decimal | None:
        """Sum of the volumes of one dimension type, None when the period has none."""
        found = [d.volume for d in self.dimensions if d.type == dimension]
        return sum(found, Decimal(0)) if found else None


@dataclass(frozen=True, slots=True)
class Cdr:
    """The parts of an OCPI CDR that pricing and its comparison need."""

    id: str | None
    start_date_time: datetime | None
    end_date_time: datetime | None
    currency: str | None
    charging_periods: tuple[ChargingPeriod, ...]
    tariff_ids: tuple[str, ...]
    tariffs: tuple[Tariff, ...]
    totals: Mapping[str, Price | None]
    volumes: Mapping[str, Decimal | None]
    ocpi_version: str = "2.2.1"
    warnings: tuple[str, ...] = ()


COST_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)
VOLUME_FIELDS = ("total_energy", "total_time", "total_parking_time")


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def read_restrictions(raw: Any, where: str, warnings: list[str]) -> TariffRestrictions:
    """Read TariffRestrictions; an unreadable field is dropped with a warning."""
    if raw is None:
        return _NO_RESTRICTIONS
    if not isinstance(raw, Mapping):
        warnings.append(f"{where}: restrictions is not an object; ignored")
        return _NO_RESTRICTIONS
    values: dict[str, Any] = {}
    for key in ("start_time", "end_time"):
        if raw.get(key) is not None:
            minutes = parse_time_of_day(raw[key])
            if minutes is None:
                warnings.append(f"{where}: {key} {raw[key]!r} is not HH:MM; restriction ignored")
            else:
                values[key] = minutes
    for key in ("start_date", "end_date"):
        if raw.get(key) is not None:
            day = parse_date(raw[key])
            if day is None:
                warnings.append(f"{where}: {key} {raw[key]!r} is not YYYY-MM-DD; restriction ignored")
            else:
                values[key] = day
    for key in (
        "min_kwh", "max_kwh", "min_current", "max_current",
        "min_power", "max_power", "min_duration", "max_duration",
    ):
        if raw.get(key) is not None:
            number = to_decimal(raw[key])
            if number is None:
                warnings.append(f"{where}: {key} {raw[key]!r} is not a number; restriction ignored")
            else:
                values[key] = number
    days = raw.get("day_of_week")
    if days is not None:
        if isinstance(days, str):
            days = [days]
        indexes = set()
        for day in days if isinstance(days, list) else []:
            try:
                indexes.add(DayOfWeek(str(day).upper()).index)
            except ValueError:
                warnings.append(f"{where}: day_of_week {day!r} is not a DayOfWeek; ignored")
        if indexes:
            values["day_of_week"] = frozenset(indexes)
        elif days:
            warnings.append(f"{where}: day_of_week {days!r} unreadable; restriction ignored")
    if raw.get("reservation") is not None:
        try:
            values["reservation"] = ReservationRestrictionType(str(raw["reservation"]).upper())
        except ValueError:
            warnings.append(f"{where}: reservation {raw['reservation']!r} unknown; restriction ignored")
    return TariffRestrictions(**values)


def read_price_component(raw: Any, where: str, warnings: list[str]) -> PriceComponent | None:
    """Read a PriceComponent; None (with a warning) when type or price is unusable."""
    if not isinstance(raw, Mapping):
        warnings.append(f"{where}: price component is not an object; ignored")
        return None
    kind: TariffDimensionType | str
    try:
        kind = TariffDimensionType(str(raw.get("type", "")).upper())
    except ValueError:
        if str(raw.get("type", "")).strip().upper() != SESSION_TIME:
            warnings.append(f"{where}: unknown price component type {raw.get('type')!r}; ignored")
            return None
        kind = SESSION_TIME
        warnings.append(
            f"{where}: SESSION_TIME is a GIREVE extension, not an OCPI TariffDimensionType; "
            "priced as the whole session duration, charging or not"
        )
    price = to_decimal(raw.get("price"))
    if price is None:
        warnings.append(f"{where}: {kind} price {raw.get('price')!r} is not a number; ignored")
        return None
    step = to_decimal(raw.get("step_size"))
    if step is None or step < 0:
        if kind is not TariffDimensionType.flat:
            warnings.append(f"{where}: {kind} step_size {raw.get('step_size')!r} unreadable; using 1")
        step = Decimal(1)
    vat = to_decimal(raw.get("vat")) if raw.get("vat") is not None else None
    if raw.get("vat") is not None and vat is None:
        warnings.append(f"{where}: vat {raw.get('vat')!r} is not a number; VAT unknown")
    return PriceComponent(type=kind, price=price, step_size=int(step), vat=vat)


def detect_version(obj: Mapping[str, Any]) -> str:
    """Guess the OCPI version of a Tariff or CDR object from its money shapes."""
    if "tax_included" in obj:
        return "2.3.0"
    for key in ("total_cost", "min_price", "max_price"):
        value = obj.get(key)
        if isinstance(value, Mapping) and "before_taxes" in value:
            return "2.3.0"
        if key == "total_cost" and value is not None and not isinstance(value, Mapping):
            return "2.1.1"
    if "location" in obj and "cdr_location" not in obj:
        return "2.1.1"
    return "2.2.1"


def tariff_from_ocpi(obj: Mapping[str, Any]) -> Tariff:
    """Read one OCPI Tariff object (2.1.1, 2.2.1 or 2.3.0) into a ``Tariff``.

    Raises
    ------
    ValueError
        When the object is not a mapping; everything else degrades to warnings.
    """
    if not isinstance(obj, Mapping):
        raise ValueError("a tariff must be a JSON object")
    warnings: list[str] = []
    tariff_id = _str_or_none(obj.get("id")) or ""
    if not tariff_id:
        warnings.append("tariff has no id")
    elements: list[TariffElement] = []
    raw_elements = obj.get("elements")
    if not isinstance(raw_elements, list) or not raw_elements:
        warnings.append(f"tariff {tariff_id}: no elements; it prices nothing")
        raw_elements = []
    for i, raw in enumerate(raw_elements):
        where = f"tariff {tariff_id} element {i}"
        if not isinstance(raw, Mapping):
            warnings.append(f"{where}: not an object; ignored")
            continue
        components = []
        for j, raw_pc in enumerate(raw.get("price_components") or []):
            pc = read_price_component(raw_pc, f"{where} component {j}", warnings)
            if pc is not None:
                components.append(pc)
        restrictions = read_restrictions(raw.get("restrictions"), where, warnings)
        elements.append(TariffElement(tuple(components), restrictions))
    tariff_type = obj.get("type")
    if tariff_type is not None:
        try:
            tariff_type = TariffType(str(tariff_type).upper())
        except ValueError:
            warnings.append(f"tariff {tariff_id}: unknown type {tariff_type!r}")
    tax_included = obj.get("tax_included")
    return Tariff(
        id=tariff_id,
        currency=str(obj.get("currency") or ""),
        elements=tuple(elements),
        country_code=_str_or_none(obj.get("country_code")),
        party_id=_str_or_none(obj.get("party_id")),
        type=tariff_type,
        min_price=read_price(obj.get("min_price")),
        max_price=read_price(obj.get("max_price")),
        start_date_time=parse_datetime(obj.get("start_date_time")),
        end_date_time=parse_datetime(obj.get("end_date_time")),
        last_updated=parse_datetime(obj.get("last_updated")),
        tax_included=None if tax_included is None else str(tax_included).upper() == "YES",
        ocpi_version=detect_version(obj),
        warnings=tuple(warnings),
    )


def read_dimension(raw: Any, where: str, warnings: list[str]) -> CdrDimension | None:
    """Read a CdrDimension; an unknown type is kept as its raw string, with a warning."""
    if not isinstance(raw, Mapping):
        warnings.append(f"{where}: dimension is not an object; ignored")
        return None
    volume = to_decimal(raw.get("volume"))
    if volume is None:
        warnings.append(f"{where}: {raw.get('type')} volume {raw.get('volume')!r} unreadable; ignored")
        return None
    kind: CdrDimensionType | str
    try:
        kind = CdrDimensionType(str(raw.get("type", "")).upper())
    except ValueError:
        kind = str(raw.get("type"))
        warnings.append(f"{where}: unknown dimension type {kind!r}; not priced")
    return CdrDimension(kind, volume)


def periods_from_ocpi(
    raw_periods: Iterable[Any], session_end: datetime | None, warnings: list[str]
) -> tuple[ChargingPeriod, ...]:
    """Read OCPI ChargingPeriods, sorted by start, each ending where the next begins."""
    read: list[tuple[datetime, tuple[CdrDimension, ...], str | None]] = []
    for i, raw in enumerate(raw_periods):
        where = f"charging period {i}"
        if not isinstance(raw, Mapping):
            warnings.append(f"{where}: not an object; ignored")
            continue
        start = parse_datetime(raw.get("start_date_time"))
        if start is None:
            warnings.append(f"{where}: start_date_time {raw.get('start_date_time')!r} unreadable; ignored")
            continue
        dims = tuple(
            d
            for j, rd in enumerate(raw.get("dimensions") or [])
            if (d := read_dimension(rd, f"{where} dimension {j}", warnings)) is not None
        )
        read.append((start, dims, _str_or_none(raw.get("tariff_id"))))
    if any(read[k][0] > read[k + 1][0] for k in range(len(read) - 1)):
        warnings.append("charging periods are not in time order; sorted by start_date_time")
        read.sort(key=lambda r: r[0])
    periods = []
    for k, (start, dims, tariff_id) in enumerate(read):
        end = read[k + 1][0] if k + 1 < len(read) else session_end
        periods.append(ChargingPeriod(start, dims, tariff_id, end))
    return tuple(periods)


def cdr_from_ocpi(obj: Mapping[str, Any]) -> Cdr:
    """Read one OCPI CDR object (2.1.1, 2.2.1 or 2.3.0) for pricing and comparison.

    Raises
    ------
    ValueError
        When the object is not a mapping.
    """
    if not isinstance(obj, Mapping):
        raise ValueError("a CDR must be a JSON object")
    warnings: list[str] = []
    start = parse_datetime(obj.get("start_date_time"))
    end = parse_datetime(obj.get("end_date_time") or obj.get("stop_date_time"))
    periods = periods_from_ocpi(obj.get("charging_periods") or [], end, warnings)
    tariffs: list[Tariff] = []
    tariff_ids: list[str] = []
    for raw in obj.get("tariffs") or []:
        if isinstance(raw, Mapping):
            tariff = tariff_from_ocpi(raw)
            tariffs.append(tariff)
            tariff_ids.append(tariff.id)
        elif raw is not None:
            tariff_ids.append(str(raw))
    for period in periods:
        if period.tariff_id and period.tariff_id not in tariff_ids:
            tariff_ids.append(period.tariff_id)
    totals = {name: read_price(obj.get(name)) for name in COST_FIELDS}
    volumes = {name: to_decimal(obj.get(name)) for name in VOLUME_FIELDS}
    return Cdr(
        id=_str_or_none(obj.get("id")),
        start_date_time=start,
        end_date_time=end,
        currency=_str_or_none(obj.get("currency")),
        charging_periods=periods,
        tariff_ids=tuple(tariff_ids),
        tariffs=tuple(tariffs),
        totals=totals,
        volumes=volumes,
        ocpi_version=detect_version(obj),
        warnings=tuple(warnings),
    )
