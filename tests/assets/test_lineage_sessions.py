"""lineage.links and lineage.sessions on tiny hand-made upstream tables.

Each test states what the sources recorded (tests/fixtures/lineage_seed.py) and what
lineage must make of it: which records form one session, by which rule.
"""

from datetime import timedelta

import dagster as dg
import duckdb
import pytest

from pipeline.lineage.build import LinkOptions, build_links, build_sessions
from pipeline.lineage.keys import session_key
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.warehouse import configure
from tests.fixtures.lineage_seed import Net, at


def build(net: Net, order: int = 1, **opts) -> duckdb.DuckDBPyConnection:
    conn = configure(duckdb.connect())
    net.write(conn, order=order)
    build_links(conn, LinkOptions(**opts))
    build_sessions(conn)
    return conn


def sessions(conn, *cols: str) -> list[tuple]:
    return conn.execute(f"select {', '.join(cols)} from lineage.sessions order by all").fetchall()


def test_exact_ids_link_every_source_with_full_confidence():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.session("CP-2", 1, "201", 10, 40, 8.0, "TAG2", backend_drift_s=600)
    conn = build(net)
    assert sessions(conn, "ocpp_transaction_id", "backend_session_id", "cdr_id", "backend_link_rule",
                    "backend_link_confidence", "cdr_link_rule", "cdr_link_confidence") == [
        ("101", "B-101", "CDR-101", "exact_transaction_id", 1.0, "exact_cdr_id", 1.0),
        ("201", "B-201", "CDR-201", "exact_transaction_id", 1.0, "exact_cdr_id", 1.0),
    ]
    row = conn.execute("""select session_key, site_id, site_type, evse_uid, ocpp_energy_kwh, backend_energy_kwh,
        cdr_energy_kwh, currency, cdr_total_cost_excl_vat, cdr_tariff_id, tariff_in_force_valid_from_at
        from lineage.sessions where backend_session_id = 'B-101'""").fetchall()[0]
    assert row[0] == session_key("ocpp:CP-1:101")
    assert row[1:10] == ("SITE-1", "public", "CP-1-1", 11.0, 11.0, 11.0, "EUR", 3.3, "T-AC")
    assert row[10] == at(0) - timedelta(days=30)


def test_fuzzy_path_links_without_ids_despite_skew_and_drift():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1", blank_ids=True, skew_s=300, backend_drift_s=120)
    net.session("CP-1", 2, "102", 5, 50, 9.0, "TAG2", blank_ids=True, backend_drift_s=-200)
    conn = build(net)
    got = sessions(conn, "ocpp_transaction_id", "backend_session_id", "cdr_id", "backend_link_rule", "cdr_link_rule")
    assert got == [("101", "B-101", "CDR-101", "evse_time_token", "evse_time_token"),
                   ("102", "B-102", "CDR-102", "evse_time_token", "evse_time_token")]
    conf = conn.execute("select max(backend_link_confidence), max(cdr_link_confidence) from lineage.sessions").fetchall()[0]
    assert all(0 < c < 1 for c in conf)


def test_fuzzy_link_needs_the_window():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1", blank_ids=True, backend_drift_s=1200)
    conn = build(net, window_s=900)
    assert conn.execute("select count(*) from lineage.sessions").fetchall()[0][0] == 2  # OCPP+CDR, backend
    conn = build(net, window_s=1800)
    assert conn.execute("select count(*) from lineage.sessions").fetchall()[0][0] == 1


def test_back_to_back_sessions_on_one_connector_are_not_swapped():
    net = Net()
    # Short sessions, one minute apart; backend clock 4 min late, charger clock 3 min fast.
    for i, (tx, tag, kwh) in enumerate([("11", "TA", 3.0), ("12", "TB", 3.0), ("13", None, 3.0)]):
        start = i * 11
        net.session("CP-1", 1, tx, start, start + 10, kwh, tag, blank_ids=True, skew_s=-180, backend_drift_s=240)
    conn = build(net)
    assert sessions(conn, "ocpp_transaction_id", "backend_session_id", "cdr_id") == [
        ("11", "B-11", "CDR-11"), ("12", "B-12", "CDR-12"), ("13", "B-13", "CDR-13")]


def test_one_to_one_no_record_used_twice():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.session("CP-1", 1, "102", 61, 90, 5.0, "TAG1", blank_ids=True)
    # A second backend row claiming transaction 101 and CDR-101 (a re-keyed export).
    net.backend.append(("B-101-bis", "CP-1", 1, "101", None, at(0), at(60), 11.0, "S-101", "CDR-101",
                        "COMPLETED", 3.3, "EUR", "backend/c.csv", 1))
    conn = build(net)
    reused = conn.execute("""select left_kind, right_kind, count(*) from lineage.links
        where rule not in ('duplicate_of', 'credit_of')
        group by left_kind, right_kind
        having count(*) > count(distinct left_id) or count(*) > count(distinct right_id)""").fetchall()
    assert reused == []
    for col in ("ocpp_transaction_ref", "backend_session_id", "cdr_id"):
        dupes = conn.execute(f"select count({col}) - count(distinct {col}) from lineage.sessions").fetchall()[0][0]
        assert dupes == 0, col
    # The re-keyed row stands alone instead of stealing the slot.
    assert sessions(conn, "backend_session_id", "has_ocpp", "has_cdr")[1] == ("B-101-bis", False, False)


