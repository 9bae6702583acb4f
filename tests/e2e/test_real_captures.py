"""Whole nights over real third-party data: the Grizzl-E OCPP capture (2023) and the
ChargeMap OCPI 2.1.1 payloads (2015..2020).

The Grizzl-E night runs ``chargeline run`` in a subprocess, as an operator would; the mixed
landing holds files on days years apart (2015..2023), each reconciled in its own day-range
run. The same captures are reconciled in process, without
the runner, in tests/assets/test_capture_grizzl_e.py and test_staging_ocpi_chargemap.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.runner import run_pipeline
from pipeline.warehouse import connect

EXTERNAL = Path(__file__).resolve().parent.parent / "fixtures" / "external"
GRIZZL_E = EXTERNAL / "levity-grizzl-e" / "test_messages.txt"
V211 = EXTERNAL / "chargemap-ocpi-2.1.1" / "tests" / "Versions" / "V2_1_1"


def test_chargeline_run_on_the_grizzl_e_capture(landing, warehouse_path):
    ocpp = landing / "ocpp" / "levity" / "03.00003282c"
    ocpp.mkdir(parents=True)
    shutil.copy(GRIZZL_E, ocpp / "test_messages.jsonl")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--landing", str(landing), "--warehouse", str(warehouse_path)],
        env=os.environ, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with connect(warehouse_path) as conn:
        files = conn.execute("select records_read, records_loaded, records_rejected from meta.files").fetchall()
        sessions = conn.execute("select ocpp_transaction_id, ocpp_energy_kwh from lineage.sessions").fetchall()
        checks = dict(conn.execute('select "check", count(*) from recon.flags group by all').fetchall())
    assert files == [(8, 8, 0)]
    assert sessions == [("1", pytest.approx(40.33))]
    assert checks == {"charger_clock_skew": 1, "missing_backend_session": 1}


def test_a_night_over_real_captures(landing, warehouse_path):
    ocpp = landing / "ocpp" / "levity" / "03.00003282c"
    ocpp.mkdir(parents=True)
    shutil.copy(GRIZZL_E, ocpp / "test_messages.jsonl")
    for source, files in (
        ("cdrs", [V211 / "Common/Factories/Payloads/Cdr/2dafe2cf-cbd7-4430-9a1a-c9b01abac372.json",
                  V211 / "Server/Emsp/Cdrs/Post/payloads/ok_cdr_full_payload.json"]),
        ("locations", [V211 / "Client/Locations/GetListing/payloads/Valid/real_sample.json",
                       *sorted((V211 / "Server/Emsp/Locations").rglob("*.json"))]),
    ):
        (landing / source).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, landing / source / f.name)
    result = run_pipeline(Settings.resolve(landing=landing, warehouse=warehouse_path))
    assert result.success
    with connect(warehouse_path) as conn:
        unbalanced = conn.execute(
            "select count(*) from meta.files where records_read <> records_staged + records_rejected").fetchone()[0]
        sessions = conn.execute(
            "select ocpp_transaction_id, ocpp_energy_kwh, cdr_id from lineage.sessions order by cdr_id nulls first"
        ).fetchall()
        checks = dict(conn.execute('select "check", count(*) from recon.flags group by all').fetchall())
    assert unbalanced == 0
    assert sessions == [("1", pytest.approx(40.33), None), (None, None, "12345"),
                        (None, None, "2dafe2cf-cbd7-4430-9a1a-c9b01abac372")]
    assert checks == {"charger_clock_skew": 1, "missing_backend_session": 1, "orphan_cdr": 2}
