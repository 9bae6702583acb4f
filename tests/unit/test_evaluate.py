"""tests.support.evaluate: matching findings to planted faults, per check."""

import pytest

from tests.support.evaluate import evaluate_rows, level, matches


def truth(check, **kw):
    return {"check": check, **kw}


def flag(check, **kw):
    return {"check": check, **kw}


@pytest.mark.parametrize(("f", "t", "hit"), [
    (flag("cost_mismatch", charge_point_id="CP-1", ocpp_transaction_id="7"),
     truth("cost_mismatch", charge_point_id="CP-1", ocpp_transaction_id="7"), True),
    (flag("cost_mismatch", charge_point_id="CP-2", ocpp_transaction_id="7"),
     truth("cost_mismatch", charge_point_id="CP-1", ocpp_transaction_id="7"), False),
    (flag("orphan_cdr", cdr_id="C9"), truth("orphan_cdr", cdr_id="C9", charge_point_id="CP-1"), True),
    (flag("missing_cdr", backend_session_id="B1"), truth("missing_cdr", backend_session_id="B1"), True),
    (flag("charger_clock_skew", charge_point_id="CP-1", site_id="S"),
     truth("charger_clock_skew", charge_point_id="CP-1"), True),
    (flag("energy_attribution_mismatch", site_id="S1", interval_start="2026-11-20 08:15:00+00:00"),
     truth("energy_attribution_mismatch", site_id="S1", interval_start="2026-11-20T08:15:00Z"), True),
    (flag("energy_attribution_mismatch", site_id="S1", interval_start="2026-11-20T08:30:00Z"),
     truth("energy_attribution_mismatch", site_id="S1", interval_start="2026-11-20T08:15:00Z"), False),
    (flag("status_mismatch", evse_uid="E1", interval_start="2026-11-20T08:05:00Z"),
     truth("status_mismatch", evse_uid="E1", interval_start="2026-11-20T08:00:00Z"), True),
    (flag("status_mismatch", evse_uid="E1", interval_start="2026-11-20T10:00:00Z"),
     truth("status_mismatch", evse_uid="E1", interval_start="2026-11-20T08:00:00Z"), False),
    (flag("capability_mismatch", evse_uid="E1"), truth("capability_mismatch", evse_uid="E1"), True),
])
def test_matching_by_subject(f, t, hit):
    assert matches(f["check"], f, t) is hit


def test_levels():
    assert level("energy_attribution_mismatch", {"site_id": "S", "interval_start": "x"}) == "site_interval"
    assert level("energy_attribution_mismatch", {"cdr_id": "C", "interval_start": "x"}) == "session"
    assert level("auth_latency", {}) == "charger"


def test_scores_count_tp_fp_fn():
    flags = [
        flag("stale_tariff", cdr_id="C1"), flag("stale_tariff", cdr_id="C2"),
        flag("stale_tariff", cdr_id="C3"), flag("cost_mismatch", cdr_id="C4"),
    ]
    faults = [truth("stale_tariff", cdr_id="C1"), truth("stale_tariff", cdr_id="C2"),
              truth("stale_tariff", cdr_id="C5"), truth("timestamp_drift", backend_session_id="B")]
    report = evaluate_rows(flags, faults)
    s = report.score("stale_tariff")
    assert (s.flags, s.truth, s.tp, s.fp, s.fn) == (3, 3, 2, 1, 1)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert report.score("cost_mismatch").precision == 0.0
    assert report.score("timestamp_drift").recall == 0.0
    assert {x.check for x in report.failing(["stale_tariff", "cost_mismatch", "duplicate_cdr"])} == {
        "stale_tariff", "cost_mismatch"}
    assert report.to_dict()["checks"][0]["check"] == "cost_mismatch"
    assert any(line.startswith("stale_tariff") and "0.667" in line for line in report.render().splitlines())


def test_perfect_and_empty_checks_pass():
    report = evaluate_rows([flag("missing_cdr", cdr_id="C")], [truth("missing_cdr", cdr_id="C")])
    assert report.failing(["missing_cdr", "orphan_cdr"]) == []
