"""OCPP text logs read by a line pattern: presets, configured patterns, prose lines counted."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.ingest.files import DataFile
from pipeline.ingest.formats import log_pattern
from pipeline.ingest.sources import load_file
from tests.fixtures.ocpp.frames import rows, run_ocpp

EXTERNAL = Path(__file__).resolve().parent.parent / "fixtures" / "external"
OCTT_LOG = EXTERNAL / "inl-octt-2.0.1" / "TC_E_44_CS.log"
OCTT_SOURCE = {"sources": {"octt": {"glob": "ocpp/octt/**", "log_preset": "octt"}}}


def _octt(tmp_path, options=None):
    target = tmp_path / "landing/ocpp/octt/CS-TC-E-44/TC_E_44_CS.log"
    target.parent.mkdir(parents=True)
    shutil.copy(OCTT_LOG, target)
    return run_ocpp(tmp_path, {}, options={"ingest": options or OCTT_SOURCE})


def test_compliance_trace_balances_frames_staged_prose_counted(tmp_path):
    conn = _octt(tmp_path)
    (meta,) = rows(conn, "select records_read, records_staged, lines_skipped from meta.files")
    # 30 [msg-in]/[msg-out] lines are the records; the other 111 non-blank lines are prose
    assert meta == {"records_read": 30, "records_staged": 30, "lines_skipped": 111}
    assert rows(conn, "select count(*) as n from quarantine.rejects")[0]["n"] == 0
    frames = rows(conn, "select charge_point_id, direction, received_at, ocpp_version from staging.ocpp_frames "
                        "order by record_no")
    assert {f["charge_point_id"] for f in frames} == {"CS-TC-E-44"}  # from the folder
    assert {f["ocpp_version"] for f in frames} == {"2.0.1"}
    assert frames[0]["direction"] == "out"  # GetVariables from the test tool (the CSMS)
    assert frames[0]["received_at"] == datetime(2024, 5, 17, 9, 20, 43, 732000, tzinfo=UTC)


def test_compliance_trace_is_one_201_transaction_ended_offline(tmp_path):
    conn = _octt(tmp_path)
    (tx,) = rows(conn, "select * from lineage.transactions")
    assert tx["ocpp_version"] == "2.0.1"
    assert tx["transaction_id"] == "e80fb8b1-3fa4-4146-aa10-9dfbc72dfa36"
    assert tx["connector_id"] == 1
    assert tx["has_start"] and tx["has_stop"]
    assert tx["started_at"] == datetime(2024, 5, 17, 9, 20, 44, tzinfo=UTC)
    assert tx["stopped_at"] == datetime(2024, 5, 17, 9, 21, 45, tzinfo=UTC)
    assert tx["stop_reason"] == "Local"
    # sent the moment the link came back, so no queueing delay shows: the charger says it
    assert tx["stop_from_offline_queue"]
    assert "stop_from_offline_queue" in tx["anomalies"]


def test_without_the_preset_the_trace_is_not_misread_as_frames(tmp_path):
    # the default (`ocpp` package) pattern matches none of its lines: all counted, none staged
    conn = _octt(tmp_path, {"sources": {}})
    (meta,) = rows(conn, "select records_read, lines_skipped from meta.files")
    assert meta == {"records_read": 0, "lines_skipped": 141}


def test_ocpp_package_notice_lines_are_counted_not_rejected(tmp_path):
    log = ('2026-11-20 09:00:00.100 INFO (MainThread) [ocpp] CP-LOG: receive message [2,"1","Heartbeat",{}]\n'
           "2026-11-20 09:00:01.000 INFO (MainThread) [websockets.server] connection open\n"
           '2026-11-20 09:00:02.000 INFO (MainThread) [ocpp] CP-LOG: send [3,"1",{"currentTime":\n')
    conn = run_ocpp(tmp_path, {"cp.log": log})
    (meta,) = rows(conn, "select records_read, records_rejected, lines_skipped from meta.files")
    assert meta == {"records_read": 2, "records_rejected": 1, "lines_skipped": 1}
    (rej,) = rows(conn, "select record_no, reasons from quarantine.rejects")
    assert rej == {"record_no": 3, "reasons": ["frame is not JSON"]}  # a cut frame is a record gone bad


def test_configured_pattern_with_charger_from_path_and_direction_words(tmp_path):
    log = ("12:00:00 noise\n"
           '2026-11-20T08:00:00.5Z <<< [2,"a","Heartbeat",{}]\n'
           '2026-11-20T08:00:00.9Z >>> [3,"a",{"currentTime":"2026-11-20T08:00:01Z"}]\n'
           '2026-11-20T08:00:02Z ??? [2,"b","Heartbeat",{}]\n')
    options = {"sources": {"csms": {
        "glob": "ocpp/csms/*.log",
        "log_pattern": r"^(?P<time>\S+Z) (?P<direction><<<|>>>|\?\?\?) (?P<frame>\[.*)$",
        "log_direction_in": ["<<<"], "log_direction_out": [">>>"],
        "log_charger_from_path": r"/(?P<charger>[^/]+)\.log$",
        "log_ocpp_version": "1.6",
    }}}
    conn = run_ocpp(tmp_path, {"csms/CP-77.log": log}, options={"ingest": options})
    frames = rows(conn, "select charge_point_id, direction, msg_type, ocpp_version, received_at "
                        "from staging.ocpp_frames order by record_no")
    assert [(f["charge_point_id"], f["direction"], f["msg_type"]) for f in frames] == [
        ("CP-77", "in", 2), ("CP-77", "out", 3)]
    assert frames[0]["received_at"] == datetime(2026, 11, 20, 8, 0, 0, 500000, tzinfo=UTC)
    assert {f["ocpp_version"] for f in frames} == {"1.6"}
    # a direction the configuration does not name is a record rejected with its reason
    reasons = rows(conn, "select record_no, reasons from quarantine.rejects")
    assert reasons == [{"record_no": 4, "reasons": ["direction:not_in_out"]}]
    (meta,) = rows(conn, "select records_read, lines_skipped from meta.files")
    assert meta == {"records_read": 3, "lines_skipped": 1}


def test_single_file_loader_reads_as_the_batch_does(tmp_path):
    target = tmp_path / "ocpp/octt/CS-1/TC_E_44_CS.log"
    target.parent.mkdir(parents=True)
    shutil.copy(OCTT_LOG, target)
    loaded = load_file(DataFile("ocpp", target, "ocpp/octt/CS-1/TC_E_44_CS.log"), OCTT_SOURCE)
    assert (len(loaded.rows), len(loaded.rejects), loaded.skipped) == (30, 0, 111)
    assert loaded.rows[0]["received_at"] == "2024-05-17T09:20:43.732000"
    assert {r["charge_point_id"] for r in loaded.rows} == {"CS-1"}


def test_later_source_entries_override_earlier_ones_and_bad_config_is_named():
    opts = {"sources": {"all": {"glob": "ocpp/**", "log_preset": "octt"},
                        "one": {"glob": "ocpp/x/*.log", "log_time_zone": "Europe/Oslo"}}}
    lp = log_pattern(opts, "ocpp/x/a.log")
    assert lp.time_zone == "Europe/Oslo" and lp.direction_in == ("msg-in",)
    assert log_pattern(opts, "ocpp/y/a.log").time_zone == "UTC"
    with pytest.raises(ValueError, match="needs a named group 'frame'"):
        log_pattern({"sources": {"a": {"glob": "*", "log_pattern": "(?P<time>.*)"}}}, "ocpp/a.log")
    with pytest.raises(ValueError, match="unknown log_preset"):
        log_pattern({"sources": {"a": {"glob": "*", "log_preset": "nope"}}}, "ocpp/a.log")


def test_websockets_debug_log_keeps_whole_frames_and_rejects_cut_ones(tmp_path):
    page = EXTERNAL / "ha-ocpp-wallbox-pulsar" / "debugging.md"
    target = tmp_path / "landing/ocpp/ha/pulsar/home-assistant.log"
    target.parent.mkdir(parents=True)
    shutil.copy(page, target)
    conn = run_ocpp(tmp_path, {}, options={"ingest": {"sources": {"ha": {
        "glob": "ocpp/ha/**", "log_preset": "websockets_debug", "log_time_zone": "Europe/Berlin"}}}})
    (meta,) = rows(conn, "select records_read, records_staged, records_rejected, lines_skipped from meta.files")
    assert meta == {"records_read": 12, "records_staged": 5, "records_rejected": 7, "lines_skipped": 69}
    assert {r["reasons"][0] for r in rows(conn, "select reasons from quarantine.rejects")} == {"frame is not JSON"}
    frames = rows(conn, "select charge_point_id, direction, msg_type, received_at from staging.ocpp_frames")
    assert {(f["charge_point_id"], f["direction"], f["msg_type"]) for f in frames} == {("pulsar", "out", 3)}
    # the log clock is local (16:35:40 CET) while the frames say 15:35:40Z
    assert {f["received_at"] for f in frames} == {datetime(2022, 3, 16, 15, 35, 40, tzinfo=UTC)}
