"""lineage.transactions on hand-written frame sequences, one per failure form of the field."""

from datetime import UTC, datetime

import pytest

from pipeline.privacy import token_hash
from tests.fixtures.ocpp.frames import (
    energy,
    meter16,
    power,
    rows,
    run_ocpp,
    start16,
    stop16,
    tx_event,
)

CP = "CP-1"


def only_tx(conn) -> dict:
    (tx,) = rows(conn, "select * from lineage.transactions")
    return tx


def test_clean_16_transaction(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=1_000_000),
        *meter16("2026-11-20T08:30:00Z", CP, "m1", 11, [energy(1_005_000), power(10_000)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=1_011_000),
    ]})
    tx = only_tx(conn)
    assert tx["transaction_id"] == "11" and tx["connector_id"] == 1 and tx["id_tag_hash"] == token_hash("TAG1")
    assert tx["energy_kwh"] == pytest.approx(11.0) and tx["energy_basis"] == "register"
    assert tx["max_power_kw"] == pytest.approx(10.0)
    assert tx["anomalies"] == [] and tx["has_start"] and tx["has_stop"]
    assert tx["started_at"] == datetime(2026, 11, 20, 8, tzinfo=UTC)


def test_retransmitted_start_and_stop_make_one_transaction(tmp_path):
    start = start16("2026-11-20T08:00:00Z", CP, "s1", 11)
    stop = stop16("2026-11-20T09:00:00Z", CP, "e1", 11)
    resent_stop = stop[0] | {"received_at": "2026-11-20T09:00:40Z"}
    conn = run_ocpp(tmp_path, {"a.jsonl": [start[0], start[0], start[1], stop[0], resent_stop, stop[1]]})
    tx = only_tx(conn)
    assert tx["anomalies"] == [] and not tx["is_restarted_start"]
    assert tx["energy_kwh"] == pytest.approx(4.0)


def test_start_resent_after_reconnect_is_one_transaction(tmp_path):
    # same connector, idTag, meterStart and timestamp; the CSMS assigned a second id
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, ts="2026-11-20T08:00:00Z"),
        *start16("2026-11-20T08:02:00Z", CP, "s2", 12, ts="2026-11-20T08:00:00Z"),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 12),
    ]})
    tx = only_tx(conn)
    assert tx["is_restarted_start"]
    assert tx["transaction_id"] == "12" and sorted(tx["transaction_ids"]) == ["11", "12"]
    assert tx["has_stop"] and "start_without_stop" not in tx["anomalies"]
    assert tx["energy_kwh"] == pytest.approx(4.0)


def test_start_resent_with_the_same_id(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11),
        *start16("2026-11-20T08:02:00Z", CP, "s2", 11, ts="2026-11-20T08:00:00Z"),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11),
    ]})
    tx = only_tx(conn)
    assert tx["is_restarted_start"] and tx["transaction_ids"] == ["11"]


def test_two_sessions_with_the_same_tag_stay_two(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=1000),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=2000),
        *start16("2026-11-20T10:00:00Z", CP, "s2", 12, meter_start=2000),
        *stop16("2026-11-20T11:00:00Z", CP, "e2", 12, meter_stop=3000),
    ]})
    txs = rows(conn, "select transaction_id, is_restarted_start from lineage.transactions order by started_at")
    assert txs == [{"transaction_id": "11", "is_restarted_start": False},
                   {"transaction_id": "12", "is_restarted_start": False}]


def test_stop_without_start(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [*stop16("2026-11-20T09:00:00Z", CP, "e1", 99)]})
    tx = only_tx(conn)
    assert tx["transaction_id"] == "99" and not tx["has_start"] and tx["has_stop"]
    assert "stop_without_start" in tx["anomalies"] and tx["energy_basis"] == "none"


def test_start_without_stop(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [*start16("2026-11-20T08:00:00Z", CP, "s1", 11)]})
    tx = only_tx(conn)
    assert tx["has_start"] and not tx["has_stop"] and tx["stopped_at"] is None
    assert tx["anomalies"] == ["start_without_stop"]


@pytest.mark.parametrize(("received", "offline"), [("2026-11-20T09:05:00Z", False), ("2026-11-20T11:00:00Z", True)])
def test_stop_from_offline_queue(tmp_path, received, offline):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11),
        *stop16(received, CP, "e1", 11, ts="2026-11-20T09:00:00Z"),
    ]})
    tx = only_tx(conn)
    assert tx["stop_from_offline_queue"] is offline
    assert tx["stopped_at"] == datetime(2026, 11, 20, 9, tzinfo=UTC)  # the charger's own time


@pytest.mark.parametrize("meter_stop", [-1, None])
def test_meter_stop_missing_uses_meter_values(tmp_path, meter_stop):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=1000),
        *meter16("2026-11-20T08:10:00Z", CP, "m1", 11, [energy(1500)]),
        *meter16("2026-11-20T08:50:00Z", CP, "m2", 11, [energy(7500)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=meter_stop),
    ]})
    tx = only_tx(conn)
    assert "meter_stop_missing" in tx["anomalies"]
    # meterStart 1.0 kWh is the series' first point: 1.0 -> 1.5 -> 7.5
    assert tx["energy_basis"] == "meter_values" and tx["energy_kwh"] == pytest.approx(6.5)
    assert tx["n_meter_samples"] == 2


