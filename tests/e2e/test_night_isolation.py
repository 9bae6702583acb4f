"""A night in a child process, as the batch runs it: readers, clerks, parallel days, kill -9.

Each test runs ``chargeline run`` as a subprocess on a small generated network and
compares published tables. Equality is on what users read: row counts of every
published table (the matching internals excepted: they hold the last run's window), the
session keys and the findings (id, check, severity, money at risk).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.engine import LATEST_RUN

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(tmp / "dagster_home")
    (tmp / "dagster_home").mkdir(exist_ok=True)
    (tmp / "dagster_home" / "dagster.yaml").touch()
    env.pop("CHARGELINE_WAREHOUSE", None)
    env.pop("CHARGELINE_REVIEW_STORE", None)
    return env


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("net")
    subprocess.run(_cli("generate", "--out", str(out), "--evses", "40", "--days", "3", "--seed", "21",
                        "--start", "2026-06-01", "--quiet"), check=True, cwd=ROOT, env=_env(out))
    return out


def _run(landing: Path, warehouse: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_cli("run", "--landing", str(landing), "--warehouse", str(warehouse), *extra),
                            cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]


def published(warehouse: Path) -> dict:
    """What users read of a warehouse: counts per table, session keys, findings."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = [f"{s}.{n}" for s, n in conn.execute(
            "select schema_name, view_name from duckdb_views() where not internal "
            "and schema_name not in ('main', 'meta', 'information_schema', 'pg_catalog')").fetchall()]
        counts = {t: conn.execute(f"select count(*) from {t}").fetchall()[0][0]
                  for t in sorted(tables) if t not in LATEST_RUN}
        sessions = sorted(r[0] for r in conn.execute("select session_key from lineage.sessions").fetchall())
        flags = sorted(conn.execute(
            'select flag_id, "check", severity, round(money_at_risk, 4) from recon.flags').fetchall(), key=str)
    return {"counts": counts, "sessions": sessions, "flags": flags}


@pytest.fixture(scope="module")
def serial(network, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("serial")
    wh = tmp / "warehouse.duckdb"
    proc = subprocess.run(_cli("run", "--landing", str(network / "landing"), "--warehouse", str(wh)),
                          cwd=ROOT, env=_env(tmp), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("reconciled days:"))
    first, last = line.split(":", 1)[1].split("(")[0].split("..")
    return {**published(wh), "days": (first.strip(), last.strip())}


def test_serial_run_publishes_sessions_and_findings(serial):
    assert serial["days"][0] < serial["days"][1]
    assert serial["sessions"] and serial["flags"]
    assert serial["counts"]["lineage.sessions"] == len(serial["sessions"])


def test_clerk_and_analyst_work_while_a_night_runs(network, tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    landing = network / "landing"
    _finish(_run(landing, wh, tmp_path))
    with duckdb.connect(str(wh), read_only=True) as conn:
        key = conn.execute("select review_key from recon.review order by money_at_risk desc, review_key "
                           "limit 1").fetchall()[0][0]
    proc = _run(landing, wh, tmp_path, "--from", "2026-06-01", "--to", "2026-06-03")
    try:
        # wait until the night is past its start-up and holds its files
        deadline = time.monotonic() + 120
        while not (tmp_path / "warehouse.engines").exists() or not any((tmp_path / "warehouse.engines").iterdir()):
            assert proc.poll() is None, "the night ended before a reader could try"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        setter = subprocess.run(_cli("review", "set", key, "--status", "confirmed", "--note", "during the night",
                                     "--reviewer", "clerk", "--warehouse", str(wh)),
                                cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
        with duckdb.connect(str(wh), read_only=True) as conn:
            n_flags = conn.execute("select count(*) from recon.flags").fetchall()[0][0]
        still_running = proc.poll() is None
    finally:
        _finish(proc)
    assert setter.returncode == 0, setter.stderr
    assert n_flags > 0
    assert still_running, "the reader and the clerk must have worked while the night ran"

    def status() -> tuple:
        with duckdb.connect(str(wh), read_only=True) as conn:
            return conn.execute("select status, reviewer, note from recon.review where review_key = $k",
                                {"k": key}).fetchall()[0]

    assert status() == ("confirmed", "clerk", "during the night")
    # a full rerun: every day again from the same landing
    _finish(_run(landing, wh, tmp_path, "--from", "2026-05-31", "--to", "2026-06-04"))
    assert status() == ("confirmed", "clerk", "during the night")
    with duckdb.connect(str(wh), read_only=True) as conn:
        assert conn.execute("select count(*) from recon.review_log where review_key = $k",
                            {"k": key}).fetchall()[0][0] == 1


def test_two_days_in_two_processes_equal_a_serial_run(network, serial, tmp_path):
    first, last = serial["days"]

    d0, d1 = date.fromisoformat(first), date.fromisoformat(last)
    middle = d0 + timedelta(days=(d1 - d0).days // 2)
    wh = tmp_path / "warehouse.duckdb"
    a = _run(network / "landing", wh, tmp_path, "--from", first, "--to", middle.isoformat(), "--only")
    b = _run(network / "landing", wh, tmp_path, "--from", (middle + timedelta(days=1)).isoformat(), "--to", last,
             "--only")
    _finish(a)
    _finish(b)
    got = {**published(wh), "days": serial["days"]}
    assert got["sessions"] == serial["sessions"]
    assert got["flags"] == serial["flags"]
    assert got["counts"] == serial["counts"]


@pytest.mark.parametrize("when", ["ingest", "reconcile"])
def test_kill_9_then_rerun_equals_an_uninterrupted_run(network, serial, tmp_path, when):
    wh = tmp_path / "warehouse.duckdb"
    proc = _run(network / "landing", wh, tmp_path)
    engines = tmp_path / "warehouse.engines"
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, f"the night ended before it could be killed during {when}"
        assert time.monotonic() < deadline
        if when == "ingest" and (tmp_path / "warehouse.work.duckdb").exists():
            time.sleep(1.0)  # into the loading of files
            break
        if when == "reconcile" and engines.exists() and any(engines.glob("*.ready")):
            time.sleep(1.0)  # into the day run's steps
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _finish(_run(network / "landing", wh, tmp_path))
    assert {**published(wh), "days": serial["days"]} == serial
    # the killed run's engine file is gone too
    assert not list(engines.glob("*.duckdb")) if engines.exists() else True
