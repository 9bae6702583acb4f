"""The shared check framework: severity by site type, tolerances bound, stable flag ids."""

import json

import pytest

from checks import collect_rules
from pipeline.flags import FlagRule, build_flags
from pipeline.warehouse import connect

RULE = FlagRule(check="energy_mismatch", sql="tests/fixtures/sql/finding_energy_over_10.sql")
OPTIONS = {"checks": {"energy_mismatch": {"limit_kwh": 10, "severity": {"fleet": "error", "default": "warn"}}}}


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        c.execute("create table t as select * from (values ('a', 'S1', 'fleet', 12.5), ('b', 'S2', 'public', 11.0), ('c', 'S2', 'public', 9.0)) v(session_key, site_id, site_type, energy_kwh)")
        yield c


def test_findings_get_severity_by_site_type_and_bound_tolerance(conn):
    assert build_flags(conn, OPTIONS, [RULE]) == {"energy_mismatch": 2}
    rows = dict(conn.execute('select session_key, severity from recon.flags').fetchall())
    assert rows == {"a": "error", "b": "warn"}
    money = dict(conn.execute('select session_key, money_at_risk::double from recon.flags').fetchall())
    assert money == {"a": 2.5, "b": 1.0}


def test_rebuild_is_idempotent_and_ids_stable(conn):
    build_flags(conn, OPTIONS, [RULE])
    first = conn.execute("select flag_id from recon.flags order by 1").fetchall()
    build_flags(conn, OPTIONS, [RULE])
    assert conn.execute("select flag_id from recon.flags order by 1").fetchall() == first


def test_tighter_tolerance_finds_more(conn):
    options = {"checks": {"energy_mismatch": {"limit_kwh": 5}}}
    assert build_flags(conn, options, [RULE]) == {"energy_mismatch": 3}


def test_unknown_severity_is_refused(conn):
    with pytest.raises(ValueError):
        build_flags(conn, {"checks": {"energy_mismatch": {"limit_kwh": 5, "severity": {"default": "fatal"}}}}, [RULE])


def test_rules_have_unique_contract_names():
    contract = {
        "timestamp_drift", "charger_clock_skew", "stale_tariff", "tariff_changed_during_session",
        "cost_mismatch", "energy_mismatch", "energy_attribution_mismatch", "missing_cdr", "orphan_cdr",
        "missing_backend_session", "duplicate_cdr", "meter_anomaly", "incomplete_session",
        "token_invalid", "status_mismatch", "capability_mismatch", "auth_latency",
    }
    assert {r.check for r in collect_rules()} <= contract


DERIVED = FlagRule(check="energy_attribution_mismatch", sql="tests/fixtures/sql/finding_site_interval_with_sessions.sql",
                   caused_by=("energy_mismatch",))
ROOT_OPTIONS = {"checks": {
    "energy_mismatch": {"limit_kwh": 12},
    "energy_attribution_mismatch": {"severity": {"default": "error"}},
}}


def test_a_finding_that_follows_from_a_session_finding_is_info_with_its_cause(conn):
    # Session "a" (S1) is a root finding; S1's interval names "a", S2's names only b and c.
    build_flags(conn, ROOT_OPTIONS, [RULE, DERIVED])
    rows = conn.execute(
        """select site_id, severity, evidence from recon.flags where "check" = 'energy_attribution_mismatch'
           order by site_id""").fetchall()
    (s1, sev1, ev1), (s2, sev2, ev2) = rows
    root_id = conn.execute("""select flag_id from recon.flags where "check" = 'energy_mismatch'""").fetchone()[0]
    cause = json.loads(ev1)["caused_by"]
    assert (s1, sev1) == ("S1", "info")
    assert cause == {"flag_id": root_id, "check": "energy_mismatch", "session_key": "a", "severity_before": "error"}
    assert (s2, sev2) == ("S2", "error") and "caused_by" not in json.loads(ev2)


def test_without_a_declared_cause_nothing_is_demoted(conn):
    undeclared = FlagRule(check="energy_attribution_mismatch",
                          sql="tests/fixtures/sql/finding_site_interval_with_sessions.sql")
    build_flags(conn, ROOT_OPTIONS, [RULE, undeclared])
    sev = conn.execute("""select list(severity) from recon.flags where "check" = 'energy_attribution_mismatch'""").fetchone()[0]
    assert sev == ["error", "error"]
