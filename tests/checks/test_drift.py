"""charger_clock_skew and timestamp_drift on a hand-made warehouse (tests/fixtures/tariff_world.py)."""

from datetime import timedelta

import pytest

from assets.clock import build_charger_clock
from checks import collect_rules
from pipeline.flags import build_flags
from pipeline.warehouse import connect
from tests.fixtures.tariff_world import World, at

OPTIONS = {"checks": {
    "charger_clock_skew": {"tolerance_s": 60, "min_samples": 5, "offline_s": 600, "bin_s": 30},
    "timestamp_drift": {"tolerance_s": 120, "severity": {"public": "warn", "default": "warn"}},
}}
RULES = [r for r in collect_rules() if r.check in ("charger_clock_skew", "timestamp_drift")]


def _flags(tmp_path, world: World) -> dict[tuple[str, str], dict]:
    with connect(tmp_path / "w.duckdb") as conn:
        world.write(conn)
        build_charger_clock(conn, OPTIONS)
        build_flags(conn, OPTIONS, RULES)
        rows = conn.execute(
            """select "check", coalesce(session_key, charge_point_id), evidence::varchar, explanation
               from recon.flags"""
        ).fetchall()
        clock = {r[0]: r[1:] for r in conn.execute(
            "select charge_point_id, skew_s, n_used, n_offline_ignored, n_epoch_ignored from recon.charger_clock"
        ).fetchall()}
    return {(c, k): {"evidence": e, "explanation": x, "clock": clock} for c, k, e, x in rows}


def test_clean_sessions_with_jitter_raise_nothing(tmp_path):
    w = World()
    w.session("S1", 9, backend_shift_s=4)
    w.session("S2", 11, skew_s=2)
    assert _flags(tmp_path, w) == {}


def test_skewed_charger_is_one_charger_finding_not_session_drift(tmp_path):
    w = World()
    w.session("S1", 9, cp="CP-9", skew_s=300)
    w.session("S2", 11, cp="CP-9", skew_s=300)
    found = _flags(tmp_path, w)
    assert set(found) == {("charger_clock_skew", "CP-9")}
    skew, used, *_ = found[("charger_clock_skew", "CP-9")]["clock"]["CP-9"]
    assert skew == pytest.approx(300) and used == 14
    assert "ahead of" in found[("charger_clock_skew", "CP-9")]["explanation"]


def test_offline_queued_and_epoch_frames_do_not_make_a_skew(tmp_path):
    w = World()
    w.session("S1", 9)
    w.session("S2", 11)
    # a burst sent after reconnecting: stamped hours before it arrived; plus a 1970 boot clock
    for i in range(4):
        t = at(15) + timedelta(seconds=i)
        w.meter_values.append(("CP-1", 1, "S2", t - timedelta(hours=3), t, "Energy.Active.Import.Register",
                               None, 1.0, "MeterValues", "mv.jsonl", 900 + i))
    w.events.append(("CP-1", "started", "X", at(-490_000), at(16), False))
    found = _flags(tmp_path, w)
    assert found == {}
    with connect(tmp_path / "w.duckdb") as conn:
        n_off, n_epoch = conn.execute(
            "select n_offline_ignored, n_epoch_ignored from recon.charger_clock where charge_point_id = 'CP-1'"
        ).fetchall()[0]
    assert (n_off, n_epoch) == (4, 1)


def test_backend_times_off_by_ten_minutes_are_drift(tmp_path):
    w = World()
    w.session("S1", 9)
    w.session("S2", 11, backend_shift_s=600)
    found = _flags(tmp_path, w)
    assert set(found) == {("timestamp_drift", "S2")}
    assert '"tolerance_s":120' in found[("timestamp_drift", "S2")]["evidence"]


def test_drift_on_a_skewed_charger_is_still_found(tmp_path):
    w = World()
    w.session("S1", 9, cp="CP-9", skew_s=300)
    w.session("S2", 11, cp="CP-9", skew_s=300, backend_shift_s=-900)
    found = _flags(tmp_path, w)
    assert set(found) == {("charger_clock_skew", "CP-9"), ("timestamp_drift", "S2")}
    assert '"charger_skew_applied_s":300' in found[("timestamp_drift", "S2")]["evidence"]


@pytest.mark.parametrize(("offset_s", "flagged"), [(300, True), (-300, False)])
def test_idle_charger_with_few_frames_is_judged_only_when_stamped_ahead(tmp_path, offset_s, flagged):
    w = World()
    w.session("S1", 9)
    for status_at in (at(1), at(2)):
        stamp = status_at + timedelta(seconds=offset_s)
        w.status.append(("CP-IDLE", 1, "Available", stamp, status_at, stamp))
    # the staged status_at of a 1970 stamp is the receive time: it must not count as "no skew"
    w.status.append(("CP-IDLE", 1, "Available", at(3), at(3), at(-490_000)))
    found = _flags(tmp_path, w)
    assert (("charger_clock_skew", "CP-IDLE") in found) is flagged
    assert found.get(("charger_clock_skew", "CP-IDLE"), {"clock": {"CP-IDLE": (0, 2)}})["clock"]["CP-IDLE"][1] == 2


def _stop_read_an_hour_late(w: World, key: str) -> None:
    # the backend export's stop as a naive local time read at its later (standard-time) meaning
    row = list(w.sessions[-1])
    assert row[0] == key
    row[16] = row[16] + timedelta(hours=1)
    w.sessions[-1] = tuple(row)


@pytest.mark.parametrize(("stop_utc_h", "flagged"), [
    (0.5, False),  # 02:30 in Amsterdam on 25 Oct 2026 happens twice: the other reading agrees
    (4.5, True),   # 05:30 happens once: an hour off is drift
])
def test_backend_stop_in_the_repeated_hour_is_read_both_ways(tmp_path, stop_utc_h, flagged):
    # Regression (2026-11): a clean generated network whose backend exports local times without
    # offset had four error findings for stops in the hour repeated when summer time ended.
    from datetime import UTC, datetime

    from tests.fixtures.tariff_world import T0

    stop_h = (datetime(2026, 10, 25, tzinfo=UTC) - T0).total_seconds() / 3600 + stop_utc_h
    w = World()
    w.session("S1", stop_h - 1, cdr=False)
    _stop_read_an_hour_late(w, "S1")
    found = _flags(tmp_path, w)
    assert (("timestamp_drift", "S1") in found) is flagged
    if flagged:
        assert '"backend_stopped_at_other_reading":null' in found[("timestamp_drift", "S1")]["evidence"]
