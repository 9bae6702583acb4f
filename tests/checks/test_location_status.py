"""status_mismatch and recon.status_timeline on a hand-made warehouse (one public EVSE)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from assets.status_timeline import build_status_timeline
from pipeline.config import load_options
from pipeline.flags import build_flags, collect_rules
from pipeline.models.status_map import agrees, map_status
from pipeline.warehouse import connect

RULES = [r for r in collect_rules() if r.check == "status_mismatch"]
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def at(h: float) -> datetime:
    return DAY + timedelta(hours=h)


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        c.execute("create table staging.sites as select 'S1' as site_id, 'public' as site_type")
        c.execute("""create table staging.evses as select * from (values
            ('CP1', 1, 'S1', 'LOC1', 'E1', 'NL*CLN*E1', 22.0)) v(charge_point_id, connector_id, site_id,
            location_id, evse_uid, evse_id, max_power_kw)""")
        c.execute("""create table staging.ocpp_status (charge_point_id varchar, connector_id integer,
            status varchar, error_code varchar, status_at timestamptz, received_at timestamptz,
            ocpp_version varchar, source_file varchar, record_no bigint)""")
        c.execute("""create table staging.location_evse_status (location_id varchar, evse_uid varchar,
            evse_id varchar, status varchar, snapshot_at timestamptz, connectors json)""")
        c.execute("""create table lineage.transactions (charge_point_id varchar, connector_id integer,
            transaction_id varchar, start_received_at timestamptz, stopped_at timestamptz,
            stop_received_at timestamptz, has_stop boolean, stop_from_offline_queue boolean)""")
        yield c


def status(c, h, st, err="NoError", version="1.6"):
    n = c.execute("select count(*) from staging.ocpp_status").fetchone()[0]
    c.execute("insert into staging.ocpp_status values ('CP1', 1, $s, $e, $t, $t, $v, 'ocpp/cp1.jsonl', $n)",
              {"s": st, "e": err, "t": at(h), "v": version, "n": n + 1})


def snapshots(c, statuses: dict[float, str]):
    for h, st in statuses.items():
        c.execute("insert into staging.location_evse_status values ('LOC1', 'E1', 'NL*CLN*E1', $s, $t, $j)",
                  {"s": st, "t": at(h), "j": json.dumps([])})


def run(c, options=None):
    build_status_timeline(c)
    build_flags(c, options or load_options(), RULES)
    return c.execute("""select evse_uid, interval_start, severity, evidence::varchar, explanation
                        from recon.flags order by interval_start""").fetchall()


def hourly(status_by_hour: dict[int, str] | None = None, default="AVAILABLE"):
    return {h: (status_by_hour or {}).get(h, default) for h in range(8, 16)}


def test_faulted_while_map_says_available_is_one_episode(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    status(conn, 13.2, "Available")
    snapshots(conn, hourly())
    (row,) = run(conn)
    evse, start, severity, evidence, explanation = row
    assert evse == "E1" and start == at(10.1) and severity == "error"
    ev = json.loads(evidence)
    assert ev["disagreeing_snapshots"] == 3 and ev["ocpp_error_codes"] == ["GroundFailure"]
    assert "faulted charger" in explanation and "AVAILABLE" in explanation


def test_map_following_within_tolerance_is_not_flagged(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    status(conn, 13.2, "Available")
    # the map caught up at the first snapshot after each change
    snapshots(conn, hourly({11: "OUTOFORDER", 12: "INOPERATIVE", 13: "OUTOFORDER"}))
    status(conn, 14.9, "Charging")  # 6 min before the 15:00 snapshot: publication latency
    assert run(conn) == []


def test_occupied_after_the_transaction_ended_may_show_available(conn):
    status(conn, 7, "Available", version="2.0.1")
    status(conn, 9.6, "Occupied", version="2.0.1")
    status(conn, 11.02, "Available", version="2.0.1")  # unplugged just after the 11:00 snapshot
    conn.execute("insert into lineage.transactions values ('CP1', 1, 'T1', $a, $b, $b, true, false)",
                 {"a": at(9.61), "b": at(10.98)})
    snapshots(conn, hourly({10: "CHARGING"}))
    assert run(conn) == []


def test_tighter_tolerance_flags_the_latency(conn):
    status(conn, 7, "Available")
    status(conn, 14.9, "Charging")
    conn.execute("insert into lineage.transactions values ('CP1', 1, 'T1', $a, $b, $b, true, false)",
                 {"a": at(14.9), "b": at(16.5)})
    snapshots(conn, hourly())
    options = load_options()
    options["checks"]["status_mismatch"]["tolerance_s"] = 60
    assert [r[0] for r in run(conn, options)] == ["E1"]


def test_charging_in_ocpp_while_available_on_map_names_the_classic_case(conn):
    status(conn, 7, "Available")
    status(conn, 9.5, "Preparing")
    status(conn, 9.52, "Charging")
    status(conn, 12.4, "Finishing")
    status(conn, 12.45, "Available")
    conn.execute("insert into lineage.transactions values ('CP1', 1, 'T1', $a, $b, $b, true, false)",
                 {"a": at(9.52), "b": at(12.4)})
    snapshots(conn, hourly())
    (row,) = run(conn)
    assert row[1] == at(9.52) and "already in use" in row[4]


def test_offline_queued_stop_is_not_a_status_mismatch(conn):
    status(conn, 7, "Available")
    status(conn, 9.5, "Charging")
    status(conn, 15.5, "Available")  # delivered with the offline queue hours after the stop
    conn.execute("insert into lineage.transactions values ('CP1', 1, 'T1', $a, $b, $c, true, true)",
                 {"a": at(9.5), "b": at(11), "c": at(15.4)})
    snapshots(conn, hourly({10: "CHARGING"}))
    assert run(conn) == []


def test_vendor_statuses_are_counted_as_unknown_not_dropped(conn):
    status(conn, 7, "Available")
    status(conn, 9.5, "AcmeSelfTest")
    status(conn, 9.6, "Charging", version="2.0.1")  # not a 2.0.1 status either
    snapshots(conn, hourly())
    assert run(conn) == []
    counts = build_status_timeline(conn)
    assert counts["intervals"] == 3 and counts["unmapped"] == 2
    rows = conn.execute("select ocpp_status, ocpi_status from recon.status_timeline order by seq").fetchall()
    assert rows == [("Available", "AVAILABLE"), ("AcmeSelfTest", "UNKNOWN"), ("Charging", "UNKNOWN")]


def test_no_locations_no_findings(conn):
    conn.execute("drop table staging.location_evse_status")
    status(conn, 7, "Faulted")
    assert run(conn) == []
    assert conn.execute("select sum(n_snapshots) from recon.status_timeline").fetchone()[0] == 0


def test_status_map():
    assert map_status("1.6", "SuspendedEVSE") == "CHARGING"
    assert map_status("2.0.1", "Occupied") == "CHARGING"
    assert map_status("2.0.1", "Faulted") == "OUTOFORDER"
    assert map_status(None, "Unavailable") == "INOPERATIVE"
    assert map_status("1.6", "Occupied") == "UNKNOWN"
    assert agrees("AVAILABLE", "1.6", "Finishing") is True
    assert agrees("AVAILABLE", "1.6", "Charging") is False
    assert agrees("INOPERATIVE", "1.6", "Faulted") is True
    assert agrees("AVAILABLE", "1.6", "Vendor") is None


def test_two_different_disagreements_in_a_row_are_not_one_long_episode(conn):
    """Faulted just before one snapshot, then the map shows out-of-order after the charger
    recovered: two disagreements, not one outage from the first to the last."""
    status(conn, 7, "Available")
    status(conn, 9.95, "Faulted", "GroundFailure")  # 3 min before the 10:00 snapshot
    status(conn, 10.5, "Available")
    snapshots(conn, hourly({11: "OUTOFORDER"}))
    rows = run(conn)
    assert [r[1] for r in rows] == [at(10.5)]
