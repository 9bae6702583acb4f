"""GIREVE's OCPI 2.1.1 ``SESSION_TIME`` price component: the whole session, charging or not.

GIREVE_Tech_OCPI_V2.1.1 (cpo_tariffs.md, 3.11.2) adds ``SESSION_TIME``: "time charging or not:
defined in hours, step_size multiplier: 1 second". The tariff and CDR below are written by
hand in that shape (2.1.1: bare-number prices, ``stop_date_time``, no VAT).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pipeline.cli import main
from pipeline.tariffs import cdr_from_ocpi, price, tariff_from_ocpi

TARIFF = {
    "id": "GIR-1", "currency": "EUR", "last_updated": "2021-02-11T16:46:37Z",
    "elements": [{"price_components": [
        {"type": "ENERGY", "price": 0.25, "step_size": 1},
        {"type": "SESSION_TIME", "price": 1.20, "step_size": 60},
    ]}],
}
# 10:00:00 -> 12:30:20: 1 h 30 min charging 20 kWh, then 1 h 0 min 20 s parked.
CDR = {
    "id": "GIR-CDR-1", "start_date_time": "2021-03-01T10:00:00Z", "stop_date_time": "2021-03-01T12:30:20Z",
    "currency": "EUR", "tariffs": [TARIFF],
    "charging_periods": [
        {"start_date_time": "2021-03-01T10:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 1.5}]},
        {"start_date_time": "2021-03-01T11:30:00Z", "dimensions": [{"type": "PARKING_TIME", "volume": 1.0056}]},
    ],
    "total_cost": 8.02, "total_energy": 20, "total_time": 2.5056, "total_parking_time": 1.0056,
    "last_updated": "2021-03-01T12:31:00Z",
}
# By hand: session 9,020 s, step 60 s -> 9,060 s = 2.51667 h x 1.20 = 3.02; 20 kWh x 0.25 = 5.00.
EXPECTED_SESSION_TIME = Decimal(9060) * Decimal("1.20") / Decimal(3600)
EXPECTED_TOTAL = Decimal("5.00") + EXPECTED_SESSION_TIME


def test_session_time_prices_the_whole_session_with_its_step_size():
    tariff = tariff_from_ocpi(TARIFF)
    cdr = cdr_from_ocpi(CDR)
    bd = price(cdr.charging_periods, tariff, session_end=cdr.end_date_time)
    assert Decimal("3.02") == EXPECTED_SESSION_TIME
    assert bd.total_cost.excl_vat == EXPECTED_TOTAL
    assert bd.total_time_cost.excl_vat == EXPECTED_SESSION_TIME   # no OCPI field of its own
    assert bd.total_parking_cost.excl_vat == 0 and bd.total_energy_cost.excl_vat == Decimal("5.00")
    assert any("SESSION_TIME is a GIREVE extension" in w for w in bd.warnings)


def test_without_session_time_the_same_session_costs_energy_only():
    """The failing case the reader used to produce: an unknown type dropped, price 5.00."""
    plain = {**TARIFF, "elements": [{"price_components": [TARIFF["elements"][0]["price_components"][0]]}]}
    bd = price(cdr_from_ocpi(CDR).charging_periods, tariff_from_ocpi(plain),
               session_end=cdr_from_ocpi(CDR).end_date_time)
    assert bd.total_cost.excl_vat == Decimal("5.00") != EXPECTED_TOTAL


def test_price_command_prices_a_gireve_cdr_from_its_embedded_tariff(tmp_path, capsys):
    path = tmp_path / "cdr.json"
    path.write_text(json.dumps(CDR))
    assert main(["price", "--cdr", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["computed"]["total_cost"]["excl_vat"] == pytest.approx(8.02)
    assert out["difference"]["total_cost"]["excl_vat"] == 0.0
    # TIME and PARKING_TIME have no component of their own (free); SESSION_TIME prices both.
    assert [p["elements"] for p in out["periods"]] == [
        {"ENERGY": 0, "TIME": None, "SESSION_TIME": 0}, {"PARKING_TIME": None, "SESSION_TIME": 0}]


def test_a_staged_session_time_tariff_carries_a_dq_warning(tmp_path):
    from assets.staging import stage_all
    from pipeline.config import load_options
    from pipeline.ingest.run import ingest_landing
    from pipeline.warehouse import connect

    landing = tmp_path / "landing" / "tariffs"
    landing.mkdir(parents=True)
    plain = {**TARIFF, "id": "GIR-2", "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3}]}]}
    (landing / "t.json").write_text(json.dumps([TARIFF, plain]))
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, tmp_path / "landing", load_options()["ingest"])
    stage_all(conn, load_options())
    rows = dict(conn.sql("select tariff_id, dq_warnings from staging.tariff_versions").fetchall())
    assert any("SESSION_TIME" in w for w in rows["GIR-1"])
    assert not any("SESSION_TIME" in w for w in rows["GIR-2"])
