"""The official OCPI 2.2.1 and 2.3.0 examples ingest; their known defects become warnings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assets.staging import stage_all
from pipeline.config import load_options
from pipeline.ingest.run import ingest_landing
from pipeline.quarantine import file_accounting
from pipeline.warehouse import connect

OCPI = Path(__file__).resolve().parent.parent / "fixtures" / "external" / "ocpi"
FOLDERS = {"cdrs": "cdr_*.json", "tariffs": "tariff*.json", "locations": "location_*.json",
           "tokens": "t*_*.json"}


def _stage(tmp_path: Path, version_dir: Path):
    landing = tmp_path / "landing"
    for source, pattern in FOLDERS.items():
        (landing / source).mkdir(parents=True)
        for f in version_dir.glob(pattern):
            shutil.copy(f, landing / source / f.name)
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, landing, load_options()["ingest"])
    stage_all(conn, load_options())
    return conn


@pytest.mark.parametrize("version_dir", [OCPI, OCPI / "2.3.0"], ids=["2.2.1", "2.3.0"])
def test_examples_balance_and_every_reject_has_a_reason(tmp_path, version_dir):
    conn = _stage(tmp_path, version_dir)
    for source in FOLDERS:
        acc = file_accounting(conn, source)
        assert acc.height > 0 and acc.get_column("balanced").all(), acc
    assert conn.sql("select count(*) from quarantine.rejects where len(reasons) = 0").fetchall()[0][0] == 0


def test_cdr_example_221_warns_about_its_known_defects(tmp_path):
    conn = _stage(tmp_path, OCPI)
    (version, total, warnings) = conn.sql(
        "select ocpi_version, total_cost_incl_vat, dq_warnings from staging.cdrs where cdr_id = '12345'").fetchall()[0]
    assert version == "2.2.1" and total == 4.40
    assert "last_updated before end_date_time" in warnings
    assert "coordinates: latitude and longitude look swapped" in warnings


def test_cdr_example_230_price_with_taxes(tmp_path):
    conn = _stage(tmp_path, OCPI / "2.3.0")
    row = conn.sql("select ocpi_version, total_cost_excl_vat, total_cost_incl_vat, total_time_cost_excl_vat "
                   "from staging.cdrs").fetchall()
    assert row == [("2.3.0", 4.0, 4.4, 4.0)]


def test_locations_tokens_and_tariffs_stage(tmp_path):
    conn = _stage(tmp_path, OCPI)
    evses = conn.sql("select location_id, evse_uid, status, connectors->0->>'max_amperage' from "
                     "staging.location_evse_status where location_id = 'LOC1' order by evse_uid").fetchall()
    assert evses == [("LOC1", "3256", "AVAILABLE", "16.0"), ("LOC1", "3257", "RESERVED", "16.0")]
    rejected = dict(conn.sql("select source_file, reasons from quarantine.rejects").fetchall())
    assert "not a Location object (no id, no evses)" in rejected["locations/location_patch_example_status.json"]
    assert "token_uid_hash:not_nullable" in rejected["tokens/token_patch_example.json"]
    assert conn.sql("select count(*) from staging.tokens").fetchall()[0][0] == 6
    assert conn.sql("select count(distinct tariff_id) from staging.tariff_versions").fetchall()[0][0] >= 10