def test_start_register_of_another_convention_is_not_mixed_with_samples(tmp_path):
    # meterStart counts per transaction (0) while MeterValues carry the lifetime register
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=0),
        *meter16("2026-11-20T08:10:00Z", CP, "m1", 11, [energy(9_001_500)]),
        *meter16("2026-11-20T08:50:00Z", CP, "m2", 11, [energy(9_007_500)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=-1),
    ]})
    assert only_tx(conn)["energy_kwh"] == pytest.approx(6.0)


def test_stop_transaction_data_gives_energy(tmp_path):
    data = [{"timestamp": "2026-11-20T08:00:00Z", "sampledValue": [energy(1000, context="Transaction.Begin")]},
            {"timestamp": "2026-11-20T09:00:00Z", "sampledValue": [energy(9000, context="Transaction.End")]}]
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=1000),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=-1, tx_data=data),
    ]})
    tx = only_tx(conn)
    assert tx["energy_basis"] == "transaction_data" and tx["energy_kwh"] == pytest.approx(8.0)
    origins = rows(conn, "select distinct origin from staging.ocpp_meter_values")
    assert origins == [{"origin": "StopTransaction"}]


def test_epoch_timestamps_use_the_csms_time(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, ts="1970-01-01T00:02:00Z"),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, ts="1970-01-01T01:02:00Z"),
    ]})
    tx = only_tx(conn)
    assert "epoch_timestamp" in tx["anomalies"]
    assert tx["started_at"] == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert tx["stopped_at"] == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert not tx["stop_from_offline_queue"]  # an unset clock says nothing about queueing
    events = rows(conn, "select event_at from staging.ocpp_transaction_events order by received_at")
    assert events[0]["event_at"] == datetime(1970, 1, 1, 0, 2, tzinfo=UTC)  # kept as sent in staging


def test_register_rollback_within_a_transaction(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=10_000),
        *meter16("2026-11-20T08:20:00Z", CP, "m1", 11, [energy(14_000)]),
        *meter16("2026-11-20T08:40:00Z", CP, "m2", 11, [energy(13_500)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=18_000),
    ]})
    tx = only_tx(conn)
    assert "register_rollback" in tx["anomalies"] and "negative_energy" not in tx["anomalies"]
    assert tx["energy_kwh"] == pytest.approx(8.0)


def test_register_reset_mid_transaction(tmp_path):
    # the charger rebooted during the transaction and its register counted again from 0
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=50_000),
        *meter16("2026-11-20T08:20:00Z", CP, "m1", 11, [energy(53_000)]),
        *meter16("2026-11-20T08:40:00Z", CP, "m2", 11, [energy(1_000)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=4_000),
    ]})
    tx = only_tx(conn)
    assert {"negative_energy", "register_rollback", "register_reset"} <= set(tx["anomalies"])
    assert tx["energy_basis"] == "meter_values"
    assert tx["energy_kwh"] == pytest.approx(3.0 + 1.0 + 3.0)  # 50 -> 53, reset -> 1 -> 4 kWh


def test_per_transaction_register_convention(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=0),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=7_400),
    ]})
    assert only_tx(conn)["energy_kwh"] == pytest.approx(7.4)


# 2026-12: a Wh value with three or more decimals used to be taken for kWh (x1000). Real
# meters send fractional Wh ("70.14" Wh, Grizzl-E): the unit is now judged by whether the
# value fits the transaction's other readings, and the first case below flipped from
# suspect to not suspect.
@pytest.mark.parametrize(("meter_start", "values", "unit", "suspect", "kwh"), [
    # fractional Wh in line with meterStart in Wh: 10.456 Wh, not a kWh register
    (1520, ["1520.123", "1530.456"], "Wh", False, 0.010456),
    (1_520_000, ["1520123", "1530456"], "Wh", False, 10.456),
    # labelled Wh but 1000x below meterStart (Wh): kWh values; x1000 they continue it
    (1_520_000, ["1520.123", "1530.456"], "Wh", True, 10.456),
    # the same numbers labelled kWh: the label is right and trusted
    (1_520_000, ["1520.123", "1530.456"], "kWh", False, 10.456),
    # no unit sent (the spec's Wh) and 1000x below meterStart
    (1_520_000, ["1520.123", "1530.456"], None, True, 10.456),
    # no meterStart/meterStop: the middle sample is 1000x off the two around it
    (-1, ["1520123", "1525.000", "1530456"], "Wh", True, 10.333),
    # and with them all in line nothing is rescaled, whatever their decimals
    (-1, ["1520.123", "1525.000", "1530.456"], "Wh", False, 0.010333),
])
def test_unit_suspect_register(tmp_path, meter_start, values, unit, suspect, kwh):
    minutes = [1, 30, 59][: len(values)] if len(values) == 3 else [1, 59]
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=meter_start),
        *[frame for i, (m, v) in enumerate(zip(minutes, values, strict=True))
          for frame in meter16(f"2026-11-20T08:{m:02d}:00Z", CP, f"m{i}", 11, [energy(v, unit)])],
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=-1),
    ]})
    tx = only_tx(conn)
    assert ("unit_suspect" in tx["anomalies"]) is suspect
    assert tx["energy_kwh"] == pytest.approx(kwh)


