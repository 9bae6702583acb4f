"""Attribution assets: sessions prorated into site intervals, EMS beside them, energy sources."""

import datetime as dt

import dagster as dg
import pytest

from assets.attribution import (
    attribution_params,
    marts_session_energy_sources,
    recon_session_intervals,
    recon_site_intervals,
)
from pipeline.config import load_options
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table
from pipeline.warehouse import connect
from tests.checks.lineage_seed import T0, add_ems, add_samples, add_session, add_site, create_tables

M = dt.timedelta(minutes=1)
# The cases below were worked out by hand with sessions capped at 1.25 x their rated power;
# the bounds logic is the same at any cap (the default cap is tested on its own below).
PARAMS = {**attribution_params(load_options()), "bound_power_margin": 1.25}


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        create_tables(c)
        add_site(c, site_type="microgrid", connectors=2, max_power_kw=22.0)
        yield c


def intervals(conn, key):
    build_table(conn, "recon.session_intervals", PARAMS)
    rows = conn.execute(
        "select interval_start_at, energy_kwh, basis from recon.session_intervals where session_key = $k order by 1",
        {"k": key},
    ).fetchall()
    return [(r[0].strftime("%H:%M"), round(r[1], 3), r[2]) for r in rows]


def test_meter_values_are_prorated_by_time_overlap(conn):
    start = T0 + 5 * M
    add_session(conn, "a", site_type="microgrid", start=start, minutes=30, energy=10.0)
    add_samples(conn, "CP1", "A", [(start, 1000.0), (start + 15 * M, 1005.0), (start + 30 * M, 1010.0)])
    assert intervals(conn, "a") == [
        ("10:00", 3.333, "meter_values"), ("10:15", 5.0, "meter_values"), ("10:30", 1.667, "meter_values"),
    ]


def test_uneven_power_follows_the_samples_not_the_clock(conn):
    # All energy in the first 15 minutes, then the car is full and idles.
    add_session(conn, "a", site_type="microgrid", minutes=45, energy=5.0)
    add_samples(conn, "CP1", "A", [(T0 + 15 * M, 1005.0), (T0 + 30 * M, 1005.0)])
    assert intervals(conn, "a") == [("10:00", 5.0, "meter_values")]


def test_without_samples_energy_is_spread_evenly(conn):
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0, ocpp=False)
    assert intervals(conn, "a") == [("10:00", 3.0, "even"), ("10:15", 3.0, "even")]


def test_register_jump_beyond_power_falls_back_to_even(conn):
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0)
    add_samples(conn, "CP1", "A", [(T0 + 10 * M, 1500.0)])  # 500 kWh in 10 minutes from 22 kW
    assert intervals(conn, "a") == [("10:00", 3.0, "even"), ("10:15", 3.0, "even")]


def test_a_register_dip_is_skipped_and_keeps_the_samples(conn):
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0)
    # Rolled back by 2 kWh for one sample, then back on track.
    add_samples(conn, "CP1", "A", [(T0 + 10 * M, 1002.0), (T0 + 15 * M, 1001.0), (T0 + 20 * M, 1004.0)])
    # The dip at 10:15 is dropped: 10:10..10:20 delivered 2 kWh, half in each interval.
    assert intervals(conn, "a") == [("10:00", 3.0, "meter_values"), ("10:15", 3.0, "meter_values")]


def test_a_shallow_dip_is_skipped_too(conn):
    # 11 kW x 1.25 allows 2.29 kWh per 10 minutes: the dip at 10:10 is above 10:00 but the
    # step after it is not possible, and without it the 20 minutes are.
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0)
    conn.execute("update staging.evses set max_power_kw = 11.0")
    add_samples(conn, "CP1", "A", [(T0 + 10 * M, 1000.5), (T0 + 20 * M, 1004.0)])
    assert intervals(conn, "a") == [("10:00", 3.0, "meter_values"), ("10:15", 3.0, "meter_values")]


def test_samples_from_an_unset_clock_take_the_receive_time(conn):
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0)
    conn.execute("insert into staging.ocpp_meter_values values ('CP1', 1, 'A', timestamptz '1970-01-01 00:05:00+00',"
                 " $r, 'Energy.Active.Import.Register', null, 1005.0, 'MeterValues', null)", {"r": T0 + 15 * M})
    assert intervals(conn, "a") == [("10:00", 5.0, "meter_values"), ("10:15", 1.0, "meter_values")]


def test_periodic_samples_labelled_in_the_wrong_unit_are_rescaled(conn):
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0)
    add_samples(conn, "CP1", "A", [(T0 + 15 * M, 1.005)])  # 1005 kWh sent as "1005" Wh
    assert intervals(conn, "a") == [("10:00", 5.0, "meter_values"), ("10:15", 1.0, "meter_values")]


def test_a_cdr_alone_is_not_energy_at_the_site(conn):
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0, ocpp=False, backend=False)
    assert intervals(conn, "a") == []


