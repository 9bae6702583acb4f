"""Scoring, one-to-one assignment and session keys of pipeline.lineage (no warehouse)."""

import duckdb
import polars as pl
import pytest

from pipeline.lineage.keys import anchor, cdr_ref, ocpp_ref, session_key
from pipeline.lineage.matching import CANDIDATE_SCHEMA, assign_one_to_one, score_candidates


def cands(*rows: tuple) -> pl.DataFrame:
    """Rows of (left, right, exact_rule, start_diff, stop_diff, e_left, e_right, token, prefer)."""
    return pl.DataFrame(list(rows), schema=CANDIDATE_SCHEMA, orient="row")


def test_exact_rule_scores_one_and_keeps_its_name():
    out = score_candidates(cands(("o1", "b1", "exact_transaction_id", 600.0, None, 1.0, 9.0, False, 0)), 900)
    assert out["rule"].to_list() == ["exact_transaction_id"]
    assert out["confidence"].to_list() == [1.0]


@pytest.mark.parametrize(
    ("token", "rule"), [(True, "evse_time_token"), (False, "evse_time"), (None, "evse_time")]
)
def test_fuzzy_rule_names_the_token_evidence(token, rule):
    out = score_candidates(cands(("o1", "b1", None, 0.0, 0.0, 5.0, 5.0, token, 0)), 900)
    assert out["rule"].item() == rule
    assert out["confidence"].item() < 1.0


def test_closer_in_time_energy_and_token_scores_higher():
    out = score_candidates(cands(
        ("o", "near", None, 30.0, 30.0, 10.0, 10.0, True, 0),
        ("o", "far", None, 600.0, 600.0, 10.0, 10.0, True, 0),
        ("o", "other_energy", None, 30.0, 30.0, 10.0, 2.0, True, 0),
        ("o", "other_token", None, 30.0, 30.0, 10.0, 10.0, False, 0),
    ), 900)
    conf = dict(zip(out["right_id"], out["confidence"], strict=True))
    assert conf["near"] > conf["far"]
    assert conf["near"] > conf["other_energy"]
    assert conf["near"] > conf["other_token"]


def test_window_must_be_positive():
    with pytest.raises(ValueError):
        score_candidates(cands(), 0)


def test_assignment_uses_no_record_twice_and_prefers_the_best_pairs():
    scored = score_candidates(cands(
        ("a", "x", None, 10.0, 10.0, 5.0, 5.0, None, 0),
        ("a", "y", None, 400.0, 400.0, 5.0, 5.0, None, 0),
        ("b", "x", None, 300.0, 300.0, 5.0, 5.0, None, 0),
        ("b", "y", None, 20.0, 20.0, 5.0, 5.0, None, 0),
    ), 900)
    out = assign_one_to_one(scored)
    assert sorted(zip(out["left_id"], out["right_id"], strict=True)) == [("a", "x"), ("b", "y")]


def test_identifier_link_beats_a_better_scoring_fuzzy_neighbour():
    scored = score_candidates(cands(
        ("a", "x", None, 0.0, 0.0, 5.0, 5.0, True, 0),          # perfect fuzzy
        ("b", "x", "exact_transaction_id", 800.0, 800.0, 1.0, 9.0, False, 0),
    ), 900)
    out = assign_one_to_one(scored)
    assert list(zip(out["left_id"], out["right_id"], strict=True)) == [("b", "x")]


def test_prefer_lets_the_live_record_take_the_slot():
    scored = score_candidates(cands(
        ("s", "credited", "exact_cdr_id", 0.0, 0.0, 5.0, 5.0, True, 1),
        ("s", "live", "exact_ocpi_session_id", 0.0, 0.0, 5.0, 5.0, True, 0),
    ), 900)
    assert assign_one_to_one(scored)["right_id"].to_list() == ["live"]


def test_assignment_ignores_row_order_and_min_confidence_drops_weak_pairs():
    rows = [
        ("a", "x", None, 100.0, 100.0, 5.0, 5.0, None, 0),
        ("a", "y", None, 100.0, 100.0, 5.0, 5.0, None, 0),   # tie: ids decide
        ("b", "y", None, 890.0, 890.0, 1.0, 50.0, False, 0),  # weak
    ]
    first = assign_one_to_one(score_candidates(cands(*rows), 900), min_confidence=0.2)
    second = assign_one_to_one(score_candidates(cands(*reversed(rows)), 900), min_confidence=0.2)
    assert first.select("left_id", "right_id").rows() == second.select("left_id", "right_id").rows()
    assert first.select("left_id", "right_id").rows() == [("a", "x")]


def test_empty_candidates_assign_nothing():
    assert assign_one_to_one(score_candidates(cands(), 900)).is_empty()


def test_session_key_is_deterministic_and_matches_duckdb():
    ident = anchor("ocpp", ocpp_ref("CP-0001", "4711"))
    assert ident == "ocpp:CP-0001:4711"
    assert session_key(ident) == session_key("ocpp:CP-0001:4711")
    assert session_key(ident) != session_key(anchor("backend", "4711"))
    sql = duckdb.connect().execute("select substr(sha256(?), 1, 20)", [ident]).fetchall()[0][0]
    assert session_key(ident) == sql
    assert cdr_ref("NL", "CLN", "C1") == "NL:CLN:C1"
    with pytest.raises(ValueError):
        anchor("ems", "x")
