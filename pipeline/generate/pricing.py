"""The generator's own OCPI 2.2.1 pricing for the tariff shapes it emits.

Deliberately independent of ``pipeline.tariffs`` (the full engine): the generator is
the ground truth that engine is tested against, so the two must not share code.

Supported: price components ENERGY (per kWh), TIME and PARKING_TIME (per hour), FLAT
(once per session); restrictions ``start_time``/``end_time`` (local wall clock, end
exclusive, wrapping past midnight), ``start_date``/``end_date`` and ``day_of_week``;
``step_size`` per dimension; VAT per component. Anything else raises ``ValueError``
rather than pricing silently wrong.

Rules (OCPI 2.2.1 mod_tariffs, with the 2.2.1-bugfixes wording):
- For each charging period and dimension, the first tariff element whose
  restrictions match the period start and that holds a component of that type applies.
- FLAT is charged once, from the element matching at session start.
- ``step_size`` rounds the session total of a dimension up to whole steps; the extra
  volume is billed at the price of the last period's component for that dimension.
- Costs are rounded half-up to cents per dimension; the total is their sum, so a CDR's
  parts always add up. Some CPOs instead round only the total of the exact costs: the exact
  total travels with ``cdr_fields()`` (``CdrFields.exact_total``) so that the CDR writer
  can bill like such a partner (``ocpi_writer.CdrPartner``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

DAY_NAMES = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
SUPPORTED_RESTRICTIONS = {"start_time", "end_time", "start_date", "end_date", "day_of_week"}
# Volume units per step: step_size is in seconds for time, Wh for energy.
STEP_UNIT = {"ENERGY": 1000.0, "TIME": 3600.0, "PARKING_TIME": 3600.0}
DIMENSIONS = ("ENERGY", "TIME", "PARKING_TIME")
COST_FIELD = {
    "FLAT": "total_fixed_cost",
    "ENERGY": "total_energy_cost",
    "TIME": "total_time_cost",
    "PARKING_TIME": "total_parking_cost",
}


def _d(x: float | int) -> Decimal:
    """Exact decimal of a float as written: money is summed in Decimal, because binary
    floats turn 0.975 into 0.97499.. and round half-up to the wrong cent."""
    return Decimal(repr(x))


def _cents_d(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def cents(x: float) -> float:
    """Round half-up to 2 decimals (float in, float out)."""
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass
class Period:
    """One OCPI charging period: its local start and dimension volumes."""

    start: dt.datetime
    volumes: dict[str, float]
    tariff_id: str | None = None


class CdrFields(dict):
    """A CDR's cost and volume fields; ``exact_total`` = (excl, incl) before cent rounding.

    ``exact_total`` is None when a cost was set after pricing (a planted wrong price): then
    only the rounded fields are the truth of what was billed.
    """

    exact_total: tuple[Decimal, Decimal] | None = None


@dataclass
class PriceBreakdown:
    """Per-dimension costs (excl/incl VAT) and volumes, in CDR field names."""

    costs: dict[str, tuple[float, float]] = field(default_factory=dict)
    volumes: dict[str, float] = field(default_factory=dict)
    chosen: list[dict[str, int]] = field(default_factory=list)
    # Exact (excl, incl) per dimension, and the rounded costs they gave when priced.
    exact: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    priced_costs: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def total_excl(self) -> float:
        return cents(sum(v[0] for v in self.costs.values()))

    @property
    def total_incl(self) -> float:
        return cents(sum(v[1] for v in self.costs.values()))

    def cdr_fields(self) -> CdrFields:
        """The CDR's cost and volume fields (OCPI 2.2.1 names)."""
        out = CdrFields({
            "total_cost": {"excl_vat": self.total_excl, "incl_vat": self.total_incl},
        })
        if self.exact and self.costs == self.priced_costs:
            out.exact_total = (sum((v[0] for v in self.exact.values()), Decimal(0)),
                               sum((v[1] for v in self.exact.values()), Decimal(0)))
        for dim, name in COST_FIELD.items():
            if dim in self.costs:
                ex, inc = self.costs[dim]
                out[name] = {"excl_vat": ex, "incl_vat": inc}
        out["total_energy"] = round(self.volumes.get("ENERGY", 0.0), 3)
        out["total_time"] = round(
            self.volumes.get("TIME", 0.0) + self.volumes.get("PARKING_TIME", 0.0), 4
        )
        if self.volumes.get("PARKING_TIME"):
            out["total_parking_time"] = round(self.volumes["PARKING_TIME"], 4)
        return out


def _hhmm(s: str) -> int:
    h, m = s.split(":")
    return int(h) * 60 + int(m)