def test_orphans_on_every_side_stay_visible():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1", backend=False, cdr=False)
    net.session("CP-1", 2, "102", 0, 60, 11.0, "TAG2", ocpp=False, cdr=False)
    net.session("CP-2", 1, "201", 0, 60, 11.0, "TAG3", ocpp=False, backend=False)
    net.add_cdr("CDR-X", at(0), at(30), 4.0, None, "TAG4", "UNKNOWN-EVSE")
    conn = build(net)
    assert sessions(conn, "anchor_kind", "has_ocpp", "has_backend", "has_cdr", "coalesce(site_id, '-')") == [
        ("backend", False, True, False, "SITE-1"),
        ("cdr", False, False, True, "-"),
        ("cdr", False, False, True, "SITE-2"),
        ("ocpp", True, False, False, "SITE-1"),
    ]


def test_credit_cdr_pairs_with_its_original_and_takes_no_slot():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.add_cdr("CDR-101-C", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", credit=True,
                credit_reference_id="CDR-101")
    net.add_cdr("CDR-101-R", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", cost=2.0)
    net.add_cdr("CDR-Z-C", at(0), at(60), 1.0, None, None, "CP-1-2", credit=True, credit_reference_id="CDR-ZZZ")
    conn = build(net)
    assert conn.execute("select left_id, right_id from lineage.links where rule = 'credit_of' order by all"
                        ).fetchall() == [("NL:CLN:CDR-101-C", "NL:CLN:CDR-101")]
    assert sessions(conn, "ocpp_transaction_id", "cdr_id", "cdr_ids", "n_live_cdrs", "credit_cdr_ids",
                    "cdr_total_cost_excl_vat") == [
        ("101", "CDR-101-R", ["CDR-101-R", "CDR-101"], 1, ["CDR-101-C"], 2.0),
        (None, "CDR-Z-C", ["CDR-Z-C"], 0, [], -0.3),  # a credit whose original is unknown
    ]


def test_credited_cdr_without_replacement_stays_the_session_cdr():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.add_cdr("CDR-101-C", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", credit=True,
                credit_reference_id="CDR-101")
    conn = build(net)
    assert sessions(conn, "cdr_id", "n_cdrs", "n_live_cdrs", "credit_cdr_ids", "cdr_is_credited") == [
        ("CDR-101", 1, 0, ["CDR-101-C"], True)]


@pytest.mark.parametrize("ocpi", ["S-101", None])
def test_duplicate_cdr_is_attached_to_the_same_session(ocpi):
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.session("CP-1", 1, "102", 62, 90, 5.0, "TAG1")
    net.add_cdr("CDR-101-DUP", at(0) + timedelta(seconds=30), at(60), 11.0, ocpi, "TAG1", "CP-1-1")
    conn = build(net)
    assert sessions(conn, "cdr_id", "cdr_ids", "n_cdrs", "n_live_cdrs") == [
        ("CDR-101", ["CDR-101", "CDR-101-DUP"], 2, 2),
        ("CDR-102", ["CDR-102"], 1, 1),
    ]
    assert conn.execute("select count(*) from lineage.links where rule = 'duplicate_of'").fetchall()[0][0] == 1


def test_a_distinct_cdr_nearby_is_not_taken_for_a_duplicate():
    net = Net()
    net.session("CP-1", 1, "101", 0, 10, 3.0, "TAG1")
    net.add_cdr("CDR-OTHER", at(12), at(40), 9.0, "S-OTHER", "TAG9", "CP-1-1")
    conn = build(net)
    assert sessions(conn, "cdr_id", "n_cdrs") == [("CDR-101", 1), ("CDR-OTHER", 1)]


def test_tariff_in_force_follows_the_session_start():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0)
    net.session("CP-1", 1, "102", 13 * 60, 14 * 60, 11.0)
    conn = build(net)
    got = sessions(conn, "cdr_id", "tariff_version_in_force")
    assert got[0][1].startswith("NL:CLN:T-AC@2026-10-21")
    assert got[1] == ("CDR-102", "NL:CLN:T-AC@2026-11-20T20:00:00Z")


def test_session_keys_are_stable_across_rebuilds_and_row_order():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.session("CP-1", 1, "102", 61, 90, 5.0, "TAG2", blank_ids=True)
    net.session("CP-1", 2, "103", 0, 60, 11.0, "TAG3", ocpp=False)
    net.session("CP-2", 1, "201", 0, 60, 11.0, "TAG4", ocpp=False, backend=False)
    cols = ("session_key", "ocpp_transaction_id", "backend_session_id", "cdr_id", "backend_link_rule", "cdr_link_rule")
    first = sessions(build(net), *cols)
    again = sessions(build(net, order=-1), *cols)
    assert first == again
    assert {r[0] for r in first} == {
        session_key("ocpp:CP-1:101"), session_key("ocpp:CP-1:102"),
        session_key("backend:B-103"), session_key("cdr:NL:CLN:CDR-201"),
    }


def test_assets_materialize_in_dagster(tmp_path, landing):
    db = tmp_path / "w.duckdb"
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.session("CP-2", 1, "201", 0, 60, 11.0, "TAG2", ocpp=False)
    with duckdb.connect(str(db)) as conn:
        net.write(configure(conn))
    from assets.lineage_sessions import lineage_links, lineage_sessions

    result = dg.materialize(
        [lineage_links, lineage_sessions],
        resources={"duckdb": WarehouseResource(database=str(db)), "landing": LandingResource(path=str(landing))},
    )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert mats["lineage_sessions"].materialization.metadata["dagster/row_count"].value == 2
