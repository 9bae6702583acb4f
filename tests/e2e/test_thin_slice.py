"""The thin slice: sample files -> raw tables, counts equal to what the files hold."""

import json

from pipeline.config import Settings
from pipeline.runner import run_pipeline
from pipeline.sample import write_sample
from pipeline.warehouse import connect


def _file_records(landing):
    """Records per file counted independently of the loaders."""
    counts = {}
    for path in landing.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(landing).as_posix()
        text = path.read_text()
        if path.suffix == ".csv":
            counts[rel] = len(text.strip().splitlines()) - 1
        elif path.suffix == ".jsonl":
            counts[rel] = len(text.strip().splitlines())
        else:
            doc = json.loads(text)
            counts[rel] = len(doc) if isinstance(doc, list) else 1
    return counts


def test_slice_loads_every_record(landing, warehouse_path):
    write_sample(landing)
    settings = Settings.resolve(landing=landing, warehouse=warehouse_path)
    assert run_pipeline(settings).success
    with connect(warehouse_path) as conn:
        loaded = dict(conn.execute("select source_file, records_loaded from meta.files").fetchall())
        frames = conn.execute("select count(*) from raw.ocpp_frames").fetchone()[0]
        rejects = conn.execute("select count(*) from quarantine.rejects").fetchone()[0]
    assert loaded == _file_records(landing)
    assert frames == 12
    assert rejects == 0


def test_rerun_skips_unchanged_and_replaces_changed(landing, warehouse_path):
    write_sample(landing)
    settings = Settings.resolve(landing=landing, warehouse=warehouse_path)
    run_pipeline(settings)
    run_pipeline(settings)
    with connect(warehouse_path) as conn:
        assert conn.execute("select count(*) from raw.cdrs").fetchone()[0] == 3
    cdrs = landing / "cdrs/cdrs-2026-11-20.json"
    cdrs.write_text(json.dumps(json.loads(cdrs.read_text())[:2]))
    run_pipeline(settings)
    with connect(warehouse_path) as conn:
        assert conn.execute("select count(*) from raw.cdrs").fetchone()[0] == 2
        assert conn.execute("select count(*) from raw.ocpp_frames").fetchone()[0] == 12