def restrictions_match(restr: dict | None, at: dt.datetime) -> bool:
    """Whether an element's restrictions hold at local time ``at``."""
    if not restr:
        return True
    unknown = set(restr) - SUPPORTED_RESTRICTIONS
    if unknown:
        raise ValueError(f"unsupported tariff restrictions: {sorted(unknown)}")
    minute = at.hour * 60 + at.minute
    st, et = restr.get("start_time"), restr.get("end_time")
    if st is not None and et is not None:
        a, b = _hhmm(st), _hhmm(et)
        inside = a <= minute < b if a <= b else (minute >= a or minute < b)
        if not inside:
            return False
    elif (st is not None and minute < _hhmm(st)) or (et is not None and minute >= _hhmm(et)):
        return False
    day = at.date().isoformat()
    if "start_date" in restr and day < restr["start_date"]:
        return False
    if "end_date" in restr and day >= restr["end_date"]:
        return False
    days = restr.get("day_of_week")
    return not (days and DAY_NAMES[at.weekday()] not in days)


def _component(tariff: dict, dim: str, at: dt.datetime) -> tuple[int, dict] | None:
    for i, el in enumerate(tariff["elements"]):
        if not restrictions_match(el.get("restrictions"), at):
            continue
        for pc in el["price_components"]:
            if pc["type"] == dim:
                return i, pc
    return None


def price(tariff: dict, periods: list[Period]) -> PriceBreakdown:
    """Price charging periods under one tariff version.

    Parameters
    ----------
    tariff : dict
        An OCPI 2.2.1 Tariff object.
    periods : list of Period
        In time order; ``start`` is local (aware) time at the location, volumes in
        kWh (ENERGY) and hours (TIME, PARKING_TIME).

    Returns
    -------
    PriceBreakdown
    """
    out = PriceBreakdown()
    if not periods:
        return out
    flat = _component(tariff, "FLAT", periods[0].start)
    if flat is not None:
        p = flat[1]
        out.costs["FLAT"] = (cents(p["price"]), cents(p["price"] * (1 + p.get("vat", 0) / 100)))
        out.exact["FLAT"] = (_d(p["price"]), _d(p["price"]) * (1 + _d(p.get("vat", 0)) / 100))
    for dim in DIMENSIONS:
        ex = inc = Decimal(0)
        vol = 0.0
        priced = 0  # whole seconds or Wh: what was measured (CDR volumes are rounded hours)
        last = None
        unit = STEP_UNIT[dim]
        for per in periods:
            v = per.volumes.get(dim, 0.0)
            if not v:
                continue
            vol += v
            found = _component(tariff, dim, per.start)
            if found is None:
                continue
            # step_size rounds the priced volume only; free time is not rounded up
            # (OCPI 2.2.1-bugfixes step_size example: 0.73 EUR).
            q = round(v * unit)
            priced += q
            last = found[1]
            ex += Decimal(q) * _d(last["price"]) / _d(unit)
            inc += Decimal(q) * _d(last["price"]) * (1 + _d(last.get("vat", 0)) / 100) / _d(unit)
        if vol:
            out.volumes[dim] = vol
        if last is None:
            continue
        step = last.get("step_size") or 1
        billed = math.ceil(priced / step) * step
        # the stepped-up rest is billed at the last priced component's price
        extra = Decimal(billed - priced) / _d(unit)
        ex += extra * _d(last["price"])
        inc += extra * _d(last["price"]) * (1 + _d(last.get("vat", 0)) / 100)
        out.costs[dim] = (_cents_d(ex), _cents_d(inc))
        out.exact[dim] = (ex, inc)
    out.priced_costs = dict(out.costs)
    return out


def boundaries(tariff: dict, start: float, stop: float, tz: ZoneInfo) -> list[float]:
    """Epoch instants in (start, stop) where some restriction can change value.

    Charging periods are split there so each period is priced by one element.
    """
    marks = {"00:00"}
    for el in tariff["elements"]:
        r = el.get("restrictions") or {}
        for key in ("start_time", "end_time"):
            if key in r:
                marks.add(r[key])
    out = []
    day = dt.datetime.fromtimestamp(start, tz).date()
    last_day = dt.datetime.fromtimestamp(stop, tz).date()
    while day <= last_day:
        for m in marks:
            h, mi = (int(x) for x in m.split(":"))
            t = dt.datetime(day.year, day.month, day.day, h, mi, tzinfo=tz).timestamp()
            if start < t < stop:
                out.append(t)
        day += dt.timedelta(days=1)
    return sorted(set(out))


def parse_cdr_periods(cdr: dict, tz: ZoneInfo) -> list[Period]:
    """OCPI CDR ``charging_periods`` as :class:`Period` objects in local time."""
    out = []
    for cp in cdr.get("charging_periods", []):
        start = dt.datetime.fromisoformat(cp["start_date_time"].replace("Z", "+00:00"))
        vols = {d["type"]: float(d["volume"]) for d in cp["dimensions"] if d["type"] in DIMENSIONS}
        out.append(Period(start.astimezone(tz), vols, cp.get("tariff_id")))
    return out
