"""Properties of the pricing engine (hypothesis): splitting, monotonicity, price limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.tariffs import CdrDimension, ChargingPeriod, price, tariff_from_ocpi
from pipeline.tariffs.model import CdrDimensionType as D

START = datetime(2024, 5, 6, 8, tzinfo=UTC)
money = st.decimals(min_value=0, max_value=5, places=2)
kwh = st.decimals(min_value=0, max_value=50, places=3)
seconds = st.integers(min_value=0, max_value=4 * 3600)


@st.composite
def tariffs(draw, step_sizes=(0,), with_limits=False, restrictions=True):
    """Tariffs whose elements may restrict on power only (constant when a period is split)."""
    elements = []
    for _ in range(draw(st.integers(1, 3))):
        components = [
            {"type": kind, "price": str(draw(money)), "vat": 20, "step_size": draw(st.sampled_from(step_sizes))}
            for kind in draw(st.sets(st.sampled_from(["ENERGY", "TIME", "PARKING_TIME", "FLAT"]), min_size=1))
        ]
        element = {"price_components": components}
        if restrictions and draw(st.booleans()):
            element["restrictions"] = {"max_power": draw(st.integers(5, 60))}
        elements.append(element)
    raw = {"id": "P", "currency": "EUR", "elements": elements}
    if with_limits:
        low = draw(money)
        raw["min_price"] = {"excl_vat": str(low), "incl_vat": str(low * Decimal("1.2"))}
        raw["max_price"] = {"excl_vat": str(low + draw(money)), "incl_vat": str((low + draw(money)) * Decimal("1.2"))}
    return tariff_from_ocpi(raw)


def make_period(at, energy, time_s, parking_s, power):
    dims = (CdrDimension(D.energy, energy), CdrDimension(D.time, Decimal(time_s) / 3600),
            CdrDimension(D.parking_time, Decimal(parking_s) / 3600), CdrDimension(D.max_power, Decimal(power)))
    return ChargingPeriod(at, dims, None, at + timedelta(seconds=time_s + parking_s))


def total(periods, tariff):
    return price(periods, tariff, "UTC").total_cost.excl_vat


@settings(max_examples=200, deadline=None)
@given(tariffs(), kwh, seconds, seconds, st.integers(1, 100), st.floats(0.01, 0.99))
def test_splitting_a_period_changes_no_price_without_step_size(tariff, energy, time_s, parking_s, power, share):
    whole = [make_period(START, energy, time_s, parking_s, power)]
    e1 = (energy * Decimal(str(share))).quantize(Decimal("0.001"))
    t1, p1 = int(time_s * share), int(parking_s * share)
    halves = [make_period(START, e1, t1, p1, power),
              make_period(START + timedelta(seconds=t1 + p1), energy - e1, time_s - t1, parking_s - p1, power)]
    assert total(halves, tariff) == total(whole, tariff)


@settings(max_examples=200, deadline=None)
@given(tariffs(step_sizes=(0, 1, 60, 300, 900), restrictions=False), kwh, kwh, seconds, seconds, seconds)
def test_price_never_decreases_when_energy_or_time_grows(tariff, energy, more_energy, time_s, more_time, parking_s):
    base = total([make_period(START, energy, time_s, parking_s, 10)], tariff)
    assert total([make_period(START, energy + more_energy, time_s, parking_s, 10)], tariff) >= base
    assert total([make_period(START, energy, time_s + more_time, parking_s, 10)], tariff) >= base
    if parking_s > 0:
        # From no parking to some parking, OCPI 2.2.1 (bugfixes) moves the step_size
        # rounding from the charging-time total to the parking total, which can lower
        # the price (e.g. TIME 0.01/h step 60 s, free parking: the rounded-up minute of
        # charging time goes away). Once parking exists, more of it never costs less.
        assert total([make_period(START, energy, time_s, parking_s + more_time, 10)], tariff) >= base


def test_first_parking_second_moves_the_time_rounding():
    """The one documented non-monotonic case: the step_size rounding moves to parking."""
    tariff = tariff_from_ocpi({
        "country_code": "NL", "party_id": "CLN", "id": "P", "currency": "EUR",
        "last_updated": "2024-01-01T00:00:00Z",
        "elements": [{"price_components": [
            {"type": "PARKING_TIME", "price": 0.00, "step_size": 1, "vat": 20},
            {"type": "TIME", "price": 0.01, "step_size": 60, "vat": 20}]}]})
    without = total([make_period(START, Decimal("1"), 1, 0, 10)], tariff)
    with_parking = total([make_period(START, Decimal("1"), 1, 1, 10)], tariff)
    assert without == Decimal("0.01") / 60  # 1 s of charging billed as a whole minute
    assert with_parking < without


@settings(max_examples=200, deadline=None)
@given(tariffs(step_sizes=(0, 1, 900), with_limits=True), kwh, seconds, seconds, st.integers(1, 100))
def test_min_max_clamp_holds(tariff, energy, time_s, parking_s, power):
    breakdown = price([make_period(START, energy, time_s, parking_s, power)], tariff, "UTC")
    cost, before = breakdown.total_cost, breakdown.total_cost_before_limits
    low, high = tariff.min_price, tariff.max_price
    assert cost.excl_vat <= high.excl_vat
    if low.excl_vat <= high.excl_vat:
        assert cost.excl_vat >= low.excl_vat
    if low.excl_vat <= before.excl_vat <= high.excl_vat:
        assert cost.excl_vat == before.excl_vat
    if cost.incl_vat is not None:
        assert cost.incl_vat <= high.incl_vat
