"""The generator's own OCPI pricing against the OCPI 2.2.1 worked examples.

The tariffs are the spec's example files (tests/fixtures/external/ocpi, verbatim);
the scenarios and expected totals follow the spec's explanation of each example.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.generate import pricing

OCPI = Path(__file__).resolve().parents[1] / "fixtures" / "external" / "ocpi"
UTC = ZoneInfo("UTC")
T0 = dt.datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a Monday


def _tariff(name: str) -> dict:
    return json.loads((OCPI / name).read_text())


def _p(minutes: float, **vols: float) -> pricing.Period:
    return pricing.Period(T0 + dt.timedelta(minutes=minutes), vols)


@pytest.mark.parametrize(
    ("tariff", "periods", "excl", "incl"),
    [
        # 2 EUR/h charging time, billed per minute: 1.25 h -> 2.50 (+10 % VAT).
        ("tariff_1_simple_2hour.json", [_p(0, TIME=1.25, ENERGY=12.0)], 2.50, 2.75),
        # 0.25 EUR/kWh: 10 kWh -> 2.50.
        ("tariff_8_simple_025kwh.json", [_p(0, ENERGY=10.0, TIME=1.0)], 2.50, 2.75),
        # 0.50 start fee (20 % VAT) + 0.25 EUR/kWh (10 % VAT).
        ("tariff_9_025kwh_start.json", [_p(0, ENERGY=10.0, TIME=1.0)], 3.00, 3.35),
        # 3 EUR/h charging, 5 EUR/h parking in 5-minute steps: 2.5 h + 0.7 h (-> 0.75 h).
        ("tariff_13_simple_3hour_5parking.json", [_p(0, TIME=2.5, ENERGY=20.0), _p(150, PARKING_TIME=0.7)],
         11.25, 12.75),
    ],
)
def test_spec_example_tariffs(tariff, periods, excl, incl):
    """Each spec example tariff prices its scenario to the spec's totals."""
    bd = pricing.price(_tariff(tariff), periods)
    assert (bd.total_excl, bd.total_incl) == (excl, incl)


def test_spec_cdr_example_reprices_to_its_own_totals():
    """cdr_example.json: 1.973 h at 2 EUR/h in 5-minute steps bills 2 h: 4.00 / 4.40."""
    cdr = json.loads((OCPI / "cdr_example.json").read_text())
    bd = pricing.price(cdr["tariffs"][0], pricing.parse_cdr_periods(cdr, UTC))
    assert bd.total_excl == cdr["total_cost"]["excl_vat"]
    assert bd.total_incl == cdr["total_cost"]["incl_vat"]
    assert bd.cdr_fields()["total_time_cost"] == cdr["total_time_cost"]


def test_time_of_day_restriction_wraps_midnight_and_picks_first_element():
    tariff = {"id": "T", "currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.19, "vat": 0, "step_size": 1}],
         "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
        {"price_components": [{"type": "ENERGY", "price": 0.24, "vat": 0, "step_size": 1}]},
    ]}
    night = pricing.Period(dt.datetime(2026, 11, 16, 23, 30, tzinfo=UTC), {"ENERGY": 10.0})
    day = pricing.Period(dt.datetime(2026, 11, 17, 6, 0, tzinfo=UTC), {"ENERGY": 10.0})
    assert pricing.price(tariff, [night, day]).total_excl == 4.30


def test_unsupported_restriction_is_refused():
    tariff = {"elements": [{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}],
                            "restrictions": {"max_power": 11}}]}
    with pytest.raises(ValueError, match="max_power"):
        pricing.price(tariff, [_p(0, ENERGY=1.0)])
