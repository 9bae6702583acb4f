"""token_invalid on a hand-made warehouse: token list versions, Authorize, local starts."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from checks import collect_rules
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.privacy import token_hash
from pipeline.warehouse import connect

RULES = [r for r in collect_rules() if r.check == "token_invalid"]
T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)
GOOD, REVOKED, LATE_REVOKED, STRANGER = "04A1B2C3D4E5F6", "04DEADBEEF0001", "04CAFE00000002", "04FFFF00000003"


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        c.execute("""create table lineage.sessions (session_key varchar, site_id varchar, site_type varchar,
            charge_point_id varchar, evse_uid varchar, ocpp_transaction_id varchar, backend_session_id varchar,
            cdr_id varchar, currency varchar, cdr_total_cost_excl_vat double, ocpp_started_at timestamptz,
            backend_started_at timestamptz, cdr_started_at timestamptz)""")
        c.execute("""create table lineage.transactions (charge_point_id varchar, connector_id integer,
            ocpp_version varchar, transaction_id varchar, id_tag_hash varchar, start_received_at timestamptz)""")
        c.execute("create table staging.cdrs (cdr_id varchar, token_uid_hash varchar)")
        c.execute("""create table staging.tokens (country_code varchar, party_id varchar, token_uid_hash varchar,
            type varchar, valid boolean, whitelist varchar, last_updated_at timestamptz)""")
        c.execute("""create table staging.ocpp_authorizations (charge_point_id varchar, id_tag_hash varchar,
            requested_at timestamptz, answered_at timestamptz, status varchar, latency_ms bigint)""")
        c.execute("""create table staging.ocpp_transaction_events (charge_point_id varchar, transaction_id varchar,
            msg_id varchar, event_type varchar, received_at timestamptz)""")
        c.execute("create table staging.ocpp_calls (charge_point_id varchar, msg_id varchar, answer json)")
        yield c


def token(c, uid, valid, days_before_t0, whitelist="ALLOWED"):
    c.execute("insert into staging.tokens values ('NL', 'EMS', $h, 'RFID', $v, $w, $t)",
              {"h": token_hash(uid), "v": valid, "w": whitelist, "t": T0 - timedelta(days=days_before_t0)})


def session(c, n, uid, authorize=None, start_answer="Accepted", cost=12.5):
    start = T0 + timedelta(hours=n)
    tx = f"T{n}"
    c.execute("""insert into lineage.sessions values ($k, 'S1', 'fleet', 'CP1', 'E1', $tx, $b, $cdr, 'EUR', $cost,
                 $s, $s, $s)""", {"k": f"K{n}", "tx": tx, "b": f"B{n}", "cdr": f"C{n}", "cost": cost, "s": start})
    c.execute("insert into lineage.transactions values ('CP1', 1, '1.6', $tx, $uid, $s)",
              {"tx": tx, "uid": token_hash(uid.lower() + " "), "s": start})  # idTag case and spaces differ
    c.execute("insert into staging.ocpp_transaction_events values ('CP1', $tx, $m, 'started', $s)",
              {"tx": tx, "m": f"M{n}", "s": start})
    c.execute("insert into staging.ocpp_calls values ('CP1', $m, $a)",
              {"m": f"M{n}", "a": json.dumps({"idTagInfo": {"status": start_answer}, "transactionId": n})})
    if authorize:
        c.execute("insert into staging.ocpp_authorizations values ('CP1', $uid, $r, $r, $st, 300)",
                  {"uid": token_hash(uid), "r": start - timedelta(seconds=40), "st": authorize})


def run(c):
    build_flags(c, load_options(), RULES)
    rows = c.execute("select session_key, severity, money_at_risk::double, evidence::varchar, explanation "
                     "from recon.flags order by session_key").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_valid_tokens_raise_nothing(conn):
    token(conn, GOOD, True, 30)
    session(conn, 1, GOOD, authorize="Accepted")
    session(conn, 2, GOOD)  # from the local list: fine while the token is valid and whitelisted
    # revoked only after this session started: it was valid at start
    token(conn, LATE_REVOKED, True, 30)
    conn.execute("insert into staging.tokens values ('NL', 'EMS', $h, 'RFID', false, 'NEVER', $t)",
                 {"h": token_hash(LATE_REVOKED), "t": T0 + timedelta(hours=5)})
    session(conn, 3, LATE_REVOKED)
    assert run(conn) == {}


def test_unknown_and_revoked_tokens_are_flagged(conn):
    token(conn, GOOD, True, 30)
    token(conn, REVOKED, True, 60)
    token(conn, REVOKED, False, 2, whitelist="NEVER")  # revoked two days before the session
    session(conn, 1, GOOD, authorize="Accepted")
    session(conn, 2, STRANGER, start_answer="Invalid")
    session(conn, 3, REVOKED, start_answer="Blocked", cost=30.0)  # let in from the charger's cache
    flags = run(conn)
    assert set(flags) == {"K2", "K3"}
    sev, money, evidence, explanation = flags["K3"]
    ev = json.loads(evidence)
    assert sev == "error" and money == 30.0
    assert ev["reason"] == "invalid" and ev["csms_start_answer"] == "Blocked"
    assert ev["authorized_by"].startswith("local") and "local list or cache" in explanation
    assert ev["token_hash"] == token_hash(REVOKED)
    assert json.loads(flags["K2"][2])["reason"] == "unknown"
    # analysts see hashes, never the card number
    assert not any(uid in json.dumps(flags) for uid in (REVOKED, STRANGER, REVOKED.lower()))


def test_never_whitelisted_token_started_without_authorize(conn):
    token(conn, GOOD, True, 30, whitelist="NEVER")
    session(conn, 1, GOOD, authorize="Accepted")
    session(conn, 2, GOOD)
    assert set(run(conn)) == {"K2"}


def test_no_token_list_no_findings(conn):
    conn.execute("drop table staging.tokens")
    session(conn, 1, STRANGER)
    assert run(conn) == {}
