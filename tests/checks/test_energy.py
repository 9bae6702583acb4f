"""energy_mismatch: charger, backend and CDR energy of one session, within meter resolution."""

import pytest

from checks.energy import RULES
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect
from tests.checks.lineage_seed import add_session, add_site, create_tables, findings


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
