"""capability_mismatch on a hand-made warehouse: published vs registry vs metered power."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from checks import collect_rules
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect

RULES = [r for r in collect_rules() if r.check == "capability_mismatch"]
T0 = datetime(2026, 11, 20, 7, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        c.execute("create table staging.sites as select 'PLAZA' as site_id, 'public' as site_type")
        c.execute("""create table staging.evses (charge_point_id varchar, connector_id integer, site_id varchar,
            location_id varchar, evse_uid varchar, evse_id varchar, max_power_kw double)""")
        c.execute("""create table staging.location_evse_status (location_id varchar, evse_uid varchar,
            evse_id varchar, status varchar, snapshot_at timestamptz, connectors json)""")
        c.execute("""create table staging.ocpp_meter_values (charge_point_id varchar, connector_id integer,
            sampled_at timestamptz, measurand varchar, phase varchar, value double)""")
        yield c


def evse(c, uid, registry_kw, connector: dict, powers_kw=(), phases=None):
    c.execute("insert into staging.evses values ($cp, 1, 'PLAZA', 'LOC1', $u, $u, $kw)",
              {"cp": f"CP-{uid}", "u": uid, "kw": registry_kw})
    for h in (0, 1):  # an older snapshot with other limits must not count
        conns = [connector] if h else [{**connector, "max_electric_power": 1000}]
        c.execute("insert into staging.location_evse_status values ('LOC1', $u, $u, 'AVAILABLE', $t, $j)",
                  {"u": uid, "t": T0 + timedelta(hours=h), "j": json.dumps(conns)})
    for i, kw in enumerate(powers_kw):
        for ph in phases or [None]:
            c.execute("insert into staging.ocpp_meter_values values ($cp, 1, $t, 'Power.Active.Import', $ph, $v)",
                      {"cp": f"CP-{uid}", "t": T0 + timedelta(minutes=i), "ph": ph,
                       "v": kw / (len(phases) if phases else 1)})


AC11 = {"power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16, "max_electric_power": 11000}
DC50 = {"power_type": "DC", "max_voltage": 920, "max_amperage": 54, "max_electric_power": 50000}


def run(c):
    build_flags(c, load_options(), RULES)
    return {r[0]: r[1:] for r in c.execute(
        "select evse_uid, severity, evidence::varchar, explanation from recon.flags").fetchall()}


def test_consistent_limits_raise_nothing(conn):
    evse(conn, "E1", 11.0, AC11, powers_kw=[10.8, 11.0, 10.9], phases=["L1", "L2", "L3"])
    evse(conn, "E2", 50.0, DC50, powers_kw=[48.0, 80.0, 49.0])  # one spike is a meter glitch
    # no max_electric_power: 230 V x 16 A x 3 phases = 11.04 kW
    evse(conn, "E3", 11.0, {k: v for k, v in AC11.items() if k != "max_electric_power"})
    assert run(conn) == {}


def test_wrong_published_limits_are_flagged_once_per_evse(conn):
    evse(conn, "E1", 22.0, {**AC11, "max_electric_power": 44000})          # doubled vs registry
    evse(conn, "E2", None, {**DC50, "max_electric_power": 25000},          # registry unknown,
         powers_kw=[40.0, 45.0, 44.0, 20.0])                               # but it delivered more
    evse(conn, "E3", 50.0, DC50)
    flags = run(conn)
    assert set(flags) == {"E1", "E2"}
    ev1, ev2 = json.loads(flags["E1"][1]), json.loads(flags["E2"][1])
    assert ev1["differs_from_registry"] and not ev1["exceeded_by_observed"]
    assert ev1["published_max_electric_power_kw"] == 44.0 and ev1["registry_max_power_kw"] == 22.0
    assert ev2["exceeded_by_observed"] and ev2["samples_above_published"] == 3
    assert flags["E1"][0] == "error" and "registry says 22.0 kW" in flags["E1"][2]
    assert "delivered up to 45.0 kW" in flags["E2"][2]
