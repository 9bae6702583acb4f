"""OCPP staging on hand-written frames: typing, UTC, pairing, retransmissions, quarantine."""

import shutil
from datetime import UTC, datetime

import pytest

from pipeline.privacy import token_hash
from tests.fixtures.ocpp.frames import (
    HERE,
    call,
    energy,
    meter16,
    power,
    rec,
    result,
    rows,
    run_ocpp,
    start16,
    tx_event,
)


@pytest.mark.parametrize(("received_at", "expected"), [
    ("2026-11-20T08:00:01.123Z", datetime(2026, 11, 20, 8, 0, 1, 123000, tzinfo=UTC)),
    ("2026-11-20T08:00:01+00:00", datetime(2026, 11, 20, 8, 0, 1, tzinfo=UTC)),
    ("2026-11-20T08:00:01+0000", datetime(2026, 11, 20, 8, 0, 1, tzinfo=UTC)),
    ("2026-11-20T09:00:01+01:00", datetime(2026, 11, 20, 8, 0, 1, tzinfo=UTC)),
    ("2026-11-20T08:00:01", datetime(2026, 11, 20, 8, 0, 1, tzinfo=UTC)),
    ("1795248001", datetime(2026, 11, 21, 8, 0, 1, tzinfo=UTC)),
    ("1795248001000", datetime(2026, 11, 21, 8, 0, 1, tzinfo=UTC)),
])
def test_received_at_is_utc_whatever_the_offset_style(tmp_path, received_at, expected):
    conn = run_ocpp(tmp_path, {"a.jsonl": [call(received_at, "CP-1", "1", "Heartbeat", {})]})
    (row,) = rows(conn, "select received_at from staging.ocpp_frames")
    assert row["received_at"] == expected


def test_bad_frames_go_to_quarantine_with_reasons(tmp_path):
    (tmp_path / "landing/ocpp").mkdir(parents=True)
    shutil.copy(HERE / "bad_frames.jsonl", tmp_path / "landing/ocpp/bad_frames.jsonl")
    conn = run_ocpp(tmp_path, {})
    staged = rows(conn, "select record_no from staging.ocpp_frames order by record_no")
    assert [r["record_no"] for r in staged] == [1, 8]
    rejects = {r["record_no"]: set(r["reasons"]) for r in rows(
        conn, "select record_no, reasons from quarantine.rejects where source = 'ocpp'")}
    assert rejects[2] == {"msg_type:unknown"}
    assert rejects[3] == {"msg_id:missing"}
    assert {"action:missing", "payload:not_object"} <= rejects[4]
    assert rejects[5] == {"received_at:unparseable"}
    assert rejects[6] == {"direction:not_in_out"}
    assert rejects[7] == {"charge_point_id:missing"}
    assert 9 in rejects  # unreadable JSON, rejected when read
    # the counts balance per file: read = staged + rejected
    (meta,) = rows(conn, "select records_read, records_staged from meta.files")
    assert meta["records_read"] == len(staged) + len(rejects) == 9
    assert meta["records_staged"] == 2


def test_rerun_does_not_duplicate_rejects(tmp_path):
    (tmp_path / "landing/ocpp").mkdir(parents=True)
    shutil.copy(HERE / "bad_frames.jsonl", tmp_path / "landing/ocpp/bad_frames.jsonl")
    conn = run_ocpp(tmp_path, {})
    conn.close()
    conn = run_ocpp(tmp_path, {})
    assert rows(conn, "select count(*) as n from quarantine.rejects")[0]["n"] == 7


def test_log_file_times_are_read_in_the_configured_zone(tmp_path):
    (tmp_path / "landing/ocpp").mkdir(parents=True)
    shutil.copy(HERE / "cp16_log_amsterdam.log", tmp_path / "landing/ocpp/cp.log")
    conn = run_ocpp(tmp_path, {}, options={"ingest": {"ocpp_log_time_zone": "Europe/Amsterdam"}})
    frames = rows(conn, "select received_at, direction, msg_type, ocpp_version from staging.ocpp_frames "
                        "order by record_no")
    assert len(frames) == 4
    assert frames[0]["received_at"] == datetime(2026, 11, 20, 8, 0, 0, 100000, tzinfo=UTC)
    assert [f["direction"] for f in frames] == ["in", "out", "in", "out"]
    assert {f["ocpp_version"] for f in frames} == {"1.6"}
    (tx,) = rows(conn, "select * from lineage.transactions")
    assert tx["transaction_id"] == "777"
    assert tx["energy_kwh"] == pytest.approx(12.5)
    assert tx["start_received_at"] == datetime(2026, 11, 20, 8, 0, 0, 100000, tzinfo=UTC)
    assert not tx["stop_from_offline_queue"]  # 10:30 Amsterdam is 09:30 UTC, as the payload says


