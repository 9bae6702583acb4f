"""energy_mismatch: charger, backend and CDR energy of one session, within meter resolution."""

import datetime as dt

import pytest

from checks.energy import RULES
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect
from tests.checks.lineage_seed import T0, add_session, add_site, create_tables, findings


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        create_tables(c)
        add_site(c)
        yield c


def run(conn):
    return build_flags(conn, load_options(), RULES)["energy_mismatch"]


def test_agreeing_sources_within_resolution_pass(conn):
    # 30.00 vs 30.2 kWh: 0.2 kWh is within 1 % of 30 kWh (0.3 kWh).
    add_session(conn, "a", energy=30.0, backend_energy_kwh=30.2)
    # Small session: 0.04 kWh apart is inside the 0.05 kWh absolute floor.
    add_session(conn, "b", energy=2.0, connector=2, cdr_energy_kwh=2.04)
    assert run(conn) == 0


def test_cdr_billing_more_than_metered_is_flagged_with_money(conn):
    add_session(conn, "a", energy=20.0, cdr_energy_kwh=25.0, cdr_total_cost_excl_vat=10.0)
    assert run(conn) == 1
    (f,) = findings(conn, "energy_mismatch")
    assert f["session_key"] == "a" and f["severity"] == "error"
    # 5 kWh at the CDR's own 0.40 EUR/kWh.
    assert float(f["money_at_risk"]) == pytest.approx(2.0)
    assert '"difference_kwh":5.0' in f["evidence"].replace(" ", "")


def test_meter_fault_is_left_to_meter_anomaly(conn):
    # The charger's register rolled back: its energy is meter_anomaly's finding, and the
    # backend and CDR agree, so no energy_mismatch.
    add_session(conn, "a", energy=10.0, ocpp_energy_kwh=-990.0,
                tx_overrides={"anomalies": ["negative_energy", "register_rollback"], "energy_kwh": -990.0})
    assert run(conn) == 0


def test_running_backend_session_is_not_compared(conn):
    add_session(conn, "a", energy=10.0, backend_energy_kwh=4.0, backend_stopped_at=None)
    assert run(conn) == 0


def test_backend_rounding_to_a_tenth_widens_the_tolerance_by_half_a_step(conn):
    # This export reports whole tenths of a kWh (5 rows): 4.94 kWh metered is 4.9 or 5.0
    # there, and a 0.06 kWh difference is its rounding, not a second record.
    for i, (metered, exported) in enumerate([(4.94, 5.0), (12.02, 12.0), (7.31, 7.3), (3.18, 3.2), (9.96, 10.0)]):
        add_session(conn, f"r{i}", energy=metered, connector=1 + i % 2, start=T0 + dt.timedelta(hours=2 * i),
                    backend_energy_kwh=exported, cdr=False, backend_file="backend/tenths.csv")
    assert run(conn) == 0
    # the same export 0.3 kWh short on a 5 kWh session is a finding
    add_session(conn, "short", energy=5.3, start=T0 + dt.timedelta(hours=20), backend_energy_kwh=5.0,
                cdr=False, backend_file="backend/tenths.csv")
    assert run(conn) == 1
    (f,) = findings(conn, "energy_mismatch")
    assert f["session_key"] == "short" and '"backend_resolution_kwh":0.1' in f["evidence"].replace(" ", "")


def test_a_few_round_values_do_not_make_a_coarse_export(conn):
    # two rows that happen to be whole tenths say nothing about the export's resolution
    add_session(conn, "a", energy=5.06, backend_energy_kwh=5.0, cdr=False, backend_file="backend/few.csv")
    add_session(conn, "b", energy=8.0, connector=2, backend_energy_kwh=8.0, cdr=False, backend_file="backend/few.csv")
    assert run(conn) == 1
