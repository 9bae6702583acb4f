"""meter_anomaly: readings of one transaction's register that cannot all be true."""

import pytest

from checks.meter import RULES
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect
from tests.checks.lineage_seed import add_session, add_site, create_tables, findings


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        create_tables(c)
        add_site(c, site_type="microgrid", connectors=4, max_power_kw=11.0)
        yield c


def run(conn):
    return build_flags(conn, load_options(), RULES)["meter_anomaly"]


def reasons(conn):
    return {f["session_key"]: f["evidence"] for f in findings(conn, "meter_anomaly")}


def test_plausible_meters_pass(conn):
    # A register that restarts at 0 for each transaction is not an anomaly.
    add_session(conn, "a", energy=10.0, tx_overrides={"meter_start_kwh": 0.0, "meter_stop_kwh": 10.0})
    # 10.5 kWh in one hour from an 11 kW EVSE is possible.
    add_session(conn, "b", connector=2, energy=10.5)
    # A rollback seen only through an unset (1970) clock's sample order, stop above start.
    add_session(conn, "c", connector=3, tx_overrides={"anomalies": ["epoch_timestamp", "register_rollback"]})
    # OCPP 2.0.1 may end a transaction without a meter value.
    add_session(conn, "d", connector=4, tx_overrides={"ocpp_version": "2.0.1", "meter_stop_kwh": None,
                                                      "anomalies": ["meter_stop_missing"]})
    assert run(conn) == 0


@pytest.mark.parametrize(("tx_overrides", "session", "reason"), [
    ({"anomalies": ["register_rollback", "negative_energy"], "meter_stop_kwh": 990.0, "energy_kwh": -10.0},
     {}, "negative_energy"),
    ({"meter_stop_kwh": -0.001, "anomalies": ["negative_energy"]}, {}, "meter_stop_negative"),
    ({"energy_kwh": 40.0}, {"ocpp_energy_kwh": 40.0}, "over_power"),
    ({"energy_as_labelled_kwh": 0.01, "anomalies": ["unit_suspect"]}, {}, "unit_confusion"),
])
def test_implausible_meters_are_flagged(conn, tx_overrides, session, reason):
    add_session(conn, "a", site_type="microgrid", energy=10.0, tx_overrides=tx_overrides, **session)
    assert run(conn) == 1
    evidence = reasons(conn)["a"]
    assert reason in evidence
    (f,) = findings(conn, "meter_anomaly")
    assert f["severity"] == "error"
