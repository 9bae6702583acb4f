"""status_mismatch over status timelines, on a hand-made warehouse (one public EVSE).

The map's status holds from each snapshot (full-Location push, EVSE PATCH, pulled listing)
until the next; OCPP's from each StatusNotification. Each case has a passing and a failing
variant: a lost push, pulls only, a mixture, publication lag, a PATCH-only stream.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from assets.staging import stage_all
from assets.status_timeline import build_status_timeline
from checks import collect_rules
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.ingest.run import ingest_landing
from pipeline.models.status_map import map_status
from pipeline.warehouse import connect

RULES = [r for r in collect_rules() if r.check == "status_mismatch"]
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def at(h: float) -> datetime:
    return DAY + timedelta(hours=h)


def iso(h: float) -> str:
    return at(h).strftime("%Y-%m-%dT%H:%M:%SZ")


def registry(c):
    c.execute("create or replace table staging.sites as select 'S1' as site_id, 'public' as site_type")
    c.execute("""create or replace table staging.evses as select * from (values
        ('CP1', 1, 'S1', 'LOC1', 'E1', 'NL*CLN*E1', 22.0)) v(charge_point_id, connector_id, site_id,
        location_id, evse_uid, evse_id, max_power_kw)""")
    c.execute("""create or replace table staging.ocpp_status (charge_point_id varchar, connector_id integer,
        status varchar, error_code varchar, status_at timestamptz, received_at timestamptz,
        ocpp_version varchar, source_file varchar, record_no bigint)""")
    c.execute("""create or replace table lineage.transactions (charge_point_id varchar, connector_id integer,
        transaction_id varchar, start_received_at timestamptz, stopped_at timestamptz,
        stop_received_at timestamptz, has_stop boolean, stop_from_offline_queue boolean)""")


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        registry(c)
        c.execute("""create table staging.location_evse_status (location_id varchar, evse_uid varchar,
            evse_id varchar, status varchar, snapshot_at timestamptz, published_at timestamptz,
            snapshot_kind varchar, connectors json, source_file varchar, record_no bigint)""")
        yield c


def status(c, h, st, err="NoError", version="1.6"):
    n = c.execute("select count(*) from staging.ocpp_status").fetchone()[0]
    c.execute("insert into staging.ocpp_status values ('CP1', 1, $s, $e, $t, $t, $v, 'ocpp/cp1.jsonl', $n)",
              {"s": st, "e": err, "t": at(h), "v": version, "n": n + 1})


def tx(c, start, stop, stop_received=None, offline=False, has_stop=True):
    c.execute("insert into lineage.transactions values ('CP1', 1, $id, $a, $b, $c, $h, $o)",
              {"id": f"T{start}", "a": at(start), "b": at(stop) if stop is not None else None,
               "c": at(stop_received if stop_received is not None else stop) if stop is not None else None,
               "h": has_stop, "o": offline})


def snapshots(c, statuses: dict[float, str], kind="location", updated: dict[float, float] | None = None):
    """Snapshots published at each hour key; ``updated`` gives a pull's EVSE last_updated."""
    for h, st in statuses.items():
        n = c.execute("select count(*) from staging.location_evse_status").fetchone()[0]
        c.execute("insert into staging.location_evse_status values ('LOC1', 'E1', 'NL*CLN*E1', $s, $u, $t, $k, "
                  "'[]', 'locations/s1.json', $n)",
                  {"s": st, "t": at(h), "u": at((updated or {}).get(h, h)), "k": kind, "n": n + 1})


def run(c, options=None):
    build_status_timeline(c, options)
    build_flags(c, options or load_options(), RULES)
    return c.execute("""select evse_uid, interval_start, severity, evidence::varchar, explanation
                        from recon.flags order by interval_start""").fetchall()


def hourly(status_by_hour: dict[int, str] | None = None, default="AVAILABLE"):
    return {h: (status_by_hour or {}).get(h, default) for h in range(8, 16)}


def session(c, plug, start, stop, unplug, version="1.6"):
    """A 1.6 session's statuses (Preparing, Charging, Finishing, Available) and its transaction."""
    status(c, plug, "Preparing", version=version)
    status(c, start, "Charging", version=version)
    status(c, stop, "Finishing", version=version)
    status(c, unplug, "Available", version=version)
    tx(c, start, stop)


