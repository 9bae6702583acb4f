"""incomplete_session: no stop, stop only from the offline queue, interrupted charging."""

import datetime as dt
import json

import pytest

from checks.completeness import RULES
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect
from tests.checks.lineage_seed import (
    T0,
    add_samples,
    add_session,
    add_site,
    create_tables,
    findings,
    insert,
)

M = dt.timedelta(minutes=1)
NO_STOP = {"has_stop": False, "stopped_at": None, "stop_received_at": None, "meter_stop_kwh": None,
           "stop_reason": None, "anomalies": ["start_without_stop"]}


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        create_tables(c)
        add_site(c, site_type="fleet", connectors=4)
        yield c


def add_status(conn, connector: int, status: str, at: dt.datetime, cp: str = "CP1") -> None:
    insert(conn, "staging.ocpp_status", {"charge_point_id": cp, "connector_id": connector, "status": status,
                                         "status_at": at})


def run(conn):
    build_flags(conn, load_options(), RULES)
    return {f["session_key"]: f for f in findings(conn, "incomplete_session")}


def test_whole_sessions_and_a_still_running_one_pass(conn):
    add_session(conn, "a", site_type="fleet")
    add_session(conn, "b", site_type="fleet", connector=2, tx_overrides={"stop_reason": "Local"})
    # Started an hour before the data ends, no later session on its connector: still charging.
    add_session(conn, "c", site_type="fleet", connector=3, start=T0 + dt.timedelta(hours=1),
                backend_stopped_at=None, ocpp_stopped_at=None, tx_overrides=NO_STOP)
    assert run(conn) == {}


def test_incomplete_sessions_are_flagged(conn):
    add_session(conn, "nostop", site_type="fleet", tx="T1", backend_stopped_at=None, ocpp_stopped_at=None,
                tx_overrides=NO_STOP)
    add_session(conn, "later", site_type="fleet", tx="T2", start=T0 + dt.timedelta(hours=3))
    add_session(conn, "queued", site_type="fleet", connector=2, tx_overrides={"stop_from_offline_queue": True})
    add_session(conn, "power", site_type="fleet", connector=3, tx_overrides={"stop_reason": "PowerLoss"})
    # Last meter value at 10:30, then the connector says Available: the car has left.
    add_session(conn, "idle", site_type="fleet", connector=4, tx="T4", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    add_samples(conn, "CP1", "T4", [(T0 + 30 * M, 1003.0)], connector=4)
    add_status(conn, 4, "Available", T0 + 50 * M)
    found = run(conn)
    assert set(found) == {"nostop", "queued", "power", "idle"}
    assert "no_stop" in found["nostop"]["evidence"] and found["nostop"]["severity"] == "error"
    assert "stop_from_offline_queue" in found["queued"]["evidence"]
    assert "interrupted" in found["power"]["evidence"]
    assert json.loads(found["idle"]["evidence"])["connector_idle_at"] is not None


def test_silence_alone_is_not_a_missing_stop(conn):
    # A charger that never samples, and one whose last sample was hours before the data ends:
    # both may still be plugged in (a full car idles for hours). The data ends at 13:00.
    add_session(conn, "later", site_type="fleet", connector=1, start=T0 + dt.timedelta(hours=3))
    add_session(conn, "unsampled", site_type="fleet", connector=2, tx="T2", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    add_session(conn, "quiet", site_type="fleet", connector=3, tx="T3", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    add_samples(conn, "CP1", "T3", [(T0 + 30 * M, 1003.0)], connector=3)
    # A status before the last sign of life says nothing about the end.
    add_status(conn, 3, "Available", T0 - 5 * M)
    assert run(conn) == {}


def test_a_boot_or_data_far_beyond_any_session_ends_it(conn):
    add_session(conn, "booted", site_type="fleet", connector=2, tx="T2", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    insert(conn, "staging.ocpp_boots", {"charge_point_id": "CP1", "action": "BootNotification",
                                        "requested_at": T0 + 2 * 60 * M})
    add_session(conn, "old", site_type="fleet", cp="CP2", connector=1, tx="T3", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    # The data runs on for 30 h (a later session elsewhere): longer than any plug-in lasts.
    add_session(conn, "much_later", site_type="fleet", cp="CP3", start=T0 + dt.timedelta(hours=30))
    found = run(conn)
    assert set(found) == {"booted", "old"}
    assert json.loads(found["booted"]["evidence"])["boot_at"] is not None


def test_a_sampled_transaction_silent_while_its_charger_talks_on_has_ended(conn):
    # Sampled every minute for 20 minutes, then nothing for 4 h while the charger sends
    # heartbeats: it stopped, the stop was lost. Its neighbour was sampled twice only: its
    # silence says nothing.
    add_session(conn, "regular", site_type="fleet", connector=1, tx="T1", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    add_samples(conn, "CP1", "T1", [(T0 + k * M, 1000.0 + 0.1 * k) for k in range(1, 21)], connector=1)
    add_session(conn, "sparse", site_type="fleet", connector=2, tx="T2", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    add_samples(conn, "CP1", "T2", [(T0 + 5 * M, 1001.0), (T0 + 20 * M, 1002.0)], connector=2)
    for h in range(1, 5):
        insert(conn, "staging.ocpp_frames", {"charge_point_id": "CP1", "received_at": T0 + h * 60 * M})
    found = run(conn)
    assert set(found) == {"regular"}
    assert json.loads(found["regular"]["evidence"])["charger_heard_silent_until"] is not None


def test_a_sampled_transaction_silent_with_its_charger_is_still_open(conn):
    # The charger itself went quiet (offline, or the data ends): nothing says the session ended.
    add_session(conn, "regular", site_type="fleet", connector=1, tx="T1", backend_stopped_at=None,
                ocpp_stopped_at=None, tx_overrides=NO_STOP)
    add_samples(conn, "CP1", "T1", [(T0 + k * M, 1000.0 + 0.1 * k) for k in range(1, 21)], connector=1)
    insert(conn, "staging.ocpp_frames", {"charge_point_id": "CP1", "received_at": T0 + 60 * M})
    assert run(conn) == {}