def test_log_file_in_utc_by_default(tmp_path):
    (tmp_path / "landing/ocpp").mkdir(parents=True)
    shutil.copy(HERE / "cp16_log_amsterdam.log", tmp_path / "landing/ocpp/cp.log")
    conn = run_ocpp(tmp_path, {})
    first = rows(conn, "select received_at from staging.ocpp_frames order by record_no limit 1")[0]
    assert first["received_at"] == datetime(2026, 11, 20, 9, 0, 0, 100000, tzinfo=UTC)


def test_retransmitted_frame_is_flagged_and_not_counted_twice(tmp_path):
    t = "2026-11-20T08:05:00Z"
    sample = meter16(t, "CP-1", "m1", 5, [energy(1500)])
    frames = [*start16("2026-11-20T08:00:00Z", "CP-1", "s1", 5), sample[0], sample[0] | {
        "received_at": "2026-11-20T08:05:30Z"}, sample[1]]
    conn = run_ocpp(tmp_path, {"a.jsonl": frames})
    flags = rows(conn, "select msg_id, is_retransmit from staging.ocpp_frames where msg_id = 'm1' and msg_type = 2 "
                       "order by received_at")
    assert [f["is_retransmit"] for f in flags] == [False, True]
    assert rows(conn, "select count(*) as n from staging.ocpp_meter_values")[0]["n"] == 1


def test_call_pairs_with_the_next_answer_even_when_ids_repeat(tmp_path):
    frames = [
        call("2026-11-20T08:00:00Z", "CP-1", "1", "Authorize", {"idTag": "A"}),
        result("2026-11-20T08:00:00.400Z", "CP-1", "1", {"idTagInfo": {"status": "Accepted"}}),
        # the charger rebooted and counts message ids from 1 again
        call("2026-11-20T12:00:00Z", "CP-1", "1", "Authorize", {"idTag": "B"}),
        result("2026-11-20T12:00:02Z", "CP-1", "1", {"idTagInfo": {"status": "Invalid"}}),
    ]
    conn = run_ocpp(tmp_path, {"a.jsonl": frames})
    auth = rows(conn, "select id_tag_hash, status, latency_ms from staging.ocpp_authorizations "
                      "order by requested_at")
    # the token only as the same keyed hash as every other table
    assert [(a["id_tag_hash"], a["status"], a["latency_ms"]) for a in auth] == [
        (token_hash("A"), "Accepted", 400), (token_hash("B"), "Invalid", 2000)]


def test_staged_payloads_hold_token_hashes_only(tmp_path):
    frames = [
        call("2026-11-20T08:00:00Z", "CP-1", "1", "Authorize", {"idTag": "04ab12"}),
        result("2026-11-20T08:00:00.400Z", "CP-1", "1", {"idTagInfo": {"status": "Accepted", "parentIdTag": "P1"}}),
        call("2026-11-20T08:01:00Z", "CP-2", "2", "TransactionEvent", {
            "eventType": "Started", "timestamp": "2026-11-20T08:01:00Z", "triggerReason": "Authorized",
            "seqNo": 0, "transactionInfo": {"transactionId": "TX"},
            "idToken": {"idToken": "04CD34", "type": "ISO14443"}, "evse": {"id": 1}}),
    ]
    conn = run_ocpp(tmp_path, {"a.jsonl": frames})
    payloads = " ".join(r["p"] for r in rows(conn, "select payload::varchar as p from staging.ocpp_frames"))
    assert not any(uid in payloads.upper() for uid in ("04AB12", '"P1"', "04CD34"))
    assert token_hash("04AB12") in payloads and token_hash("P1") in payloads
    ev = rows(conn, "select id_tag_hash from staging.ocpp_transaction_events")
    assert ev == [{"id_tag_hash": token_hash("04cd34")}]
    raw = " ".join(r["f"] for r in rows(conn, "select frame::varchar as f from raw.ocpp_frames"))
    assert "04ab12" in raw  # the technical record keeps the frame as received


def test_unanswered_call_has_no_answer(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [call("2026-11-20T08:00:00Z", "CP-1", "1", "Heartbeat", {})]})
    (c,) = rows(conn, "select answer_type, answer_at from staging.ocpp_calls")
    assert c["answer_type"] is None and c["answer_at"] is None


