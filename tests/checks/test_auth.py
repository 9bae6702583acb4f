"""auth_latency findings and marts.auth_latency on a hand-made warehouse."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from assets.auth_marts import build_auth_latency
from checks import collect_rules
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect

RULES = [r for r in collect_rules() if r.check == "auth_latency"]
T0 = datetime(2026, 11, 20, 7, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        c.execute("create table staging.sites as select * from (values ('DEPOT', 'fleet'), ('PLAZA', 'public')) v(site_id, site_type)")
        c.execute("""create table staging.evses as select * from (values
            ('CP-F', 1, 'DEPOT'), ('CP-F', 2, 'DEPOT'), ('CP-S', 1, 'DEPOT'), ('CP-P', 1, 'PLAZA'))
            v(charge_point_id, connector_id, site_id)""")
        c.execute("""create table staging.ocpp_authorizations (charge_point_id varchar, id_tag_hash varchar,
            requested_at timestamptz, answered_at timestamptz, status varchar, latency_ms bigint)""")
        c.execute("""create table lineage.transactions (charge_point_id varchar, transaction_id varchar,
            id_tag_hash varchar, start_received_at timestamptz)""")
        c.execute("""create table lineage.sessions (session_key varchar, charge_point_id varchar,
            ocpp_transaction_id varchar)""")
        yield c


def authorize(c, cp, n, latency_ms, start=True):
    req = T0 + timedelta(minutes=10 * n)
    answered = None if latency_ms is None else req + timedelta(milliseconds=latency_ms)
    c.execute("insert into staging.ocpp_authorizations values ($cp, $tag, $r, $a, 'Accepted', $l)",
              {"cp": cp, "tag": f"TAG{n}", "r": req, "a": answered, "l": latency_ms})
    if start:
        tx = f"{cp}-{n}"
        c.execute("insert into lineage.transactions values ($cp, $tx, $tag, $s)",
                  {"cp": cp, "tx": tx, "tag": f"TAG{n}", "s": (answered or req) + timedelta(seconds=3)})
        c.execute("insert into lineage.sessions values ($k, $cp, $tx)", {"k": f"K-{tx}", "cp": cp, "tx": tx})


def run(c):
    options = load_options()
    build_auth_latency(c, options)
    build_flags(c, options, RULES)
    return {r[0]: r[1:] for r in c.execute(
        "select charge_point_id, severity, evidence::varchar, explanation from recon.flags").fetchall()}


def test_fast_chargers_raise_nothing(conn):
    for n, ms in enumerate([300, 450, 250, 600, 1900]):
        authorize(conn, "CP-F", n, ms)
    authorize(conn, "CP-P", 1, 5000)  # one slow answer on a quiet charger is not a pattern
    assert run(conn) == {}


def test_slow_charger_is_flagged_with_the_sessions_that_waited(conn):
    for n, ms in enumerate([300, 450, 250, 600]):
        authorize(conn, "CP-F", n, ms)
    authorize(conn, "CP-S", 1, 9000)
    authorize(conn, "CP-S", 2, 12000)
    authorize(conn, "CP-S", 3, None, start=False)  # never answered
    flags = run(conn)
    assert set(flags) == {"CP-S"}
    severity, evidence, explanation = flags["CP-S"]
    ev = json.loads(evidence)
    assert severity == "error"  # fleet depot
    assert ev["slow_calls"] == 3 and ev["unanswered"] == 1 and ev["p95_ms"] > 2000
    assert ev["p_value"] < ev["alpha"] and ev["slow_share"] == 1.0
    assert ev["sessions_whose_start_waited"] == 2
    assert [s["session_key"] for s in ev["sessions_waited_sample"]] == ["K-CP-S-1", "K-CP-S-2"]
    assert "CP-S" in explanation


def test_mart_has_percentiles_per_charger_and_site(conn):
    for n, ms in enumerate(range(100, 1100, 100)):
        authorize(conn, "CP-F", n, ms, start=False)
    authorize(conn, "CP-P", 1, 5000, start=False)
    run(conn)
    rows = {(r[0], r[1], r[2]): r[3:] for r in conn.execute(
        """select level, site_id, charge_point_id, n_authorize, p50_ms, p95_ms, p99_ms, n_slow
           from marts.auth_latency""").fetchall()}
    assert rows[("charger", "DEPOT", "CP-F")] == (10, 550.0, pytest.approx(955.0), pytest.approx(991.0), 0)
    assert rows[("site", "DEPOT", None)][0] == 10
    assert rows[("charger", "PLAZA", "CP-P")][-1] == 1


def fast(c, cp, first, count):
    for n in range(first, first + count):
        authorize(c, cp, n, 300 + 37 * (n % 11), start=False)


def test_two_tail_answers_among_many_fast_ones_are_no_finding(conn):
    # a normal charger drawing two remote-token-check tail answers among twenty fast ones
    fast(conn, "CP-F", 0, 18)
    authorize(conn, "CP-F", 18, 6500)
    authorize(conn, "CP-F", 19, 9000)
    fast(conn, "CP-P", 20, 30)
    assert run(conn) == {}


def test_charger_with_median_5_s_over_6_calls_is_found(conn):
    fast(conn, "CP-F", 0, 20)
    fast(conn, "CP-P", 20, 30)
    for n, ms in enumerate([4200, 4800, 5000, 5100, 5600, 6300], start=60):
        authorize(conn, "CP-S", n, ms)
    flags = run(conn)
    assert set(flags) == {"CP-S"}
    ev = json.loads(flags["CP-S"][1])
    assert ev["authorize_calls"] == 6 and ev["slow_calls"] == 6 and ev["p50_ms"] == 5050
    assert ev["base_scope"] == "network" and ev["base_rate"] == 0.02  # no late call elsewhere: the floor
    assert ev["sessions_whose_start_waited"] == 6


def test_a_slow_charger_is_judged_against_its_network_base_rate(conn):
    # the same 6-call charger with 3 late: significant against a quiet backend, not against one
    # whose healthy chargers answer about one call in eight late
    for n, ms in enumerate([4200, 300, 5000, 400, 5600, 350], start=60):
        authorize(conn, "CP-S", n, ms, start=False)
    fast(conn, "CP-F", 0, 20)
    assert set(run(conn)) == {"CP-S"}
    conn.execute("delete from recon.flags")
    for n in range(100, 110):
        authorize(conn, "CP-P", n, 3000 if n % 5 == 0 else 300, start=False)
    conn.execute("update staging.ocpp_authorizations set latency_ms = 2500 where charge_point_id = 'CP-F' and latency_ms < 320")
    assert run(conn) == {}


def test_few_calls_get_no_verdict(conn):
    fast(conn, "CP-F", 0, 20)
    authorize(conn, "CP-S", 30, 12000)
    authorize(conn, "CP-S", 31, None, start=False)
    assert run(conn) == {}


def test_unanswered_calls_are_shown_in_evidence(conn):
    fast(conn, "CP-F", 0, 20)
    for n in range(30, 34):
        authorize(conn, "CP-S", n, None, start=False)  # the backend never answered this charger
    authorize(conn, "CP-S", 34, 400)
    flags = run(conn)
    assert set(flags) == {"CP-S"}
    ev = json.loads(flags["CP-S"][1])
    assert ev["unanswered"] == 4 and ev["answered"] == 1 and ev["slow_answered"] == 0 and ev["slow_calls"] == 4
    assert "4 unanswered" in flags["CP-S"][2]
    mart = conn.execute("""select n_unanswered, n_slow from marts.auth_latency
                           where level = 'charger' and charge_point_id = 'CP-S'""").fetchone()
    assert mart == (4, 4)
