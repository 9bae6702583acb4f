"""The broken-input corpus: every record staged or rejected, exactly as expected, per file."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.staging import stage_all
from pipeline.config import load_options
from pipeline.ingest.run import ingest_landing
from pipeline.quarantine import file_accounting
from pipeline.warehouse import connect

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "broken" / "landing"

# source_file: (records read, staged, rejected). Why each record lands where it does is in
# tests/fixtures/broken/README.md.
EXPECTED = {
    "registry/sites.csv": (4, 1, 3),          # CRLF; bad zone, unknown site_type, duplicate
    "registry/evses.csv": (4, 2, 2),          # BOM; connector 'x', missing site_id
    "backend/sessions.csv": (11, 2, 9),
    "backend/empty.csv": (1, 0, 1),           # whole file: one record, one reject
    "backend/binary.csv": (1, 0, 1),
    "backend/invalid_utf8.csv": (2, 1, 1),
    "cdrs/cdrs.jsonl": (10, 3, 7),
    "cdrs/truncated.json": (1, 0, 1),
    "cdrs/huge.jsonl": (1, 0, 1),             # one 10 MB line, generated
    "tariffs/tariffs.json": (4, 2, 2),
    "ems/site1.csv": (6, 3, 3),
    "locations/locations.json": (3, 1, 2),
    "tokens/tokens.json": (5, 2, 3),
}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    landing = root / "landing"
    shutil.copytree(CORPUS, landing)
    (landing / "cdrs" / "huge.jsonl").write_bytes(b'{"id": "' + b"x" * 10_000_000 + b"\n")
    conn = connect(root / "w.duckdb")
    options = load_options()
    ingest_landing(conn, landing, options["ingest"])
    stage_all(conn, options)
    yield conn
    conn.close()


def _accounting(conn):
    rows = []
    for source in ("registry", "backend", "cdrs", "tariffs", "ems", "locations", "tokens"):
        rows += file_accounting(conn, source).iter_rows(named=True)
    return {r["source_file"]: r for r in rows}


@pytest.mark.parametrize("source_file", sorted(EXPECTED))
def test_each_file_stages_and_rejects_exactly(staged, source_file):
    acc = _accounting(staged)[source_file]
    assert (acc["records_read"], acc["records_staged"], acc["records_rejected"]) == EXPECTED[source_file]
    assert acc["balanced"]


def test_every_ingested_file_is_expected(staged):
    assert set(_accounting(staged)) == set(EXPECTED)


def test_meta_files_carries_the_staged_counts(staged):
    rows = staged.sql("select source_file, records_read, records_staged, records_rejected from meta.files").fetchall()
    assert {r[0]: tuple(r[1:]) for r in rows} == EXPECTED


def test_huge_line_reject_keeps_a_cut_raw_text(staged):
    (length,) = staged.sql("select length(raw) from quarantine.rejects where source_file = 'cdrs/huge.jsonl'"
                           ).fetchall()[0]
    assert length <= 2000


def test_reasons_name_what_failed(staged):
    reasons = dict(staged.sql("select source_file || ':' || record_no, reasons from quarantine.rejects "
                              "where record_no is not null").fetchall())
    assert reasons["backend/sessions.csv:8"] == ["started_at:plausible_time", "stopped_at:plausible_time"]
    assert reasons["backend/sessions.csv:4"] == ["started_at: not an ISO 8601 timestamp", "started_at:not_nullable"]
    assert reasons["backend/sessions.csv:5"] == ["energy_kwh: not a number", "energy_required_once_stopped"]
    assert reasons["backend/sessions.csv:7"] == ["stopped_at_not_before_started_at"]
    assert reasons["tokens/tokens.json:5"] == ["last_updated_at:plausible_time"]
    assert any(r.startswith("status:isin") for r in reasons["locations/locations.json:2"])
    assert any(r.startswith("dimension:isin") for r in reasons["cdrs/cdrs.jsonl:5"])


def test_offsets_with_and_without_colon_and_local_time(staged):
    rows = dict(staged.sql("select session_id, started_at from staging.backend_sessions").fetchall())
    assert rows["B-1"] == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)        # +0000
    assert rows["B-2"] == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)        # naive, Europe/Amsterdam
    (energy,) = staged.sql("select energy_kwh from staging.backend_sessions where session_id = 'B-2'").fetchall()[0]
    assert energy == 5.0                                                  # energy_wh 5000
    ems = staged.sql("select interval_start_at, interval_end_at from staging.ems_intervals "
                     "order by interval_start_at").fetchall()
    assert [(a.hour, a.minute, b.hour, b.minute) for a, b in ems] == [(7, 15, 7, 30), (8, 0, 8, 15), (9, 30, 9, 45)]


def test_cdr_versions_credit_and_no_raw_uid(staged):
    rows = {r[0]: r[1:] for r in staged.sql(
        "select cdr_id, ocpi_version, credit, credited_by_cdr_id, total_cost_excl_vat, token_uid_hash, "
        "cdr_json::varchar from staging.cdrs").fetchall()}
    assert set(rows) == {"C-1", "C-211", "C-1-CR"}
    assert rows["C-211"][:2] == ("2.1.1", False) and rows["C-211"][3] == 1.5
    assert rows["C-1"][2] == "C-1-CR" and rows["C-1-CR"][1] is True
    assert all("TAG1" not in r[5] for r in rows.values())
    assert len(rows["C-1"][4]) == 32
    periods = staged.sql("select cdr_id, period_no, dimension, volume from staging.cdr_charging_periods "
                         "where cdr_id = 'C-1'").fetchall()
    assert sorted(periods) == [("C-1", 1, "ENERGY", 11.0), ("C-1", 1, "TIME", 1.0)]


def test_tariff_versions_hand_over(staged):
    rows = staged.sql("select last_updated_at, valid_from_at, valid_to_at from staging.tariff_versions "
                      "order by valid_from_at").fetchall()
    assert rows[0][2] == datetime(2026, 7, 1, tzinfo=UTC) == rows[1][1]
    assert rows[1][2] is None
