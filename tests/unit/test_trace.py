"""``chargeline trace``: every kind of KEY finds its session, and missing tables are skipped."""

import duckdb
import pytest

from pipeline.cli import main
from pipeline.lineage.build import build_links, build_sessions
from pipeline.lineage.keys import session_key
from pipeline.trace import build_trace
from pipeline.warehouse import configure, connect
from tests.fixtures.lineage_seed import Net, at


def seeded(conn: duckdb.DuckDBPyConnection, with_flags: bool = True) -> None:
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.session("CP-1", 2, "102", 5, 30, 4.0, "TAG2", ocpp=False)
    net.ems += [("SITE-1", None, at(m), at(m + 15), 3.0, 22.0) for m in range(0, 75, 15)]
    net.ems.append(("SITE-1", None, at(300), at(315), 0.0, 22.0))  # not during the session
    net.write(conn)
    build_links(conn)
    build_sessions(conn)
    if with_flags:
        conn.execute("""create or replace table recon.flags as select
            ? as session_key, 'cost_mismatch' as "check", 'warn' as severity, null::timestamptz as interval_start,
            1.25 as money_at_risk, 'EUR' as currency, 'The CDR charged more than the tariff.' as explanation""",
                     [session_key("ocpp:CP-1:101")])


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as conn:
        seeded(conn)
    return path


@pytest.mark.parametrize("key", [session_key("ocpp:CP-1:101"), "CDR-101", "NL:CLN:CDR-101", "B-101", "CP-1:101"])
def test_every_key_kind_finds_the_session(warehouse, key):
    with connect(warehouse, read_only=True) as conn:
        trace = build_trace(conn, key)
    assert trace is not None
    assert trace.session["session_key"] == session_key("ocpp:CP-1:101")
    text = trace.render()
    for needle in ("StartTransaction", "StopTransaction", "session B-101 started", "CDR CDR-101 (primary) start",
                   "period 1: ENERGY 11.0", "T-AC version", "in force at session start", "EMS".lower(),
                   "warn cost_mismatch", "1.25 EUR at risk"):
        assert needle in text, needle
    assert "TAG1" not in text  # tokens are personal data
    times = [line[:23] for line in text.splitlines()[6:] if line[:4] == "2026"]
    assert times == sorted(times) and len(times) > 8
    assert "04:00" not in text.split("ems")[-1]  # the EMS interval after the session is left out


def test_backend_only_session_and_unknown_key(warehouse):
    with connect(warehouse, read_only=True) as conn:
        trace = build_trace(conn, "B-102")
        assert trace is not None and trace.session["anchor_kind"] == "backend"
        assert "session B-102 started" in trace.render()
        assert build_trace(conn, "nope") is None


def test_missing_tables_are_skipped(tmp_path):
    conn = configure(duckdb.connect())
    seeded(conn, with_flags=False)
    conn.execute("drop table staging.ocpp_frames")
    conn.execute("drop table staging.ems_intervals")
    trace = build_trace(conn, "CDR-101")
    assert trace is not None
    text = trace.render()
    assert "staging.ocpp_frames (not in the warehouse)" in text
    assert "recon.flags (not in the warehouse)" in text
    assert "CDR CDR-101" in text


def test_cli_prints_the_timeline_and_fails_on_unknown_keys(warehouse, capsys):
    assert main(["trace", "CP-1:101", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"session {session_key('ocpp:CP-1:101')}")
    assert main(["trace", "nope", "--warehouse", str(warehouse)]) == 1
    assert main(["trace", "CDR-101", "--warehouse", str(warehouse), "--format", "json"]) == 0
    assert '"events"' in capsys.readouterr().out
    assert main(["trace", "x", "--warehouse", str(warehouse.parent / "missing.duckdb")]) == 2
