"""stale_tariff, tariff_changed_during_session and cost_mismatch on a hand-made warehouse."""

import json

import pytest

from checks import collect_rules
from pipeline.flags import build_flags
from pipeline.tariffs.session_prices import build_session_prices
from pipeline.warehouse import connect
from tests.fixtures.tariff_world import World, at

CHECKS = ("stale_tariff", "tariff_changed_during_session", "cost_mismatch")
OPTIONS = {"checks": {
    "cost_mismatch": {"tolerance": 0.01, "severity": {"public": "error", "default": "warn"}},
    "stale_tariff": {"severity": {"public": "error", "default": "warn"}},
    "tariff_changed_during_session": {"severity": {"public": "warn", "default": "info"}},
}}


def _flags(tmp_path, world: World) -> dict[tuple[str, str], dict]:
    with connect(tmp_path / "w.duckdb") as conn:
        world.write(conn)
        build_session_prices(conn)
        build_flags(conn, OPTIONS, [r for r in collect_rules() if r.check in CHECKS])
        rows = conn.execute(
            'select "check", session_key, severity, money_at_risk::double, evidence::varchar from recon.flags'
        ).fetchall()
    return {(c, k): {"severity": s, "money": m, "evidence": json.loads(e)} for c, k, s, m, e in rows}


def test_consistent_cdrs_raise_nothing(tmp_path):
    w = World()
    w.session("S1", 9)
    w.session("S2", 14, cdr_total=5.0)
    w.session("S3", 9, cdr_total=4.004)    # within a cent
    w.session("S4", 9, cdr_total=None)     # no CDR: nothing to compare here
    assert _flags(tmp_path, w) == {}


def test_stale_version_is_stale_tariff_only(tmp_path):
    w = World()
    w.session("S1", 13)                   # consistent with version A, but B applies
    w.session("S2", 13, embed="A")        # the CDR says so itself
    found = _flags(tmp_path, w)
    assert set(found) == {("stale_tariff", "S1"), ("stale_tariff", "S2")}
    assert found[("stale_tariff", "S1")]["money"] == pytest.approx(1.0)
    assert found[("stale_tariff", "S1")]["severity"] == "error"


def test_wrong_total_is_cost_mismatch_with_the_difference(tmp_path):
    w = World()
    w.session("S1", 9, cdr_total=4.37)
    found = _flags(tmp_path, w)
    assert set(found) == {("cost_mismatch", "S1")}
    assert found[("cost_mismatch", "S1")]["money"] == pytest.approx(0.37)
    assert found[("cost_mismatch", "S1")]["evidence"]["recomputed_excl_vat"] == pytest.approx(4.0)


def test_stale_embedded_version_with_a_wrong_total_is_both(tmp_path):
    w = World()
    w.session("S1", 13, embed="A", cdr_total=4.8)
    assert set(_flags(tmp_path, w)) == {("stale_tariff", "S1"), ("cost_mismatch", "S1")}


def test_version_change_mid_session_is_reported_with_the_price_gap(tmp_path):
    w = World()
    w.session("S1", 11.5)
    found = _flags(tmp_path, w)
    assert set(found) == {("tariff_changed_during_session", "S1")}
    flag = found[("tariff_changed_during_session", "S1")]
    assert flag["money"] == pytest.approx(1.0) and flag["severity"] == "warn"
    assert flag["evidence"]["new_version"] == "NL:CLN:T1@2026-11-15T00:00:00Z"


def test_orphan_cdr_across_a_change_is_left_to_orphan_cdr(tmp_path):
    w = World()
    w.session("S1", 11.5)
    w.sessions[-1] = (*w.sessions[-1][:6], None, None, *w.sessions[-1][8:])  # no OCPP, no backend
    assert _flags(tmp_path, w) == {}


def test_republished_tariff_with_the_same_prices_is_not_stale(tmp_path):
    w = World()
    w.republish("A", at(-48))              # new last_updated, same content, in force before the session
    w.session("S1", 9, embed="A")          # the CDR embeds the first publication
    w.session("S2", 9)                     # price_match
    assert _flags(tmp_path, w) == {}


def test_republished_tariff_with_a_changed_price_is_stale(tmp_path):
    w = World()
    new = w.republish("A", at(-48), energy=0.35)   # 10 kWh: 4.50 instead of 4.00
    w.session("S1", 9, embed="A")
    found = _flags(tmp_path, w)
    assert set(found) == {("stale_tariff", "S1")}
    assert found[("stale_tariff", "S1")]["evidence"]["tariff_version_in_force"] == new
    assert found[("stale_tariff", "S1")]["money"] == pytest.approx(0.5)


def test_republication_mid_session_without_a_price_change_is_not_a_tariff_change(tmp_path):
    w = World()
    w.republish("A", at(8.5))
    w.session("S1", 8)
    assert _flags(tmp_path, w) == {}


def test_price_change_after_a_plain_republication_in_one_session_is_reported(tmp_path):
    w = World()
    w.republish("A", at(8.5))                               # same prices: passed over
    changed = w.republish("A", at(9.0), energy=0.35)        # the change that matters
    w.session("S1", 8, hours=2.0)
    found = _flags(tmp_path, w)
    assert set(found) == {("tariff_changed_during_session", "S1")}
    assert found[("tariff_changed_during_session", "S1")]["evidence"]["new_version"] == changed
    assert found[("tariff_changed_during_session", "S1")]["money"] == pytest.approx(0.5)
