"""The decision store: decisions survive the warehouse, and work while a night holds it."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

from pipeline import review
from pipeline.cli import main as chargeline
from pipeline.decisions import DecisionStore, store_path
from pipeline.warehouse import connect
from tests.fixtures.review_seed import seed_upstream

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(warehouse_path):
    with connect(warehouse_path) as c:
        seed_upstream(c)
        review.sync_review(c, at=T0)
    return warehouse_path


def test_decision_lives_in_the_store_and_survives_a_new_warehouse(warehouse):
    with connect(warehouse) as c:
        review.set_status(c, "sk-1", "confirmed", note="refund 4.20", reviewer="ana", at=T0)
    store = DecisionStore(store_path(warehouse))
    assert [d[:5] for d in store.decisions()] == [("sk-1", "sk-1", "confirmed", "ana", "refund 4.20")]
    # the warehouse rebuilt from scratch (a full rerun): the decision comes back from the store
    for p in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        p.unlink(missing_ok=True)
    with connect(warehouse) as c:
        seed_upstream(c)
        review.sync_review(c, at=T1)
        row = c.execute("select status, reviewer, note from recon.review where review_key = 'sk-1'").fetchall()
        log = c.execute("select review_key, old_status, new_status from recon.review_log").fetchall()
    assert row == [("confirmed", "ana", "refund 4.20")]
    assert log == [("sk-1", "open", "confirmed")]


def test_legacy_decisions_in_the_warehouse_are_adopted(warehouse):
    with connect(warehouse) as c:
        c.execute("update recon.review set status = 'dismissed', reviewer = 'bo', decided_at = $t "
                  "where review_key = 'sk-3'", {"t": T0})
    store_path(warehouse).unlink()          # a warehouse from before the store existed
    with connect(warehouse) as c:
        review.sync_review(c, at=T1)
        assert c.execute("select status from recon.review where review_key = 'sk-3'").fetchall() == [("dismissed",)]
    assert [d[2] for d in DecisionStore(store_path(warehouse)).decisions()] == ["dismissed"]


def test_review_works_while_another_process_holds_the_warehouse(warehouse, capsys):
    # a child process holds the warehouse read-write, as a running night does
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(warehouse)!r})
        print("locked", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["--warehouse", str(warehouse)]
        assert chargeline(["review", "set", "sk-3", "--status", "confirmed", "--reviewer", "ana",
                           "--note", "during the night", *args]) == 0
        assert chargeline(["review", "list", "--format", "json", *args]) == 0
        out = capsys.readouterr()
        assert "warehouse busy" in out.err
        assert '"status": "confirmed"' in out.out and '"review_key": "sk-3"' in out.out
        assert chargeline(["review", "show", "sk-3", *args]) == 0
        assert "during the night" in capsys.readouterr().out
    finally:
        holder.communicate("\n", timeout=30)
    # the next sync (the next night) shows it in the warehouse, once
    with connect(warehouse) as c:
        review.sync_review(c, at=T1)
        review.sync_review(c, at=T1)
        assert c.execute("select status, note from recon.review where review_key = 'sk-3'").fetchall() == [
            ("confirmed", "during the night")]
        assert c.execute("select count(*) from recon.review_log where review_key = 'sk-3'").fetchall() == [(1,)]