@pytest.mark.parametrize(("values", "suspect", "kwh"), [
    # a per-transaction register from 0: kWh values sent as Wh fit 0..meterStop either way,
    # but only x1000 do they run into meterStop (31.7 kWh cannot pass in the last minute)
    (["10.500", "21.000", "31.700"], True, 31.726),
    # Wh near the start of a long session: both readings leave the same step, the label stands
    (["30.000"], False, 31.726),
])
def test_unit_of_a_register_stream_from_zero(tmp_path, values, suspect, kwh):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=0),
        *[frame for i, v in enumerate(values)
          for frame in meter16(f"2026-11-20T08:{20 * i + 19:02d}:00Z", CP, f"m{i}", 11, [energy(v)])],
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=31_726),
    ]})
    tx = only_tx(conn)
    assert ("unit_suspect" in tx["anomalies"]) is suspect
    assert tx["energy_kwh"] == pytest.approx(kwh)


@pytest.mark.parametrize(("meter", "values", "unit", "suspect", "kwh"), [
    # per-transaction meterStart/meterStop beside a lifetime Wh register: another convention,
    # not another unit (1/1000 of those samples would fit 0..10 kWh, and is not taken)
    ((0, 10_000), ["1520000", "1525000"], "Wh", False, 10.0),
    # Wh values under a kWh label, 1000x above meterStop: the one way /1000 is taken
    ((1000, 9000), ["5000", "7000"], "kWh", True, 8.0),
])
def test_unit_fix_only_for_the_known_mix_ups(tmp_path, meter, values, unit, suspect, kwh):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=meter[0]),
        *meter16("2026-11-20T08:20:00Z", CP, "m0", 11, [energy(values[0], unit)]),
        *meter16("2026-11-20T08:40:00Z", CP, "m1", 11, [energy(values[1], unit)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=meter[1]),
    ]})
    tx = only_tx(conn)
    assert ("unit_suspect" in tx["anomalies"]) is suspect
    assert tx["energy_kwh"] == pytest.approx(kwh)


def test_unit_suspect_from_power(tmp_path):
    # meterStart/Stop in kWh although OCPP 1.6 says Wh: 11 "Wh" in an hour at 11 kW
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:00Z", CP, "s1", 11, meter_start=100),
        *meter16("2026-11-20T08:30:00Z", CP, "m1", 11, [power(11_000)]),
        *stop16("2026-11-20T09:00:00Z", CP, "e1", 11, meter_stop=111),
    ]})
    tx = only_tx(conn)
    assert "unit_suspect" in tx["anomalies"]
    assert tx["energy_kwh"] == pytest.approx(11.0)


def test_201_transaction_by_seq_no(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *tx_event("2026-11-20T08:00:00Z", "CP-2", "e0", "Started", "TX-A", 0, evse=2, wh=1000, tag="T2"),
        *tx_event("2026-11-20T08:30:00Z", "CP-2", "e1", "Updated", "TX-A", 1, evse=2, wh=5000,
                  trigger="MeterValuePeriodic"),
        *tx_event("2026-11-20T09:00:00Z", "CP-2", "e2", "Ended", "TX-A", 2, evse=2, wh=9000,
                  reason="EVDisconnected", trigger="EVCommunicationLost"),
    ]})
    tx = only_tx(conn)
    assert (tx["ocpp_version"], tx["transaction_id"], tx["connector_id"], tx["id_tag_hash"]) == ("2.0.1", "TX-A", 2, token_hash("T2"))
    assert tx["energy_kwh"] == pytest.approx(8.0) and tx["energy_basis"] == "register"
    assert tx["stop_reason"] == "EVDisconnected" and tx["anomalies"] == []
    events = rows(conn, "select seq_no, event_type, meter_register_kwh from staging.ocpp_transaction_events "
                        "order by seq_no")
    assert [e["event_type"] for e in events] == ["started", "updated", "ended"]
    assert [e["meter_register_kwh"] for e in events] == [1.0, 5.0, 9.0]


def test_201_events_out_of_order_and_missing_start(tmp_path):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *tx_event("2026-11-20T09:00:00Z", "CP-2", "e2", "Ended", "TX-B", 3, wh=9000, reason="Local"),
        *tx_event("2026-11-20T08:30:00Z", "CP-2", "e1", "Updated", "TX-B", 1, wh=5000, tag="T"),
    ]})
    tx = only_tx(conn)
    assert not tx["has_start"] and tx["has_stop"]
    assert {"stop_without_start", "seq_no_gap"} <= set(tx["anomalies"])
    assert tx["energy_kwh"] == pytest.approx(4.0) and tx["energy_basis"] == "meter_values"
