"""lineage.transactions.stop_from_offline_queue on chargers whose clock runs off the CSMS clock.

Regression (2026-11): a charger stamping every frame 20 minutes slow had each of its stops
read as "sent 20 minutes after it happened", i.e. from the offline queue, and every one of its
sessions was flagged incomplete_session. Queuing is now measured against the charger's clock
as the transaction's live frames show it.
"""

import pytest

from tests.fixtures.ocpp.frames import energy, meter16, rows, run_ocpp, start16, stop16

CP = "CP-1"


def _stamp(at: str, offset_min: int) -> str:
    from datetime import datetime, timedelta

    t = datetime.fromisoformat(at.replace("Z", "+00:00")) + timedelta(minutes=offset_min)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("clock_min", "stop_received", "offline"),
    [
        (-20, "2026-11-20T09:00:01Z", False),  # slow clock, stop sent at once: skew, not queuing
        (+20, "2026-11-20T09:00:01Z", False),  # fast clock, stop sent at once
        (-20, "2026-11-20T12:00:00Z", True),   # slow clock and a stop held back three hours
        (+20, "2026-11-20T11:00:00Z", True),   # fast clock and a stop held back two hours
    ],
)
def test_queued_stop_is_judged_on_the_chargers_clock(tmp_path, clock_min, stop_received, offline):
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *start16("2026-11-20T08:00:01Z", CP, "s1", 11, meter_start=1000,
                 ts=_stamp("2026-11-20T08:00:00Z", clock_min)),
        *meter16("2026-11-20T08:30:01Z", CP, "m1", 11, [energy(3000)],
                 ts=_stamp("2026-11-20T08:30:00Z", clock_min)),
        *stop16(stop_received, CP, "e1", 11, meter_stop=5000, ts=_stamp("2026-11-20T09:00:00Z", clock_min)),
    ]})
    (tx,) = rows(conn, "select stop_from_offline_queue, anomalies from lineage.transactions")
    assert tx["stop_from_offline_queue"] is offline
    assert ("stop_from_offline_queue" in tx["anomalies"]) is offline


def test_without_live_frames_the_stop_alone_is_judged(tmp_path):
    # no start, no samples: nothing shows the clock, so the stop's own lag decides
    conn = run_ocpp(tmp_path, {"a.jsonl": [
        *stop16("2026-11-20T11:00:00Z", CP, "e1", 99, ts="2026-11-20T09:00:00Z"),
    ]})
    (tx,) = rows(conn, "select stop_from_offline_queue from lineage.transactions")
    assert tx["stop_from_offline_queue"] is True
