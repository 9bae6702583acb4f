"""auth_latency findings and marts.auth_latency on a hand-made warehouse."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from assets.auth_marts import build_auth_latency
from pipeline.config import load_options
from pipeline.flags import build_flags, collect_rules
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
    req = T0 + timedelta(hours=n)
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