def test_skewed_charger_clock_moves_onto_csms_time(conn):
    # The charger's clock runs 15 minutes behind: everything it stamps arrives 900 s "late".
    late = {"start_received_at": T0 + 15 * M, "stop_received_at": T0 + 30 * M}
    add_session(conn, "a", site_type="microgrid", minutes=15, energy=4.0, tx_overrides=late)
    add_samples(conn, "CP1", "A", [(T0 + 5 * M, 1001.0)], received_offset_s=900)
    assert intervals(conn, "a") == [("10:15", 4.0, "meter_values")]


def test_site_intervals_and_pv_first_energy_sources(conn):
    add_session(conn, "a", site_type="microgrid", minutes=15, energy=6.0, ocpp=False)
    add_session(conn, "b", site_type="microgrid", connector=2, minutes=15, energy=2.0, ocpp=False)
    add_ems(conn, "S1", T0, 8.0, pv_kwh=5.0, battery_discharge_kwh=2.0, grid_import_kwh=4.0)
    add_ems(conn, "S1", T0 + 15 * M, 0.0, pv_kwh=5.0)
    for table in ("recon.session_intervals", "recon.site_intervals", "marts.session_energy_sources"):
        build_table(conn, table, PARAMS)
    rows = conn.execute(
        "select strftime(interval_start_at, '%H:%M'), ems_ev_energy_kwh, sessions_energy_kwh, difference_kwh, n_sessions "
        "from recon.site_intervals order by 1"
    ).fetchall()
    assert rows == [("10:00", 8.0, 8.0, 0.0, 2), ("10:15", 0.0, 0.0, 0.0, 0)]
    # 8 kWh of EV load: 5 from PV, 2 from the battery, 1 from the grid, shared 6:2.
    src = conn.execute(
        "select session_key, round(pv_kwh, 3), round(battery_kwh, 3), round(grid_kwh, 3), round(pv_share, 4) "
        "from marts.session_energy_sources order by 1"
    ).fetchall()
    assert src == [("a", 3.75, 1.5, 0.75, 0.625), ("b", 1.25, 0.5, 0.25, 0.625)]


def test_assets_materialize(tmp_path):
    db = tmp_path / "w.duckdb"
    with connect(db) as c:
        create_tables(c)
        add_site(c, site_type="microgrid")
        add_session(c, "a", site_type="microgrid", minutes=15, energy=5.0)
        add_ems(c, "S1", T0, 5.0, pv_kwh=10.0)
    landing = tmp_path / "landing"
    landing.mkdir()
    result = dg.materialize(
        [recon_session_intervals, recon_site_intervals, marts_session_energy_sources],
        resources={"duckdb": WarehouseResource(database=str(db)), "landing": LandingResource(path=str(landing))},
    )
    assert result.success
    with connect(db) as c:
        assert c.execute("select pv_share from marts.session_energy_sources").fetchall() == [(1.0,)]


def bounds(conn, key):
    build_table(conn, "recon.session_intervals", PARAMS)
    rows = conn.execute(
        "select interval_start_at, least_kwh, most_kwh, energy_kwh from recon.session_intervals "
        "where session_key = $k order by 1", {"k": key}).fetchall()
    return [(r[0].strftime("%H:%M"), round(r[1], 3), round(r[2], 3), round(r[3], 3)) for r in rows]


def test_samples_bound_each_interval_by_their_gaps_and_the_power_limit(conn):
    # 22 kW x 1.25 = 27.5 kW: 5 kWh in 10:05..10:25 can sit anywhere in that gap.
    start = T0 + 5 * M
    add_session(conn, "a", site_type="microgrid", start=start, minutes=20, energy=5.0)
    assert bounds(conn, "a") == [("10:00", 0.417, 4.583, 2.5), ("10:15", 0.417, 4.583, 2.5)]


def test_without_samples_the_session_may_have_drawn_anywhere_in_its_window(conn):
    add_session(conn, "a", site_type="microgrid", minutes=60, energy=6.0, ocpp=False)
    assert bounds(conn, "a") == [(f"10:{m:02d}", 0.0, 6.0, 1.5) for m in (0, 15, 30, 45)]


def test_after_a_register_reset_the_samples_on_each_side_still_bound_their_gaps(conn):
    # 10:00 1000, 10:15 1002.5, reset (10:30 reads 0), 10:45 2.5, stop 11:00 5.0; backend 10 kWh.
    add_session(conn, "a", site_type="microgrid", minutes=60, energy=10.0,
                tx_overrides={"meter_stop_kwh": 5.0, "energy_kwh": -995.0})
    add_samples(conn, "CP1", "A", [(T0 + 15 * M, 1002.5), (T0 + 30 * M, 0.0), (T0 + 45 * M, 2.5)])
    rows = bounds(conn, "a")
    # The step across the reset (10:15..10:30) holds the rest: 10 - 2.5 - 2.5 - 2.5 = 2.5 kWh.
    assert rows == [("10:00", 2.5, 2.5, 2.5), ("10:15", 2.5, 2.5, 2.5), ("10:30", 2.5, 2.5, 2.5),
                    ("10:45", 2.5, 2.5, 2.5)]
    basis = conn.execute("select distinct basis, n_broken_steps from recon.session_intervals").fetchall()
    assert basis == [("meter_values+rest", 1)]


