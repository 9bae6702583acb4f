"""A reconcile run that fails for one range of days does not stop the other ranges.

The sample landing folder (sessions of 2026-11-20) plus a late CDR of 2019-03-10 make two
ranges. The 2019 run is pointed at an empty warehouse, so its steps really fail (no staged
tables there); the 2026 run must still be made and reconcile its days, the 2019 day stays
queued for the next night, and ``chargeline run`` says which run and step failed.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb

import pipeline.runner as runner
from pipeline.cli import main as chargeline
from pipeline.day_partitions import TAG_RANGE_START
from pipeline.sample import write_sample

OLD = date(2019, 3, 10)


def test_a_failed_range_leaves_its_days_queued_and_the_others_reconciled(landing, warehouse_path, tmp_path,
                                                                          monkeypatch, capsys):
    write_sample(landing)
    cdrs = landing / "cdrs" / "cdrs-2026-11-20.json"
    late = json.loads(cdrs.read_text())[0]
    late |= {"id": "CDR-2019-1", "session_id": "s-2019-1",
             "start_date_time": "2019-03-10T08:00:00Z", "end_date_time": "2019-03-10T09:00:00Z"}
    (landing / "cdrs" / "cdrs-2019-03-10.json").write_text(json.dumps([late]))
    monkeypatch.setenv("CHARGELINE_REPORTS", str(tmp_path / "reports"))

    real = runner._materialize

    def crash_2019(settings, keys, tags, *args):
        if tags and tags.get(TAG_RANGE_START) == OLD.isoformat():
            settings = dataclasses.replace(settings, warehouse=tmp_path / "empty" / "w.duckdb")
        return real(settings, keys, tags, *args)

    monkeypatch.setattr(runner, "_materialize", crash_2019)
    code = chargeline(["run", "--landing", str(landing), "--warehouse", str(warehouse_path)])
    err = capsys.readouterr().err
    assert code == 1  # a crashed step is a defect, not data: reported, but the night went on
    assert f"run {OLD}..{OLD} failed in: " in err
    assert "reconciled days: 2019-03-10 .. 2026-11-20 (3 days, 2 runs)" in err
    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        pending = [r[0] for r in conn.execute("select day from meta.pending_days order by day").fetchall()]
        sessions = conn.execute("select count(*) from lineage.sessions "
                                "where cast(started_at as date) = '2026-11-20'").fetchone()[0]
    assert pending == [OLD]
    assert sessions == 3

    # the next night (nothing crashes) reconciles the day that was left
    monkeypatch.setattr(runner, "_materialize", real)
    assert chargeline(["run", "--landing", str(landing), "--warehouse", str(warehouse_path)]) == 0
    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        assert conn.execute("select count(*) from meta.pending_days").fetchone()[0] == 0
        assert conn.execute("select count(*) from lineage.sessions where cdr_id = 'CDR-2019-1'").fetchone()[0] == 1
