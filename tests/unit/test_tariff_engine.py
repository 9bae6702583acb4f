"""Unit tests of the pricing engine, the readers, meter-value periods and version history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pipeline.tariffs import CdrDimension, ChargingPeriod, cdr_from_ocpi, price, tariff_from_ocpi
from pipeline.tariffs.history import changes_during, in_force
from pipeline.tariffs.model import CdrDimensionType as D
from pipeline.tariffs.periods import MeterSample, build_periods


def one_element_tariff(restrictions=None, *, price_="1.00", kind="ENERGY", step=1, vat=10, **extra):
    component = {"type": kind, "price": price_, "step_size": step}
    if vat is not None:
        component["vat"] = vat
    elements = [{"price_components": [component], **({"restrictions": restrictions} if restrictions else {})},
                {"price_components": [{**component, "price": "9.00"}]}]
    return tariff_from_ocpi({"id": "T", "currency": "EUR", "elements": elements, **extra})


def period(at: datetime, minutes: int = 60, **dims) -> ChargingPeriod:
    dims.setdefault("energy", 1)
    return ChargingPeriod(at, tuple(CdrDimension(D[k], Decimal(str(v))) for k, v in dims.items()),
                          None, at + timedelta(minutes=minutes))


def chosen(t, p, zone="UTC"):
    return price([p], t, zone).periods[0].elements.get("ENERGY")


@pytest.mark.parametrize(("local_time", "element"), [
    ("21:59", 1), ("22:00", 0), ("23:30", 0), ("00:00", 0), ("05:59", 0), ("06:00", 1),
])
def test_time_window_wrapping_midnight_start_inclusive_end_exclusive(local_time, element):
    """22:00-06:00 holds from 22:00 (inclusive) to 06:00 (exclusive), across midnight."""
    t = one_element_tariff({"start_time": "22:00", "end_time": "06:00"})
    h, m = map(int, local_time.split(":"))
    assert chosen(t, period(datetime(2024, 3, 1, h, m, tzinfo=UTC))) == element


def test_time_of_day_is_local_time_of_the_location():
    """17:30 UTC is 18:30 in Amsterdam in winter: a 18:00-20:00 window holds there, not in UTC."""
    t = one_element_tariff({"start_time": "18:00", "end_time": "20:00"})
    p = period(datetime(2024, 1, 10, 17, 30, tzinfo=UTC))
    assert chosen(t, p, "Europe/Amsterdam") == 0
    assert chosen(t, p, "UTC") == 1


def test_day_of_week_is_local_day():
    """23:30 UTC on a Friday is Saturday 00:30 in Berlin."""
    t = one_element_tariff({"day_of_week": ["SATURDAY"]})
    p = period(datetime(2024, 1, 12, 23, 30, tzinfo=UTC))
    assert chosen(t, p, "Europe/Berlin") == 0
    assert chosen(t, p, "UTC") == 1


@pytest.mark.parametrize(("day", "element"), [(23, 1), (24, 0), (26, 0), (27, 1)])
def test_start_date_inclusive_end_date_exclusive(day, element):
    t = one_element_tariff({"start_date": "2015-12-24", "end_date": "2015-12-27"})
    assert chosen(t, period(datetime(2015, 12, day, 12, tzinfo=UTC))) == element


@pytest.mark.parametrize(("kind", "value", "element"), [
    ("max_power", "15.99", 0), ("max_power", "16", 1),
    ("min_power", "16", 0), ("min_power", "15.99", 1),
    ("max_current", "31.9", 0), ("max_current", "32", 1),
    ("min_current", "32", 0), ("min_current", "31", 1),
])
def test_power_and_current_min_inclusive_max_exclusive(kind, value, element):
    t = one_element_tariff({kind: 16 if "power" in kind else 32})
    dim = {"max_power": "max_power", "min_power": "min_power",
           "max_current": "max_current", "min_current": "min_current"}[kind]
    assert chosen(t, period(datetime(2024, 1, 1, tzinfo=UTC), **{dim: value})) == element


def test_power_restriction_without_power_data_skips_element_with_warning():
    t = one_element_tariff({"max_power": 16})
    breakdown = price([period(datetime(2024, 1, 1, tzinfo=UTC))], t, "UTC")
    assert breakdown.periods[0].elements["ENERGY"] == 1
    assert any("power restriction" in w for w in breakdown.warnings)


def test_energy_thresholds_use_energy_consumed_before_the_period():
    """min_kwh 10: the period starting at 10 kWh already consumed is in; the one at 9 is not."""
    t = one_element_tariff({"min_kwh": 10})
    start = datetime(2024, 1, 1, tzinfo=UTC)
    periods = [period(start, energy=9), period(start + timedelta(hours=1), energy=1),
               period(start + timedelta(hours=2), energy=5)]
    breakdown = price(periods, t, "UTC")
    assert [p.elements["ENERGY"] for p in breakdown.periods] == [1, 1, 0]


def test_duration_restrictions_count_from_session_start():
    t = one_element_tariff({"max_duration": 1800})
    start = datetime(2024, 1, 1, tzinfo=UTC)
    periods = [period(start, 30), period(start + timedelta(minutes=30), 30)]
    assert [p.elements["ENERGY"] for p in price(periods, t, "UTC").periods] == [0, 1]


def test_energy_step_size_uses_session_total_and_last_element_step():
    """4.3 kWh before 17:00 + 1.1 kWh after, both per 500 Wh: 5.4 rounds to 5.5 total (mod_cdrs)."""
    t = tariff_from_ocpi({"id": "S", "currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.20", "step_size": 500, "vat": 0}],
         "restrictions": {"end_time": "17:00"}},
        {"price_components": [{"type": "ENERGY", "price": "0.27", "step_size": 500, "vat": 0}]}]})
    periods = [period(datetime(2024, 1, 1, 16, tzinfo=UTC), energy="4.3"),
               period(datetime(2024, 1, 1, 17, tzinfo=UTC), energy="1.1")]
    breakdown = price(periods, t, "UTC")
    assert breakdown.billed_energy == Decimal("5.5")
    assert breakdown.cdr_fields()["total_energy_cost"]["excl_vat"] == pytest.approx(4.3 * 0.20 + 1.2 * 0.27)


def test_time_step_rounds_total_not_last_period():
    """6 min at 5/h then 22 min at 7/h, both per 10 min: 30 min total, so 24 min after 17:00."""
    t = tariff_from_ocpi({"id": "S", "currency": "EUR", "elements": [
        {"price_components": [{"type": "TIME", "price": 5, "step_size": 600, "vat": 0}],
         "restrictions": {"end_time": "17:00"}},
        {"price_components": [{"type": "TIME", "price": 7, "step_size": 600, "vat": 0}]}]})
    periods = [period(datetime(2024, 1, 1, 16, 54, tzinfo=UTC), 6, energy=0, time=Decimal(6) / 60),
               period(datetime(2024, 1, 1, 17, tzinfo=UTC), 22, energy=0, time=Decimal(22) / 60)]
    fields = price(periods, t, "UTC").cdr_fields()
    assert fields["total_time_cost"]["excl_vat"] == pytest.approx(0.5 + 2.8)


def test_charging_followed_by_parking_rounds_only_parking():
    """21 min charging + 16 min parking, both per 10 min: 21 min and 20 min billed (mod_cdrs)."""
    t = tariff_from_ocpi({"id": "S", "currency": "EUR", "elements": [{"price_components": [
        {"type": "TIME", "price": 1, "step_size": 600, "vat": 0},
        {"type": "PARKING_TIME", "price": 2, "step_size": 600, "vat": 0}]}]})
    start = datetime(2024, 1, 1, tzinfo=UTC)
    periods = [period(start, 21, energy=0, time=Decimal(21) / 60),
               period(start + timedelta(minutes=21), 16, energy=0, parking_time=Decimal(16) / 60)]
    breakdown = price(periods, t, "UTC")
    assert breakdown.billed_time * 60 == pytest.approx(21)
    assert breakdown.billed_parking_time * 60 == pytest.approx(20)


def test_flat_is_billed_once_per_session():
    t = tariff_from_ocpi({"id": "F", "currency": "EUR", "elements": [
        {"price_components": [{"type": "FLAT", "price": 1, "vat": 0, "step_size": 0}]}]})
    start = datetime(2024, 1, 1, tzinfo=UTC)
    periods = [period(start + timedelta(hours=k)) for k in range(3)]
    assert price(periods, t, "UTC").cdr_fields()["total_fixed_cost"]["excl_vat"] == 1.0


def test_missing_vat_makes_incl_vat_unknown_not_equal_to_excl():
    t = one_element_tariff(vat=None)
    breakdown = price([period(datetime(2024, 1, 1, tzinfo=UTC), energy=2)], t, "UTC")
    assert breakdown.cdr_fields()["total_cost"] == {"excl_vat": 2.0, "incl_vat": None}
    assert any("without vat" in w for w in breakdown.warnings)


def test_max_price_clamps_incl_and_excl_independently():
    """max 10.00 excl / 10.50 incl: 10 kWh at 1.00 + 10 % VAT = 10.00 / 11.00 -> 10.00 / 10.50."""
    t = one_element_tariff(max_price={"excl_vat": 10, "incl_vat": "10.50"})
    fields = price([period(datetime(2024, 1, 1, tzinfo=UTC), energy=10)], t, "UTC").cdr_fields()
    assert fields["total_cost"] == {"excl_vat": 10.0, "incl_vat": 10.5}
    assert fields["total_energy_cost"] == {"excl_vat": 10.0, "incl_vat": 11.0}


def test_unknown_dimension_and_bad_restriction_are_flagged_not_fatal():
    t = one_element_tariff({"start_time": "25:99", "max_kwh": "lots"})
    p = ChargingPeriod(datetime(2024, 1, 1, tzinfo=UTC),
                       (CdrDimension(D.energy, Decimal(1)), CdrDimension("WEIRD", Decimal(3))))
    breakdown = price([p], t, "UTC")
    text = " ".join(breakdown.warnings)
    assert "WEIRD" in text and "start_time" in text and "max_kwh" in text
    assert breakdown.periods[0].elements["ENERGY"] == 0  # the unreadable restrictions are dropped


def test_to_dict_rounds_money_half_up_to_four_decimals():
    t = one_element_tariff(price_="0.00005", vat=0)
    assert price([period(datetime(2024, 1, 1, tzinfo=UTC), energy=1)], t, "UTC").to_dict()["total_cost"] == {
        "excl_vat": 0.0001, "incl_vat": 0.0001}


def test_reader_2_1_1_cdr_total_cost_is_a_number():
    cdr = cdr_from_ocpi({"id": "1", "start_date_time": "2017-01-01T10:00:00Z", "stop_date_time": "2017-01-01T11:00:00Z",
                         "currency": "EUR", "total_cost": 4.0, "total_energy": 10, "total_time": 1,
                         "location": {"id": "L"}, "tariffs": [{"id": "11", "currency": "EUR", "elements": [
                             {"price_components": [{"type": "ENERGY", "price": 0.4, "step_size": 1}]}]}],
                         "charging_periods": [{"start_date_time": "2017-01-01T10:00:00Z",
                                               "dimensions": [{"type": "ENERGY", "volume": 10}]}]})
    assert cdr.ocpi_version == "2.1.1"
    assert cdr.totals["total_cost"].excl_vat == Decimal("4.0")
    assert cdr.tariff_ids == ("11",)
    assert price(cdr.charging_periods, cdr.tariffs[0], "UTC").cdr_fields()["total_cost"]["excl_vat"] == 4.0


def test_meter_samples_split_at_local_time_edge_and_energy_threshold():
    """Samples 16:30 -> 17:30 local, 0 -> 20 kWh; edges at 17:00 (time) and 5 kWh (min_kwh)."""
    t = tariff_from_ocpi({"id": "M", "currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1, "vat": 0}],
         "restrictions": {"start_time": "17:00", "end_time": "18:00"}},
        {"price_components": [{"type": "ENERGY", "price": 2, "step_size": 1, "vat": 0}],
         "restrictions": {"min_kwh": 5}},
        {"price_components": [{"type": "ENERGY", "price": 3, "step_size": 1, "vat": 0}]}]})
    start = datetime(2024, 1, 10, 15, 30, tzinfo=UTC)  # 16:30 in Amsterdam
    built = build_periods([MeterSample(start, Decimal(0)), MeterSample(start + timedelta(hours=1), Decimal(20))],
                          tariff=t, time_zone="Europe/Amsterdam")
    assert [p.start.minute for p in built.periods] == [30, 45, 0]  # 5 kWh of 20 is reached a quarter in
    assert [p.volume(D.energy) for p in built.periods] == [Decimal(5), Decimal(5), Decimal(10)]
    fields = price(built.periods, t, "Europe/Amsterdam").cdr_fields()
    assert fields["total_energy_cost"]["excl_vat"] == 5 * 3 + 5 * 2 + 10 * 1


def test_meter_samples_flat_register_becomes_parking_and_rollback_is_flagged():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    samples = [MeterSample(start, Decimal(100)), MeterSample(start + timedelta(minutes=30), Decimal(110)),
               MeterSample(start + timedelta(minutes=60), Decimal(110)),
               MeterSample(start + timedelta(minutes=70), Decimal(105))]
    built = build_periods(samples)
    kinds = [next(d.type for d in p.dimensions if d.type in (D.time, D.parking_time)) for p in built.periods]
    assert kinds == [D.time, D.parking_time, D.parking_time]
    assert any("fell" in w for w in built.warnings)


def _version(last_updated, start=None, end=None, tid="T"):
    return tariff_from_ocpi({"country_code": "NL", "party_id": "ABC", "id": tid, "currency": "EUR",
                             "elements": [], "last_updated": last_updated,
                             **({"start_date_time": start} if start else {}),
                             **({"end_date_time": end} if end else {})})


def test_version_in_force_uses_start_date_time_then_last_updated():
    v1 = _version("2024-01-01T00:00:00Z")
    v2 = _version("2024-02-01T00:00:00Z", start="2024-03-01T00:00:00Z")  # published early
    at = lambda s: datetime.fromisoformat(s)  # noqa: E731
    assert in_force([v2, v1], at("2024-02-15T00:00:00+00:00")) is v1
    assert in_force([v1, v2], at("2024-03-01T00:00:00+00:00")) is v2
    assert in_force([v1, v2], at("2023-12-31T00:00:00+00:00")) is None


def test_version_ends_at_its_end_date_time_and_changes_are_listed():
    v1 = _version("2024-01-01T00:00:00Z", end="2024-01-10T00:00:00Z")
    v2 = _version("2024-01-05T00:00:00Z", start="2024-01-20T00:00:00Z")
    at = datetime(2024, 1, 15, tzinfo=UTC)
    assert in_force([v1, v2], at) is None
    changes = changes_during([v1, v2], datetime(2024, 1, 19, tzinfo=UTC), datetime(2024, 1, 21, tzinfo=UTC))
    assert [c.tariff for c in changes] == [v2]