# --- push-on-change ---------------------------------------------------------------------

def test_lost_push_leaves_the_map_available_while_the_charger_charges(conn):
    """The CHARGING push of 10:00 never arrived: no snapshot shows a wrong status, but the map
    showed AVAILABLE from the 09:00 push until the 12:00 one while OCPP said charging."""
    status(conn, 7, "Available")
    session(conn, 9.99, 10.0, 12.0, 12.01)
    snapshots(conn, {9: "AVAILABLE", 12.02: "AVAILABLE", 15: "AVAILABLE"})
    (row,) = run(conn)
    evse, start, severity, evidence, explanation = row
    ev = json.loads(evidence)
    assert evse == "E1" and start == at(10.0) and severity == "error"
    assert ev["published_status"] == "AVAILABLE" and ev["published_since_at"].startswith("2026-11-20 09:00:00")
    assert ev["ocpp_as_ocpi_status"] == "CHARGING" and ev["ocpp_since_at"].startswith("2026-11-20 10:00:00")
    assert 7100 < ev["overlap_s"] <= 7200 and ev["ended_by"] == "charger changed"
    assert "already in use" in explanation and "AVAILABLE" in explanation


def test_every_push_delivered_is_no_finding(conn):
    status(conn, 7, "Available")
    session(conn, 9.99, 10.0, 12.0, 12.01)
    snapshots(conn, {9: "AVAILABLE", 9.995: "CHARGING", 12.02: "AVAILABLE", 15: "AVAILABLE"})
    assert run(conn) == []


