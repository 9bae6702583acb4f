"""Nightly operation: writing by day, idempotent reruns, late files, kill-and-resume.

The mechanism tests use a tiny table; the end-to-end tests a generated network
(``chargeline generate --evses 40 --days 2``) run through ``chargeline run`` in-process
and, for kill-and-resume, in a real subprocess killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.config import Settings
from pipeline.day_partitions import contiguous
from pipeline.day_queue import (
    mark_reconciled,
    pending_days,
    refresh_file_days,
    replace_partitions,
)
from pipeline.warehouse import configure, connect
from tests.support.warehouse_copy import copy_warehouse, work_file

ROOT = Path(__file__).resolve().parents[2]
CHARGELINE = ROOT / ".venv" / "bin" / "chargeline"
D1, D2, D3 = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)
# Times a run stamps on rows; everything else must be identical run after run.
VOLATILE = {"ingested_at", "flagged_at", "first_flagged_at", "last_seen_at", "decided_at", "since_at"}
COMPARED = ("lineage.sessions", "lineage.transactions", "lineage.links", "recon.flags", "recon.review",
            "meta.files", "quarantine.rejects", "meta.file_days", "marts.session_facts")


# --- the mechanism ----------------------------------------------------------------------

def _table(conn, rows):
    conn.execute("create or replace table lineage.sessions (session_key varchar, started_at timestamptz, v int)")
    conn.executemany("insert into lineage.sessions values (?, ?, ?)", rows)


def _rows(conn):
    return sorted(conn.execute("select session_key, v from lineage.sessions").fetchall(), key=str)


def test_replace_partitions_writes_only_the_runs_days():
    conn = configure(duckdb.connect(":memory:"))
    _table(conn, [("a", "2026-11-16 10:00Z", 1), ("b", "2026-11-17 10:00Z", 1), ("g", None, 1)])
    with replace_partitions(conn, "lineage.sessions", [D2]):
        # the builder recomputes everything: every value changed, a day-18 row appeared
        _table(conn, [("a", "2026-11-16 10:00Z", 2), ("b", "2026-11-17 10:00Z", 2), ("g", None, 2),
                      ("c", "2026-11-18 10:00Z", 2)])
    # day 16 kept its old row, day 17 and the dayless row were rewritten, day 18 was not run
    assert _rows(conn) == [("a", 1), ("b", 2), ("g", 2)]
    assert conn.execute("select count(*) from meta.partition_stash").fetchone()[0] == 0


def test_replace_partitions_resumes_after_a_crash_in_the_builder():
    conn = configure(duckdb.connect(":memory:"))
    _table(conn, [("a", "2026-11-16 10:00Z", 1), ("b", "2026-11-17 10:00Z", 1)])
    with pytest.raises(RuntimeError), replace_partitions(conn, "lineage.sessions", [D1]):
        _table(conn, [("a", "2026-11-16 10:00Z", 9), ("b", "2026-11-17 10:00Z", 9)])
        raise RuntimeError("killed")
    # the half-built table is the builder's; the stash still holds day 17 as it was
    with replace_partitions(conn, "lineage.sessions", [D3]):
        _table(conn, [("a", "2026-11-16 10:00Z", 3), ("b", "2026-11-17 10:00Z", 3), ("c", "2026-11-18 10:00Z", 3)])
    # day 16 (the killed run's) and 18 (this run's) rewritten, day 17 restored from before the crash
    assert _rows(conn) == [("a", 3), ("b", 1), ("c", 3)]


def test_without_partitions_the_whole_table_is_kept():
    conn = configure(duckdb.connect(":memory:"))
    _table(conn, [("a", "2026-11-16 10:00Z", 1)])
    with replace_partitions(conn, "lineage.sessions", []):
        _table(conn, [("a", "2026-11-16 10:00Z", 2), ("b", "2026-11-17 10:00Z", 2)])
    assert _rows(conn) == [("a", 2), ("b", 2)]


def test_file_days_queue_new_changed_and_removed_versions():
    conn = configure(duckdb.connect(":memory:"))
    conn.execute("create table meta.files (source_file varchar, content_hash varchar)")
    conn.execute("create table staging.cdrs (source_file varchar, record_no bigint, start_at timestamptz)")
    conn.execute("insert into meta.files values ('cdrs/a.json', 'h1')")
    conn.execute("insert into staging.cdrs values ('cdrs/a.json', 1, '2026-11-16 23:00Z')")
    assert refresh_file_days(conn) == [D1]
    assert refresh_file_days(conn) == []  # same version: nothing new
    assert mark_reconciled(conn, [D1], as_of=pending_days(conn)[0][1]) == 1
    # corrected file: its record moved to the 17th; both the old and the new day re-open
    conn.execute("update meta.files set content_hash = 'h2'")
    conn.execute("update staging.cdrs set start_at = '2026-11-17 01:00Z'")
    assert refresh_file_days(conn) == [D1, D2]
    assert [d for d, _ in pending_days(conn)] == [D1, D2]
    assert contiguous([D3, D1, D2]) == [(D1, D3)]
    assert contiguous([D1, D3]) == [(D1, D1), (D3, D3)]


# --- a generated network ------------------------------------------------------------------

def _snapshot(warehouse: Path) -> dict[str, list]:
    with connect(warehouse, read_only=True) as conn:
        out = {}
        for table in COMPARED:
            schema, name = table.split(".")
            cols = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = $s and table_name = $n "
                "order by ordinal_position", {"s": schema, "n": name}).fetchall()]
            keep = ", ".join(f'"{c}"::varchar' for c in cols if c not in VOLATILE)
            out[table] = sorted(conn.execute(f"select {keep} from {table}").fetchall(), key=repr)
        out["pending"] = conn.execute("select day from meta.pending_days").fetchall()
        out["stashes"] = conn.execute(
            "select table_name from information_schema.tables where table_name like 'stash__%'").fetchall()
    return out


def _diff(got: dict, want: dict) -> dict:
    """Per table that differs: a few rows only in ``got`` and only in ``want``."""
    out = {}
    for table in want:
        a, b = set(got.get(table, [])), set(want[table])
        if a != b:
            out[table] = {"extra": sorted(a - b, key=repr)[:3], "missing": sorted(b - a, key=repr)[:3],
                          "n": (len(got.get(table, [])), len(want[table]))}
    return out


def _run(landing: Path, warehouse: Path, days=None):
    from pipeline.runner import run_pipeline

    result = run_pipeline(Settings.resolve(landing=landing, warehouse=warehouse), raise_on_error=False, days=days)
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    return result


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    subprocess.run([str(CHARGELINE), "generate", "--out", str(root / "g"), "--evses", "40", "--days", "2"],
                   check=True, capture_output=True, env={**os.environ, "CHARGELINE_REPORTS": str(root / "r")})
    landing, warehouse = root / "g" / "landing", root / "clean.duckdb"
    os.environ.setdefault("CHARGELINE_REPORTS", str(root / "reports"))
    started = time.monotonic()
    first = _run(landing, warehouse)
    return {"root": root, "landing": landing, "warehouse": warehouse, "seconds": time.monotonic() - started,
            "days": first.days, "snapshot": _snapshot(warehouse)}


def test_first_run_reconciles_every_day_of_data(network):
    snap = network["snapshot"]
    assert D1 in network["days"] and D2 in network["days"]
    assert snap["lineage.sessions"] and snap["recon.flags"]
    assert snap["pending"] == [] and snap["stashes"] == []


def test_rerun_is_idempotent_and_keeps_review_decisions(network, tmp_path):
    from pipeline.decisions import DecisionStore, store_path
    from pipeline.review import review_connection, set_status

    warehouse = copy_warehouse(network["warehouse"], tmp_path / "w.duckdb")
    store = DecisionStore(store_path(warehouse))
    with review_connection(warehouse, store) as conn:
        key = conn.execute("select review_key from recon.review order by money_at_risk desc limit 1").fetchone()[0]
        set_status(conn, key, "confirmed", note="checked with the partner", reviewer="t", store=store)
    # the decision shows in the warehouse after the next publish: a night with nothing new
    again = _run(network["landing"], warehouse)
    assert again.days == []  # nothing new: nothing to reconcile
    before = _snapshot(warehouse)
    assert _diff(before, network["snapshot"]) and not _diff(before, network["snapshot"]).keys() - {"recon.review"}
    # a forced backfill of every day writes the same rows and keys again
    _run(network["landing"], warehouse, days=(D1, D2))
    _run(network["landing"], warehouse, days=(D2, D2))
    _run(network["landing"], warehouse, days=(D1, D1))
    assert _diff(_snapshot(warehouse), before) == {}
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute("select status, note from recon.review where review_key = $k",
                            {"k": key}).fetchone() == ("confirmed", "checked with the partner")


def test_late_cdr_rematerializes_only_its_day(network, tmp_path):
    warehouse = copy_warehouse(network["warehouse"], tmp_path / "w.duckdb")
    landing = tmp_path / "landing"
    shutil.copytree(network["landing"], landing)
    with connect(warehouse, read_only=True) as conn:
        flagged_d2 = conn.execute(
            "select flag_id, flagged_at from recon.flags f join lineage.sessions s using (session_key) "
            "where s.started_at::date = $d order by all", {"d": D2}).fetchall()
        sessions_d1 = conn.execute("select count(*) from lineage.sessions where started_at::date = $d",
                                   {"d": D1}).fetchone()[0]
    # a CDR two days late for the 16th: a session nobody else knows about
    day_file = next(p for p in sorted((landing / "cdrs").rglob("*.json")) if D1.isoformat() in p.name)
    cdr = json.loads(day_file.read_text())[0]
    cdr |= {"id": "CDR-LATE-1", "session_id": "late-session-1",
            "start_date_time": "2026-11-16T21:00:00Z", "end_date_time": "2026-11-16T22:00:00Z"}
    (landing / "cdrs" / "late").mkdir()
    (landing / "cdrs" / "late" / "2026-11-18.json").write_text(json.dumps([cdr]))

    result = _run(landing, warehouse)
    assert result.days == [D1]
    assert [name for name, _ in result.runs] == ["ingest", f"{D1}..{D1}"]
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute("select count(*) from lineage.sessions where cdr_id = 'CDR-LATE-1'").fetchone()[0] == 1
        assert conn.execute("select count(*) from lineage.sessions where started_at::date = $d",
                            {"d": D1}).fetchone()[0] == sessions_d1 + 1
        # the other day was not rewritten: same findings, stamped at the same instant
        assert conn.execute(
            "select flag_id, flagged_at from recon.flags f join lineage.sessions s using (session_key) "
            "where s.started_at::date = $d order by all", {"d": D2}).fetchall() == flagged_d2
        assert conn.execute("select count(*) from meta.pending_days").fetchone()[0] == 0


def _kill_at(landing: Path, warehouse: Path, after_s: float) -> bool:
    """Start ``chargeline run`` and SIGKILL it ``after_s`` seconds in; whether it was still running."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(CHARGELINE), "run", "--landing", str(landing), "--warehouse", str(warehouse)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        proc.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_runs_resume_to_the_state_of_a_clean_run(network, tmp_path):
    """Kill at several points (mid-ingest, mid-staging, mid-lineage/checks), then run to the end."""
    clean = network["snapshot"]
    total = network["seconds"] + 3.0  # the subprocess also imports Dagster (~3 s)
    warehouse = tmp_path / "w.duckdb"
    killed = []
    for fraction in (0.2, 0.45, 0.75):
        killed.append(_kill_at(network["landing"], warehouse, total * fraction))
    assert any(killed), "the runs finished before they could be killed"
    subprocess.run([str(CHARGELINE), "run", "--landing", str(network["landing"]), "--warehouse", str(warehouse)],
                   check=True, capture_output=True)
    assert _diff(_snapshot(warehouse), clean) == {}


def test_sensor_ingests_new_files_then_requests_each_queued_day(network, tmp_path):
    import dagster as dg

    from pipeline.schedules import evaluate_landing, yesterday

    warehouse = copy_warehouse(network["warehouse"], tmp_path / "w.duckdb")
    assert isinstance(evaluate_landing(network["landing"], warehouse), dg.SkipReason)
    landing = tmp_path / "landing"
    shutil.copytree(network["landing"], landing)
    (landing / "cdrs" / "late.json").write_text(json.dumps([{"id": "X", "start_date_time": "2026-11-17T01:00:00Z"}]))
    (request,) = evaluate_landing(landing, warehouse)
    assert request.job_name == "ingest"
    with connect(work_file(warehouse)) as conn:  # what the ingest run leaves behind: a queued day
        conn.execute("insert into meta.pending_days values ($d, now())", {"d": D2})
    requests = evaluate_landing(network["landing"], warehouse)
    assert [(r.job_name, r.partition_key) for r in requests] == [("reconcile", D2.isoformat())]
    assert yesterday(datetime(2026, 11, 18, 4, 30, tzinfo=UTC)) == "2026-11-17"