def test_the_power_limit_falls_back_to_ocpi_then_to_the_samples(conn):
    conn.execute("update staging.evses set max_power_kw = null")
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0)
    add_samples(conn, "CP1", "A", [(T0 + 15 * M, 1004.0)])  # 16 kW over the first gap
    conn.execute("insert into staging.location_evse_status values ('CP1-2', $t, 'AVAILABLE', "
                 "'[{\"max_voltage\": 230, \"max_amperage\": 32, \"power_type\": \"AC_3_PHASE\"}]')", {"t": T0})
    build_table(conn, "recon.session_intervals", PARAMS)
    src = conn.execute("select distinct power_limit_kw, power_limit_source from recon.session_intervals").fetchall()
    assert src == [(16.0, "highest power in its own samples")]
    conn.execute("update staging.location_evse_status set evse_uid = 'CP1-1'")
    build_table(conn, "recon.session_intervals", PARAMS)
    src = conn.execute("select distinct round(power_limit_kw, 2), power_limit_source from recon.session_intervals").fetchall()
    assert src == [(22.08, "OCPI max_voltage x max_amperage x phases")]


def test_a_start_and_stop_register_alone_do_not_set_the_power_limit(conn):
    # 6 kWh over 10 hours is 0.6 kW on average, not the EVSE's limit: without registry, OCPI
    # or periodic samples the limit stays the default (the car may have charged in an hour).
    conn.execute("update staging.evses set max_power_kw = null")
    add_session(conn, "a", site_type="microgrid", minutes=600, energy=6.0)
    build_table(conn, "recon.session_intervals", PARAMS)
    src = conn.execute("select distinct power_limit_kw, power_limit_source from recon.session_intervals").fetchall()
    assert src == [(PARAMS["default_max_power_kw"], "default_max_power_kw")]


def test_a_stop_from_the_offline_queue_does_not_shift_the_session(conn):
    # No samples; the stop reached the CSMS 5 h late from the charger's offline queue. Its
    # clock is right (the start arrived at once): the session stays where it was.
    late = {"stop_received_at": T0 + 30 * M + dt.timedelta(hours=5), "stop_from_offline_queue": True}
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=6.0, tx_overrides=late)
    rows = bounds(conn, "a")
    assert [r[0] for r in rows] == ["10:00", "10:15"]


def test_a_transaction_without_stop_or_billed_energy_has_unknown_energy(conn):
    # No stop, no samples, no backend or CDR energy; the next transaction on the connector
    # starts at 11:00. Its lineage energy (0: no meterStop) is no evidence: it may have drawn
    # anything its EVSE could deliver until then.
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=0.0, ocpp_stopped_at=None,
                backend_stopped_at=None, backend_energy_kwh=None, cdr=False,
                tx_overrides={"has_stop": False, "stopped_at": None, "stop_received_at": None,
                              "meter_stop_kwh": None, "energy_kwh": 0.0})
    add_session(conn, "next", site_type="microgrid", start=T0 + 60 * M, minutes=15, energy=1.0, tx="N")
    rows = bounds(conn, "a")
    assert [r[0] for r in rows] == ["10:00", "10:15", "10:30", "10:45"]
    assert all(r[1] == 0.0 and r[2] == pytest.approx(22 * 1.25 / 4, abs=0.001) for r in rows)


def test_a_sampled_session_without_stop_ends_within_its_own_sample_gap(conn):
    # Sampled every 5 minutes until 10:30, then silent; the connector says Available at 14:00.
    # Had it kept drawing, the charger would have sent more samples: it ends by 10:35.
    add_session(conn, "a", site_type="microgrid", minutes=30, energy=0.0, ocpp_stopped_at=None,
                backend_stopped_at=None, backend_energy_kwh=None, cdr=False,
                tx_overrides={"has_stop": False, "stopped_at": None, "stop_received_at": None,
                              "meter_stop_kwh": None, "energy_kwh": 0.0})
    add_samples(conn, "CP1", "A", [(T0 + k * 5 * M, 1000.0 + 0.5 * k) for k in range(1, 7)])
    conn.execute("insert into staging.ocpp_status values ('CP1', 1, 'Available', $t)", {"t": T0 + 240 * M})
    rows = bounds(conn, "a")
    assert [r[0] for r in rows] == ["10:00", "10:15", "10:30"]
    assert rows[2][2] == pytest.approx(22 * 1.25 * 5 / 60, abs=0.001)  # at most 5 minutes of it


def test_the_default_cap_bounds_a_session_near_its_rated_power(conn):
    # one hour at 22 kW rated, no samples: the most it can put into a quarter hour is
    # 22 kW x 1.05 (meter and nameplate tolerance) x 0.25 h, not a quarter more
    add_session(conn, "a", energy=10.0, start=T0, minutes=60)
    params = attribution_params(load_options())
    assert params["bound_power_margin"] == pytest.approx(1.05)
    build_table(conn, "recon.session_intervals", params)
    most = conn.execute("select max(most_kwh) from recon.session_intervals where session_key = 'a'").fetchone()[0]
    assert most == pytest.approx(22.0 * 1.05 * 0.25)