def test_faulted_while_map_says_available_is_one_episode(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    status(conn, 13.2, "Available")
    snapshots(conn, hourly())  # the other EVSEs' changes re-push the stale AVAILABLE hourly
    (row,) = run(conn)
    evse, start, severity, evidence, explanation = row
    assert evse == "E1" and start == at(10.1) and severity == "error"
    ev = json.loads(evidence)
    assert ev["snapshots_during"] == 3 and ev["ocpp_error_codes"] == ["GroundFailure"]
    assert "faulted charger" in explanation and "stale" not in explanation


def test_stale_map_corrected_by_the_next_push_names_the_lost_push(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    snapshots(conn, {8: "AVAILABLE", 12.5: "OUTOFORDER", 16: "OUTOFORDER"})
    (row,) = run(conn)
    ev = json.loads(row[3])
    assert row[1] == at(10.1) and ev["ended_by"] == "map changed" and ev["next_snapshot_status"] == "OUTOFORDER"
    assert "lost push" in row[4]


def test_two_snapshots_in_one_second_the_newer_change_holds(conn):
    """Two whole-Location pushes stamped in the same second (another EVSE's change, then this
    one's): the snapshot with the newer EVSE change is what the map shows."""
    status(conn, 7, "Available")
    session(conn, 9.99, 10.0, 12.0, 12.01)
    snapshots(conn, {8: "AVAILABLE"})
    snapshots(conn, {10.0: "CHARGING"})
    snapshots(conn, {10.0: "AVAILABLE"}, updated={10.0: 8})
    snapshots(conn, {12.02: "AVAILABLE"})
    assert run(conn) == []
    assert conn.execute("select count(*) from recon.status_published").fetchone()[0] == 3


# --- publication lag ---------------------------------------------------------------------

def test_publication_lag_below_the_tolerance_is_not_flagged(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    status(conn, 13.2, "Available")
    session(conn, 14.0, 14.01, 15.5, 15.51)
    # every change published 2 to 10 minutes late
    snapshots(conn, {8: "AVAILABLE", 10.1 + 10 / 60: "OUTOFORDER", 13.2 + 2 / 60: "AVAILABLE",
                     14.0 + 6 / 60: "CHARGING", 15.51 + 4 / 60: "AVAILABLE"})
    assert run(conn) == []


def test_publication_lag_above_the_tolerance_is_flagged(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    status(conn, 13.2, "Available")
    snapshots(conn, {8: "AVAILABLE", 10.1 + 20 / 60: "OUTOFORDER", 13.2 + 2 / 60: "AVAILABLE"})
    (row,) = run(conn)
    assert row[1] == at(10.1) and 1140 <= json.loads(row[3])["overlap_s"] <= 1200


def test_tighter_tolerance_flags_the_latency(conn):
    status(conn, 7, "Available")
    status(conn, 14.9, "Charging")
    tx(conn, 14.9, 16.5)
    snapshots(conn, hourly({15: "CHARGING"}))  # the map followed 6 min later
    assert run(conn) == []
    options = load_options()
    options["checks"]["status_mismatch"]["tolerance_s"] = 60
    assert [r[0] for r in run(conn, options)] == ["E1"]


def test_map_a_few_seconds_ahead_of_the_csms_stamp_is_grace(conn):
    """The map's stamp 30 s before the CSMS received the status: no episode at all (tolerance 0)."""
    status(conn, 7, "Available")
    status(conn, 10.0, "Faulted")
    snapshots(conn, {8: "AVAILABLE", 10.0 - 30 / 3600: "OUTOFORDER", 12: "OUTOFORDER"})
    options = load_options()
    options["checks"]["status_mismatch"]["tolerance_s"] = 0
    assert run(conn, options) == []
    options["checks"]["status_mismatch"]["grace_s"] = 0
    assert [json.loads(r[3])["overlap_s"] for r in run(conn, options)] == [30]


# --- pulls -----------------------------------------------------------------------------

def test_hourly_pulls_show_a_change_within_the_tolerance(conn):
    status(conn, 7, "Available")
    session(conn, 10.8, 10.81, 12.85, 12.86)  # each change 8 to 12 min before the next pull
    snapshots(conn, {8: "AVAILABLE", 9: "AVAILABLE", 10: "AVAILABLE", 11: "CHARGING", 12: "CHARGING",
                     13: "AVAILABLE", 14: "AVAILABLE"}, kind="pull", updated={11: 10.81, 12: 10.81, 13: 12.86})
    assert run(conn) == []


def test_hourly_pulls_that_keep_a_faulted_charger_available_are_flagged(conn):
    status(conn, 7, "Available")
    status(conn, 10.1, "Faulted", "GroundFailure")
    status(conn, 13.2, "Available")
    snapshots(conn, hourly(), kind="pull")
    (row,) = run(conn)
    ev = json.loads(row[3])
    assert row[1] == at(10.1) and ev["published_snapshot_kind"] == "pull" and ev["snapshots_during"] == 3
    assert "a pull" in row[4]


def test_a_pull_shows_its_status_from_the_pull_not_from_last_updated(conn):
    """Nightly pull at 03:00 next day: it carries CHARGING with last_updated 22:00, but the map
    learnt it at 03:00; the push of 22:00 was lost, so the map was wrong for five hours."""
    status(conn, 7, "Available")
    session(conn, 21.99, 22.0, 30.0, 30.01)
    snapshots(conn, {8: "AVAILABLE"})
    snapshots(conn, {27: "CHARGING"}, kind="pull", updated={27: 22.0})
    snapshots(conn, {30.02: "AVAILABLE"})
    (row,) = run(conn)
    ev = json.loads(row[3])
    assert row[1] == at(22.0) and ev["ended_by"] == "map changed" and ev["next_snapshot_kind"] == "pull"
    assert 5 * 3600 - 120 <= ev["overlap_s"] <= 5 * 3600 and "pull of 03:00" in row[4]


def test_a_pull_that_confirms_what_was_pushed_is_no_finding(conn):
    status(conn, 7, "Available")
    session(conn, 21.99, 22.0, 30.0, 30.01)
    snapshots(conn, {8: "AVAILABLE", 21.995: "CHARGING"})
    snapshots(conn, {27: "CHARGING"}, kind="pull", updated={27: 21.995})
    snapshots(conn, {30.02: "AVAILABLE"})
    assert run(conn) == []


# --- agreement rules carried over --------------------------------------------------------

def test_occupied_after_the_transaction_ended_may_show_available(conn):
    status(conn, 7, "Available", version="2.0.1")
    status(conn, 9.6, "Occupied", version="2.0.1")
    status(conn, 12.0, "Available", version="2.0.1")  # the cable stayed in for an hour after the stop
    tx(conn, 9.61, 10.98)
    snapshots(conn, {8: "AVAILABLE", 9.62: "CHARGING", 11.0: "AVAILABLE"})
    assert run(conn) == []


def test_occupied_while_the_transaction_runs_may_not_show_available(conn):
    status(conn, 7, "Available", version="2.0.1")
    status(conn, 9.6, "Occupied", version="2.0.1")
    status(conn, 12.0, "Available", version="2.0.1")
    tx(conn, 9.61, 11.9)
    snapshots(conn, {8: "AVAILABLE", 9.62: "CHARGING", 11.0: "AVAILABLE"})
    (row,) = run(conn)
    assert row[1] == at(11.0) and json.loads(row[3])["ended_by"] == "charger changed"


def test_charging_in_ocpp_while_available_on_map_names_the_classic_case(conn):
    status(conn, 7, "Available")
    status(conn, 9.5, "Preparing")
    status(conn, 9.52, "Charging")
    status(conn, 12.4, "Finishing")
    status(conn, 12.45, "Available")
    tx(conn, 9.52, 12.4)
    snapshots(conn, hourly())
    (row,) = run(conn)
    assert row[1] == at(9.52) and "already in use" in row[4]  # Preparing shown AVAILABLE agrees


def test_offline_queued_stop_is_not_a_status_mismatch(conn):
    status(conn, 7, "Available")
    status(conn, 9.5, "Charging")
    status(conn, 15.5, "Available")  # delivered with the offline queue hours after the stop
    tx(conn, 9.5, 11, 15.4, offline=True)
    snapshots(conn, {8: "AVAILABLE", 9.51: "CHARGING", 11: "AVAILABLE", 16: "AVAILABLE"})
    assert run(conn) == []


def test_the_same_stop_received_live_is_a_status_mismatch(conn):
    status(conn, 7, "Available")
    status(conn, 9.5, "Charging")
    status(conn, 15.5, "Available")  # charging in OCPP for 4.5 h more, the map said AVAILABLE
    tx(conn, 9.5, 15.4)
    snapshots(conn, {8: "AVAILABLE", 9.51: "CHARGING", 11: "AVAILABLE", 16: "AVAILABLE"})
    (row,) = run(conn)
    assert row[1] == at(11)


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
    assert conn.execute("select count(*) from recon.status_comparison where ocpi_status = 'UNKNOWN' "
                        "and agrees is not null").fetchone()[0] == 0


def test_no_locations_no_findings(conn):
    conn.execute("drop table staging.location_evse_status")
    status(conn, 7, "Faulted")
    assert run(conn) == []
    assert conn.execute("select sum(n_snapshots) from recon.status_timeline").fetchone()[0] == 0
    assert conn.execute("select count(*) from recon.status_published").fetchone()[0] == 0


def test_status_map():
    assert map_status("1.6", "SuspendedEVSE") == "CHARGING"
    assert map_status("2.0.1", "Occupied") == "CHARGING"
    assert map_status("2.0.1", "Faulted") == "OUTOFORDER"
    assert map_status(None, "Unavailable") == "INOPERATIVE"
    assert map_status("1.6", "Occupied") == "UNKNOWN"


def test_one_definition_of_agreement(conn):
    """The timeline's pieces carry the only judgement: equivalent pairs, transitional statuses."""
    status(conn, 7, "Available")
    status(conn, 8.5, "Preparing")
    status(conn, 8.6, "Available")
    status(conn, 9.0, "Faulted")
    snapshots(conn, {8: "AVAILABLE", 9.01: "INOPERATIVE", 9.5: "AVAILABLE"})
    build_status_timeline(conn)
    rows = conn.execute("""select ocpp_status, published_status, agrees from recon.status_comparison
                           where from_at >= $t order by from_at""", {"t": at(8.01)}).fetchall()
    judged = {(o, p): a for o, p, a in rows}
    assert judged[("Preparing", "AVAILABLE")] is True
    assert judged[("Faulted", "INOPERATIVE")] is True
    assert judged[("Faulted", "AVAILABLE")] is False


def test_two_different_disagreements_in_a_row_are_not_one_long_episode(conn):
    """Faulted for 12 min, then charging for 12 min, the map AVAILABLE throughout: two short
    disagreements of different kinds, not one 24-minute outage."""
    status(conn, 7, "Available")
    status(conn, 10.0, "Faulted", "GroundFailure")
    status(conn, 10.2, "Charging")
    status(conn, 10.4, "Available")
    tx(conn, 10.2, 10.4)
    snapshots(conn, {8: "AVAILABLE", 11: "AVAILABLE"})
    assert run(conn) == []


def test_one_disagreement_through_a_status_change_of_the_same_kind_is_one_episode(conn):
    status(conn, 7, "Available")
    status(conn, 10.0, "Charging")
    status(conn, 10.2, "SuspendedEV")
    status(conn, 10.4, "Available")
    tx(conn, 10.0, 10.39)
    snapshots(conn, {8: "AVAILABLE", 11: "AVAILABLE"})
    (row,) = run(conn)
    assert row[1] == at(10.0) and json.loads(row[3])["ocpp_statuses"] == ["Charging", "SuspendedEV"]


# --- a PATCH-only stream, through ingest and staging -----------------------------------

def _landing_patches(tmp_path, patches: list[tuple[float, str]]):
    d = tmp_path / "landing" / "locations"
    d.mkdir(parents=True)
    rows = [{"country_code": "NL", "party_id": "CLN", "location_id": "LOC1", "evse_uid": "E1",
             "status": st, "last_updated": iso(h)} for h, st in patches]
    (d / "patches.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    c = connect(tmp_path / "w.duckdb")
    ingest_landing(c, tmp_path / "landing", load_options()["ingest"])
    stage_all(c, load_options())
    registry(c)
    return c


def test_patch_only_stream_with_every_patch_is_no_finding(tmp_path):
    c = _landing_patches(tmp_path, [(8, "AVAILABLE"), (10.01, "CHARGING"), (12.02, "AVAILABLE")])
    kinds = c.execute("select distinct snapshot_kind, connectors is null from staging.location_evse_status").fetchall()
    assert kinds == [("evse_patch", True)]
    status(c, 7, "Available")
    session(c, 9.99, 10.0, 12.0, 12.01)
    assert run(c) == []
    c.close()


def test_patch_only_stream_with_a_lost_patch_is_flagged(tmp_path):
    c = _landing_patches(tmp_path, [(8, "AVAILABLE"), (12.02, "AVAILABLE")])
    status(c, 7, "Available")
    session(c, 9.99, 10.0, 12.0, 12.01)
    (row,) = run(c)
    ev = json.loads(row[3])
    assert row[1] == at(10.0) and ev["published_snapshot_kind"] == "evse_patch"
    assert "an EVSE PATCH" in row[4]
    c.close()


def test_pulled_listing_is_staged_with_its_envelope_time(tmp_path):
    d = tmp_path / "landing" / "locations"
    d.mkdir(parents=True)
    loc = {"country_code": "NL", "party_id": "CLN", "id": "LOC1", "last_updated": iso(22.0),
           "evses": [{"uid": "E1", "evse_id": "NL*CLN*E1", "status": "CHARGING", "last_updated": iso(22.0),
                      "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                      "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32,
                                      "last_updated": iso(1)}]}]}
    (d / "pull.json").write_text(json.dumps({"status_code": 1000, "timestamp": iso(27), "data": [loc]}))
    (d / "push.json").write_text(json.dumps(loc))
    with connect(tmp_path / "w.duckdb") as c:
        ingest_landing(c, tmp_path / "landing", load_options()["ingest"])
        stage_all(c, load_options())
        rows = c.execute("""select source_file, snapshot_kind, snapshot_at, published_at
                            from staging.location_evse_status order by source_file""").fetchall()
    assert rows == [("locations/pull.json", "pull", at(22), at(27)), ("locations/push.json", "location", at(22), at(22))]
