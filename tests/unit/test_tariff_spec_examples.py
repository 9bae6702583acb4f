"""The worked examples of OCPI 2.2.1 (release-2.2.1-bugfixes) mod_tariffs, on the example files.

Each scenario is the one the spec text describes for that example tariff; the expected
amounts are the spec's, which it states in cents, so our 4-decimal result is compared after
rounding half up to 2 decimals. Where the text's own arithmetic is wrong the test says so.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.tariffs import CdrDimension, ChargingPeriod, cdr_from_ocpi, price, tariff_from_ocpi
from pipeline.tariffs.model import CdrDimensionType as D

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "external" / "ocpi"
UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def tariff(name: str):
    return tariff_from_ocpi(json.loads((EXAMPLES / name).read_text(), parse_float=Decimal))


def session(start: datetime, *steps: tuple[float, dict]) -> list[ChargingPeriod]:
    """Consecutive periods: each step is (minutes, {dimension: volume}); TIME/PARKING in hours."""
    periods, at = [], start
    for minutes, dims in steps:
        end = at + timedelta(minutes=minutes)
        periods.append(ChargingPeriod(
            at, tuple(CdrDimension(k, Decimal(str(v))) for k, v in dims.items()), None, end))
        at = end
    return periods


def cents(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def total(breakdown) -> tuple[Decimal | None, Decimal | None]:
    t = breakdown.cdr_fields()["total_cost"]
    return cents(t["excl_vat"]), cents(t["incl_vat"])


T0 = datetime(2024, 1, 8, 9, 30, tzinfo=UTC)  # a Monday
H = 60  # minutes per hour


def energy_only(kwh: float):
    return session(T0, (H, {D.energy: kwh, D.time: 1}))


SCENARIOS = [
    # file, periods, expected (excl, incl), spec sentence
    ("tariff_1_simple_2hour.json", session(T0, (150, {D.time: 2.5})), ("5.00", "5.50"),
     "a charging session of 2.5 hours: 5.00 / 5.50"),
    ("tariff_2_alt_text.json", session(T0, (150, {D.time: 2.5})), ("4.75", "5.00"),
     "a charging session of 2.5 hours: 4.75 / 5.00"),
    ("tariff_3_alt_url.json", session(T0, (60, {D.energy: 20.45, D.time: 1})), ("5.63", "6.24"),
     "20.45 kWh billed per 100 Wh as 20.5 kWh: 5.63 / 6.24"),
    ("tariff_6_025kwh_start_max_price.json", energy_only(50), ("10.00", "11.00"),
     "50 kWh: 10.00 / 11.00 due to the price limit"),
    ("tariff_6_025kwh_start_max_price.json", energy_only(30), ("8.00", "8.85"),
     "30 kWh: 8.00 / 8.85, below the max price"),
    ("tariff_8_simple_025kwh.json", energy_only(20), ("5.00", "5.50"), "20 kWh: 5.00 / 5.50"),
    ("tariff_9_025kwh_start.json", energy_only(20), ("5.50", "6.10"), "20 kWh + start fee: 5.50 / 6.10"),
    ("tariff_10_025kwh_parking_start.json",
     session(T0, (H, {D.energy: 20, D.time: 1}), (40, {D.parking_time: 40 / 60})), ("7.00", "7.90"),
     "20 kWh and 40 min parking billed as 45 min: 7.00 / 7.90"),
    ("tariff_12_025kwh_min_price.json", energy_only(20), ("5.00", "5.50"), "20 kWh: 5.00 / 5.50"),
    ("tariff_12_025kwh_min_price.json", energy_only(1.2), ("0.50", "0.55"),
     "less than 2 kWh: the min price 0.50 / 0.55"),
    ("tariff_13_simple_3hour_5parking.json",
     session(T0, (150, {D.time: 2.5}), (42, {D.parking_time: 0.7})), ("11.25", "12.75"),
     "2.5 h charging + 42 min parking billed as 45: 11.25 / 12.75"),
    ("tariff_4_complex.json",
     session(datetime(2024, 1, 8, 9, 30, tzinfo=BERLIN),
             (165, {D.time: 2.75, D.max_current: 16}), (42, {D.parking_time: 0.7})),
     ("9.00", "10.30"),
     "Monday 09:30, 165 min at max 16 A, 42 min parking: 9.00 / 10.30"),
    ("tariff_14_step_size.json",
     session(datetime(2024, 1, 8, 16, 55, tzinfo=UTC), (5, {D.time: 5 / 60}), (5, {D.time: 5 / 60}),
             (2, {D.parking_time: 2 / 60})), ("0.55", None),
     "switching element #1 (bugfix branch): 5 min at 1.20 + 5 min at 2.40 + parking 2 -> 15 min = 0.55"),
    ("tariff_14_step_size.json",
     session(datetime(2024, 1, 8, 16, 35, tzinfo=UTC), (25, {D.time: 25 / 60}), (10, {D.time: 10 / 60})),
     ("1.30", None),
     "switching element #2: 35 min charging only, total rounded to 45 min: 0.50 + 0.80 = 1.30"),
    ("tariff_14_step_size.json",
     session(datetime(2024, 1, 8, 19, 40, tzinfo=UTC), (12, {D.time: 12 / 60}),
             (8, {D.parking_time: 8 / 60}), (12, {D.parking_time: 12 / 60})), ("0.73", None),
     "switching to free parking after 20:00 (bugfix branch): 12 min at 2.40 + 8 min parking -> 15 min = 0.73"),
    ("tariff_15_reservation_5_euro_per_hour.json",
     session(T0, (15, {D.reservation_time: 0.25}), (H, {D.energy: 20, D.time: 1})), ("6.75", "7.60"),
     "charging started 15 min after the reservation, 20 kWh: 6.75 / 7.60"),
    ("tariff_16_reservation_2_euro_fee_5_euro_per_hour.json",
     session(T0, (13, {D.reservation_time: 13 / 60}), (H, {D.energy: 20, D.time: 1})), ("8.75", "10.00"),
     "13 min reservation billed as 15, fee 2.00, 20 kWh: 8.75 / 10.00"),
    ("tariff_17_reservation_with_expire_fee.json",
     session(T0, (22, {D.reservation_time: 22 / 60}), (H, {D.energy: 20, D.time: 1})), ("6.50", "7.30"),
     "22 min reservation billed as 30, 20 kWh: 6.50 / 7.30"),
    ("tariff_17_reservation_with_expire_fee.json",
     session(T0, (H, {D.reservation_time: 1})), ("6.00", "7.20"),
     "reservation expired after 1 h: 4.00 fee + 2.00 time = 6.00 / 7.20"),
    ("tariff_18_reservation_with_expire_time.json",
     session(T0, (22, {D.reservation_time: 22 / 60}), (H, {D.energy: 20, D.time: 1})), ("7.00", "7.90"),
     "22 min reservation at 3.00/h billed as 30, 20 kWh: 7.00 / 7.90"),
    ("tariff_18_reservation_with_expire_time.json",
     session(T0, (90, {D.reservation_time: 1.5})), ("9.00", "10.80"),
     "reservation expired after 1.5 h at 6.00/h: 9.00 / 10.80"),
    ("tariffrestriction_example_max_power.json",
     session(T0, (10, {D.energy: 1, D.time: 10 / 60, D.max_power: 6}),
             (50, {D.energy: 40, D.time: 50 / 60, D.max_power: 48}),
             (8, {D.energy: 0.5, D.time: 8 / 60, D.max_power: 4})), ("20.30", "24.36"),
     "1 kWh at 6 kW, 40 kWh at 48 kW, 0.5 kWh at 4 kW: 20.30 excl. VAT"),
    ("tariffrestriction_example_max_duration.json",
     session(T0, (30, {D.energy: 5, D.time: 0.5}), (10, {D.energy: 1.2, D.time: 10 / 60})), ("0.30", "0.36"),
     "40 min session, 5 kWh in the first 30 min free, 1.2 kWh after at 0.25: 0.30 excl. VAT"),
]


@pytest.mark.parametrize(
    ("name", "periods", "expected", "scenario"), SCENARIOS, ids=[f"{s[0]}:{s[3][:40]}" for s in SCENARIOS]
)
def test_worked_example(name, periods, expected, scenario):
    """The spec's worked scenario for this example tariff gives the spec's amounts."""
    zone = BERLIN if name == "tariff_4_complex.json" else UTC
    breakdown = price(periods, tariff(name), zone)
    excl, incl = expected
    assert total(breakdown) == (Decimal(excl), None if incl is None else Decimal(incl)), scenario


def test_complex_saturday_follows_the_rules_not_the_texts_arithmetic():
    """Saturday 13:30, 114 min at 43 A, 71 min parking (tariff_4).

    The rules give FLAT 2.50 + 114 min at 1.25/h = 2.375 (not rounded: parking follows)
    + 75 min parking at 6.00/h = 7.50, total 12.375. The 2.2.1 tag text says 12.50 (it still
    rounds charging to 120 min); the corrected text says 12.28 (it multiplies 1.9 h by 1.20).
    """
    periods = session(datetime(2024, 1, 13, 13, 30, tzinfo=BERLIN),
                      (114, {D.time: 1.9, D.min_current: 43}), (71, {D.parking_time: 71 / 60}))
    fields = price(periods, tariff("tariff_4_complex.json"), BERLIN).cdr_fields()
    assert fields["total_time_cost"]["excl_vat"] == 2.375
    assert fields["total_parking_cost"]["excl_vat"] == 7.5
    assert fields["total_cost"] == {"excl_vat": 12.375, "incl_vat": 13.975}


def test_step_size_example_1_does_not_round_charging_time():
    """The bugfix text: charging is billed exactly, only the parking is rounded (0.30 + 0.25)."""
    periods = session(datetime(2024, 1, 8, 16, 55, tzinfo=UTC), (5, {D.time: 5 / 60}),
                      (5, {D.time: 5 / 60}), (2, {D.parking_time: 2 / 60}))
    fields = price(periods, tariff("tariff_14_step_size.json"), UTC).cdr_fields()
    assert fields["total_time_cost"]["excl_vat"] == 0.3
    assert fields["total_parking_cost"]["excl_vat"] == 0.25


def test_free_of_charge_tariff_costs_nothing_even_without_vat():
    """tariff_5: FLAT 0.00 without vat; a zero amount needs no VAT to be known."""
    breakdown = price(energy_only(20), tariff("tariff_5_free_of_charge.json"), UTC)
    assert breakdown.cdr_fields()["total_cost"] == {"excl_vat": 0.0, "incl_vat": 0.0}


def test_not_possible_alt_text_tariff_reads_its_start_fee():
    """tariff_11 has no worked amounts; its FLAT 0.40 and 1.90/h per 5 min still price."""
    t = tariff("tariff_11_not_possible_alt_text.json")
    assert t.type == "AD_HOC_PAYMENT"
    breakdown = price(session(T0, (60, {D.time: 1})), t, UTC)
    assert breakdown.cdr_fields()["total_cost"]["excl_vat"] == pytest.approx(0.40 + 1.90)


def test_ocpi_2_3_0_min_price_before_and_after_taxes():
    """The 2.3.0 tariff_12 spells min_price as before_taxes/after_taxes; the clamp is the same."""
    t = tariff("2.3.0/tariff_12_025kwh_min_price.json")
    assert t.ocpi_version == "2.3.0"
    assert total(price(energy_only(1.2), t, UTC)) == (Decimal("0.50"), Decimal("0.55"))


def test_ocpi_2_3_0_tax_included_tariff_without_vat_warns():
    """tariff_20 prices include tax but carry no rate: both sides equal the price, with a warning."""
    breakdown = price(session(T0, (60, {D.time: 1})), tariff("2.3.0/tariff_20_simple_north_american_inclusive.json"), UTC)
    assert breakdown.cdr_fields()["total_cost"] == {"excl_vat": 2.1, "incl_vat": 2.1}
    assert any("tax_included" in w for w in breakdown.warnings)


def test_ocpi_2_3_0_cdr_totals_are_before_taxes_plus_taxes():
    """The 2.3.0 cdr_example: total_cost 4.00 before taxes + 0.40 VAT reads as 4.00 / 4.40."""
    raw = json.loads((EXAMPLES / "2.3.0" / "cdr_example.json").read_text(), parse_float=Decimal)
    cdr = cdr_from_ocpi(raw)
    assert cdr.ocpi_version == "2.3.0"
    assert (cdr.totals["total_cost"].excl_vat, cdr.totals["total_cost"].incl_vat) == (Decimal("4.00"), Decimal("4.40"))
    fields = price(cdr.charging_periods, cdr.tariffs[0], UTC).cdr_fields()
    assert fields["total_cost"] == {"excl_vat": 4.0, "incl_vat": 4.4}