@pytest.mark.parametrize(("sample", "measurand", "value", "value_unit"), [
    (energy(12345), "Energy.Active.Import.Register", 12.345, "kWh"),
    (energy("12.345", unit="kWh"), "Energy.Active.Import.Register", 12.345, "kWh"),
    (energy(12345, unit=None), "Energy.Active.Import.Register", 12.345, "kWh"),  # spec default Wh
    ({"value": "7000"}, "Energy.Active.Import.Register", 7.0, "kWh"),  # default measurand too
    (power(11000), "Power.Active.Import", 11.0, "kW"),
    (power("11", unit="kW"), "Power.Active.Import", 11.0, "kW"),
    ({"value": "16.5", "measurand": "Current.Import", "unit": "A", "phase": "L1"}, "Current.Import", 16.5, "A"),
    ({"value": "55", "measurand": "SoC"}, "SoC", 55.0, "Percent"),
])
def test_meter_values_are_normalized(tmp_path, sample, measurand, value, value_unit):
    conn = run_ocpp(tmp_path, {"a.jsonl": meter16("2026-11-20T08:00:00Z", "CP-1", "m", 1, [sample])})
    (mv,) = rows(conn, "select * from staging.ocpp_meter_values")
    assert (mv["measurand"], mv["value_unit"], mv["origin"]) == (measurand, value_unit, "MeterValues")
    assert mv["value"] == pytest.approx(value)


def test_201_meter_value_with_multiplier_and_version_inferred(tmp_path):
    ev = tx_event("2026-11-20T08:00:00Z", "CP-2", "e1", "Started", "TX-A", 0, wh=5.0, tag="T")
    ev[0]["frame"][3]["meterValue"][0]["sampledValue"][0]["unitOfMeasure"] = {"unit": "Wh", "multiplier": 3}
    conn = run_ocpp(tmp_path, {"a.jsonl": ev})
    (mv,) = rows(conn, "select value, connector_id, transaction_id, ocpp_version from staging.ocpp_meter_values")
    assert mv == {"value": pytest.approx(5.0), "connector_id": 1, "transaction_id": "TX-A", "ocpp_version": "2.0.1"}
    assert {r["ocpp_version"] for r in rows(conn, "select ocpp_version from staging.ocpp_frames")} == {"2.0.1"}


def test_given_version_wins_over_inference(tmp_path):
    frames = [call("2026-11-20T08:00:00Z", "CP-1", "1", "Heartbeat", {}, ocpp_version="2.0.1"),
              call("2026-11-20T08:01:00Z", "CP-1", "2", "Heartbeat", {})]
    conn = run_ocpp(tmp_path, {"a.jsonl": frames})
    assert [r["ocpp_version"] for r in rows(conn, "select ocpp_version from staging.ocpp_frames order by msg_id")] \
        == ["2.0.1", "2.0.1"]


def test_status_boots_and_transaction_events(tmp_path):
    frames = [
        call("2026-11-20T08:00:00Z", "CP-1", "b", "BootNotification",
             {"chargePointVendor": "Alfen", "chargePointModel": "Eve"}),
        result("2026-11-20T08:00:00.2Z", "CP-1", "b",
               {"status": "Accepted", "currentTime": "2026-11-20T08:00:00Z", "interval": 300}),
        call("2026-11-20T08:00:01Z", "CP-1", "s", "StatusNotification",
             {"connectorId": 1, "status": "Charging", "errorCode": "NoError", "timestamp": "1970-01-01T00:01:00Z"}),
        *start16("2026-11-20T08:01:00Z", "CP-1", "st", 42, meter_start=100),
    ]
    conn = run_ocpp(tmp_path, {"a.jsonl": frames})
    (boot,) = rows(conn, "select * from staging.ocpp_boots")
    assert (boot["vendor"], boot["status"], boot["interval_s"]) == ("Alfen", "Accepted", 300)
    (st,) = rows(conn, "select * from staging.ocpp_status")
    # an unset charger clock: the CSMS receive time is the status time
    assert st["status_at"] == datetime(2026, 11, 20, 8, 0, 1, tzinfo=UTC) and st["status"] == "Charging"
    (ev,) = rows(conn, "select * from staging.ocpp_transaction_events")
    assert (ev["event_type"], ev["transaction_id"], ev["meter_register_kwh"]) == ("started", "42", 0.1)


def test_a_second_answer_does_not_duplicate_a_call(tmp_path):
    frames = [call("2026-11-20T08:00:00Z", "CP-1", "1", "Heartbeat", {}),
              rec("2026-11-20T08:00:01Z", "CP-1", "out", [3, "1", {"currentTime": "2026-11-20T08:00:01Z"}]),
              rec("2026-11-20T08:00:02Z", "CP-1", "out", [4, "1", "InternalError", "late", {}])]
    conn = run_ocpp(tmp_path, {"a.jsonl": frames})
    assert rows(conn, "select answer_type from staging.ocpp_calls") == [{"answer_type": "result"}]
