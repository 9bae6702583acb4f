"""energy_attribution_mismatch: EMS EV energy per site interval against the sessions in it."""

import datetime as dt

import pytest

from assets.attribution import attribution_params, build_judgement
from checks.attribution import RULES
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.sql import build_table
from pipeline.warehouse import connect
from tests.checks.lineage_seed import (
    T0,
    add_ems,
    add_samples,
    add_session,
    add_site,
    create_tables,
    findings,
)

M = dt.timedelta(minutes=1)


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        create_tables(c)
        add_site(c, site_type="microgrid", max_power_kw=22.0)
        # 20 kWh over an hour, sampled every 15 minutes: 5 kWh per interval.
        add_session(c, "a", site_type="microgrid", minutes=60, energy=20.0, price=0.5)
        add_samples(c, "CP1", "A", [(T0 + k * 15 * M, 1000.0 + 5 * k) for k in range(5)])
        yield c


def run(conn):
    options = load_options()
    for table in ("recon.session_intervals", "recon.site_intervals"):
        build_table(conn, table, attribution_params(options))
    build_judgement(conn, options)
    build_flags(conn, options, RULES)
    return findings(conn, "energy_attribution_mismatch")


def test_ems_matching_the_sessions_within_tolerance_passes(conn):
    # 5.1 vs 5.0 kWh: inside max(0.2 kWh, 3 %); an interval with no EV energy and no session.
    for k, kwh in enumerate((5.1, 4.95, 5.0, 5.0, 0.0)):
        add_ems(conn, "S1", T0 + k * 15 * M, kwh)
    assert run(conn) == []


def test_one_interval_off_is_an_interval_finding(conn):
    for k, kwh in enumerate((5.0, 8.0, 5.0, 5.0)):
        add_ems(conn, "S1", T0 + k * 15 * M, kwh)
    (f,) = run(conn)
    assert f["session_key"] is None and f["site_id"] == "S1"
    assert f["interval_start"] == T0 + 15 * M and f["severity"] == "error"
    # 8 kWh against at most 5 x 1.08 (conversion loss) + 0.025 (standby of 2 EVSEs): 2.575 kWh x 0.50
    assert float(f["money_at_risk"]) == pytest.approx(1.2875)


def test_energy_nobody_accounts_for_is_flagged(conn):
    add_ems(conn, "S1", T0 + 90 * M, 3.0)
    (f,) = run(conn)
    assert f["interval_start"] == T0 + 90 * M and '"n_sessions":0' in f["evidence"].replace(" ", "")


def test_a_session_off_in_every_interval_is_implicated(conn):
    for k in range(4):
        add_ems(conn, "S1", T0 + k * 15 * M, 7.0)
    found = run(conn)
    assert sum(f["session_key"] is None for f in found) == 4
    (s,) = [f for f in found if f["session_key"] is not None]
    assert s["session_key"] == "a" and s["interval_start"] is None
    assert float(s["money_at_risk"]) == pytest.approx(4.0)  # 8 kWh x 0.50


def test_two_ems_glitches_in_one_sessions_intervals_do_not_implicate_it(conn):
    # Regression (2026-11): two independent EMS dropouts inside one session's four intervals
    # implicated the session's metering; it dominated four and was off in only two.
    for k, kwh in enumerate((5.0, 0.0, 5.0, 0.0)):
        add_ems(conn, "S1", T0 + k * 15 * M, kwh)
    found = run(conn)
    assert sorted(f["interval_start"] for f in found) == [T0 + 15 * M, T0 + 45 * M]
    assert all(f["session_key"] is None for f in found)


def test_two_glitches_in_a_short_session_do_not_implicate_it(conn):
    # Regression (2026-11): a 30-minute session, both of its intervals read high by the EMS
    # (two glitches in a row): two interval findings, no blame on the session's meter.
    add_session(conn, "b", site_type="microgrid", start=T0 + 120 * M, minutes=30, energy=10.0, price=0.5, tx="B")
    add_samples(conn, "CP1", "B", [(T0 + (120 + k * 15) * M, 2000.0 + 5 * k) for k in range(3)])
    for k, kwh in enumerate((5.0, 5.0, 5.0, 5.0)):
        add_ems(conn, "S1", T0 + k * 15 * M, kwh)
    for k in range(2):
        add_ems(conn, "S1", T0 + (120 + k * 15) * M, 6.5)
    found = run(conn)
    assert sorted(f["interval_start"] for f in found) == [T0 + 120 * M, T0 + 135 * M]
    assert all(f["session_key"] is None for f in found)
