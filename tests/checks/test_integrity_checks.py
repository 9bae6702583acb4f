"""Integrity checks judge only their run's days, never block, and leave a row behind.

``transactions_account_for_events`` on a hand-made warehouse: transactions of day 1 are
written, those of day 2 are not yet (a later run of the same night). A run for day 1 must
pass (a stop after midnight belongs to its start's day), a run for day 2 or a run without
partitions must fail, and each result is a row of ``meta.integrity_results``.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import duckdb

from assets.lineage_transactions import lineage_transactions
from checks.ocpp_staging import transactions_account_for_events
from pipeline.day_partitions import range_tags, register_days
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.summary import render_summary
from pipeline.warehouse import configure

D1, D2 = date(2019, 3, 10), date(2019, 3, 11)


def _warehouse(path) -> None:
    with duckdb.connect(str(path)) as conn:
        configure(conn)
        conn.execute("""
            create table staging.ocpp_transaction_events as select * from (values
                ('CP-1', '101', 'started', '1.6', false, timestamptz '2019-03-10 23:30Z', 'ocpp/a.jsonl', 1),
                -- the stop of day 1's transaction comes after midnight
                ('CP-1', '101', 'ended', '1.6', false, timestamptz '2019-03-11 00:40Z', 'ocpp/a.jsonl', 2),
                -- day 2's transaction: not written yet
                ('CP-1', '102', 'started', '1.6', false, timestamptz '2019-03-11 09:00Z', 'ocpp/b.jsonl', 1),
                ('CP-1', '102', 'ended', '1.6', false, timestamptz '2019-03-11 10:00Z', 'ocpp/b.jsonl', 2)
            ) as v(charge_point_id, transaction_id, event_type, ocpp_version, is_retransmit, received_at,
                   source_file, record_no)
        """)
        conn.execute("""
            create table lineage.transactions as select * from (values
                ('CP-1', '101', ['101'], timestamptz '2019-03-10 23:30Z', timestamptz '2019-03-10 23:30Z',
                 timestamptz '2019-03-11 00:40Z', 7.5)
            ) as v(charge_point_id, transaction_id, transaction_ids, start_received_at, started_at,
                   stop_received_at, energy_kwh)
        """)


def _check(tmp_path, day: date | None):
    """Only the check, in a run tagged with ``day`` (as the runner's single-run ranges are)."""
    instance = dg.DagsterInstance.ephemeral()
    register_days(instance, [D1, D2])
    return dg.materialize(
        [lineage_transactions, transactions_account_for_events],
        selection=dg.AssetSelection.checks(transactions_account_for_events),
        resources={"duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb")),
                   "landing": LandingResource(path=str(tmp_path))},
        tags=range_tags(day, day) if day else None, instance=instance, raise_on_error=False,
    )


def _rows(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        return conn.execute("select run_id, days, passed, details from meta.integrity_results "
                            "order by checked_at").fetchall()


def test_a_run_judges_only_its_days(tmp_path):
    _warehouse(tmp_path / "w.duckdb")
    result = _check(tmp_path, D1)
    assert result.success
    (ev,) = result.get_asset_check_evaluations()
    assert ev.passed
    ((run_id, days, passed, details),) = _rows(tmp_path)
    assert (run_id, days, passed) == (result.run_id, [D1], True)
    assert json.loads(details)["events_without_transaction"] == 0


def test_an_event_of_the_runs_day_without_transaction_fails_and_is_recorded(tmp_path):
    _warehouse(tmp_path / "w.duckdb")
    result = _check(tmp_path, D2)
    assert result.success  # a failed integrity check is a result, not a failed run
    (ev,) = result.get_asset_check_evaluations()
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    ((run_id, days, passed, details),) = _rows(tmp_path)
    assert (days, passed) == ([D2], False)
    doc = json.loads(details)
    assert doc["events_without_transaction"] == 1
    assert doc["sample"][0]["transaction"] == "102"
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        summary = render_summary(conn, [run_id])
    assert "Integrity checks: 0 passed, 1 failed" in summary
    assert "FAILED integrity check transactions_account_for_events on lineage_transactions (days 2019-03-11)" \
        in summary


def test_without_partitions_every_event_is_judged(tmp_path):
    _warehouse(tmp_path / "w.duckdb")
    (ev,) = _check(tmp_path, None).get_asset_check_evaluations()
    assert not ev.passed and ev.metadata["events_without_transaction"].value == 1


def test_register_days_keeps_calendar_order():
    instance = dg.DagsterInstance.ephemeral()
    assert register_days(instance, [date(2026, 11, 16), date(2035, 1, 2)]) == ["2026-11-16", "2035-01-02"]
    # older data arriving later still sorts first, so a key range is a calendar range
    assert register_days(instance, [date(2019, 3, 10), date(2026, 11, 16)]) == ["2019-03-10"]
    assert register_days(instance, [date(2026, 11, 17)]) == ["2026-11-17"]
    assert list(instance.get_dynamic_partitions("days")) == [
        "2019-03-10", "2026-11-16", "2026-11-17", "2035-01-02"]
    assert register_days(instance, [date(2019, 3, 10)]) == []
