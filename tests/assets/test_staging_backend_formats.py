"""Backend exports in the shapes of the field: CSV dialects, per-source maps, SteVe, latest wins."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.staging import stage_source
from pipeline.config import load_options
from pipeline.ingest.run import ingest_landing
from pipeline.quarantine import file_accounting
from pipeline.warehouse import connect
from tests.fixtures.ocpp.frames import rows

EXTERNAL = Path(__file__).resolve().parent.parent / "fixtures" / "external"
STEVE = EXTERNAL / "steve-export-vn" / "transaction_slice.csv"
RISVOLLAN = EXTERNAL / "risvollan-trondheim-residential" / "charging_reports_slice.csv"


def _run(tmp_path: Path, files: dict[str, str | bytes | Path], sources: dict | None = None, mtimes=None):
    landing = tmp_path / "landing"
    for rel, content in files.items():
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        if mtimes and rel in mtimes:
            os.utime(path, (mtimes[rel], mtimes[rel]))
    options = load_options()
    if sources is not None:
        options["ingest"]["sources"] = options["ingest"].get("sources", {}) | sources
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, landing, options["ingest"])
    stage_source(conn, "registry", options)
    stage_source(conn, "backend", options)
    return conn


def _balanced(conn) -> dict:
    acc = {r["source_file"]: r for r in file_accounting(conn, "backend").iter_rows(named=True)}
    assert all(r["balanced"] for r in acc.values()), acc
    return acc


def _reasons(conn, rel: str) -> dict[int, list[str]]:
    return {r["record_no"]: r["reasons"] for r in rows(
        conn, "select record_no, reasons from quarantine.rejects where source_file = $f", f=rel)}


STEVE_SOURCE = {"vn": {"glob": "backend/vn/*", "columns": {"connector_pk": "charge_point_id"},
                       "constants": {"connector_id": "1"}}}


def test_steve_export_is_recognised_and_every_row_accounted(tmp_path):
    conn = _run(tmp_path, {"backend/vn/transaction_fully_202508221207.csv": STEVE}, STEVE_SOURCE)
    acc = _balanced(conn)["backend/vn/transaction_fully_202508221207.csv"]
    assert acc["records_read"] == 45
    staged = {r["session_id"]: r for r in rows(conn, "select * from staging.backend_sessions")}
    first = staged["383"]
    assert first["transaction_id"] == "383" and first["charge_point_id"] == "8346"
    # m/d/yyyy h:mm read month-first (the file has days above 12), no zone: read as UTC
    assert first["started_at"] == datetime(2023, 6, 9, 8, 41, tzinfo=UTC)
    assert first["stopped_at"] == datetime(2023, 6, 9, 8, 43, tzinfo=UTC)
    assert first["energy_kwh"] == pytest.approx(7.0)  # stop_value - start_value, Wh
    open_tx = staged["35364"]
    assert open_tx["stopped_at"] is None and open_tx["energy_kwh"] is None
    reasons = _reasons(conn, "backend/vn/transaction_fully_202508221207.csv")
    # stop_timestamp '16:01.0': the spreadsheet lost the date; the row is kept with its reason
    assert any("stopped_at: not an ISO 8601 timestamp" in r for r in reasons.values())
    # start_value 2147483647 then stop_value 44: negative energy is refused, not staged
    int32 = rows(conn, "select count(*) as n from raw.backend_sessions where meter_start_wh = '2147483647'")[0]["n"]
    assert int32 == 3 and not any(s["energy_kwh"] is not None and s["energy_kwh"] < 0 for s in staged.values())
    assert len(staged) + len(reasons) == 45


def test_steve_without_charger_column_is_rejected_for_it_not_guessed(tmp_path):
    conn = _run(tmp_path, {"backend/other/t.csv": STEVE})
    acc = _balanced(conn)["backend/other/t.csv"]
    assert acc["records_staged"] == 0 and acc["records_rejected"] == 45
    assert all(any(r.startswith("charge_point_id") for r in rs)
               for rs in _reasons(conn, "backend/other/t.csv").values())


def test_joined_steve_export_needs_no_configuration(tmp_path):
    csv = ("transaction_pk,connector_pk,charge_box_id,connector_id,id_tag,start_timestamp,start_value,"
           "stop_timestamp,stop_value\n"
           "7,1,CB-1,2,T,2024-03-01 10:00:00,1000,2024-03-01 11:00:00,12500\n")
    conn = _run(tmp_path, {"backend/steve/x.csv": csv})
    (s,) = rows(conn, "select session_id, transaction_id, charge_point_id, connector_id, energy_kwh "
                      "from staging.backend_sessions")
    assert s == {"session_id": "7", "transaction_id": "7", "charge_point_id": "CB-1", "connector_id": 2,
                 "energy_kwh": pytest.approx(11.5)}


RISVOLLAN_SOURCE = {"risvollan": {
    "glob": "backend/risvollan/*",
    "columns": {"user_id": "charge_point_id", "start_plugin": "started_at", "end_plugout": "stopped_at",
                "el_kwh": "energy_kwh"},
    "constants": {"connector_id": "1"},
}}


def test_semicolon_decimal_comma_day_first_export(tmp_path):
    conn = _run(tmp_path, {"backend/risvollan/reports.csv": RISVOLLAN}, RISVOLLAN_SOURCE)
    acc = _balanced(conn)["backend/risvollan/reports.csv"]
    assert (acc["records_read"], acc["records_staged"], acc["records_rejected"]) == (28, 28, 0)
    staged = {r["session_id"]: r for r in rows(conn, "select * from staging.backend_sessions")}
    s1 = staged["1"]
    assert s1["charge_point_id"] == "AdO3-4" and s1["energy_kwh"] == pytest.approx(0.3)
    assert s1["started_at"] == datetime(2018, 12, 21, 10, 20, tzinfo=UTC)
    assert staged["3"]["energy_kwh"] == pytest.approx(29.87)
    # 'NA' plug-out: a session with energy whose stop was never recorded
    assert staged["5052"]["stopped_at"] is None and staged["5052"]["energy_kwh"] == pytest.approx(22.73)


def test_configured_dialect_wins_over_detection(tmp_path):
    # a comma file whose amounts use a decimal comma inside quotes: detection keeps the
    # point (the file is comma-separated); the source says otherwise
    csv = ('session_id,charge_point_id,connector_id,started_at,stopped_at,energy_kwh\n'
           'S1,CP,1,2026-01-05T10:00:00Z,2026-01-05T11:00:00Z,"12,5"\n')
    assert rows(_run(tmp_path / "a", {"backend/a/x.csv": csv}), "select count(*) as n from staging.backend_sessions"
                )[0]["n"] == 0
    conn = _run(tmp_path / "b", {"backend/a/x.csv": csv}, {"a": {"glob": "backend/a/*", "decimal": ","}})
    assert rows(conn, "select energy_kwh from staging.backend_sessions")[0]["energy_kwh"] == pytest.approx(12.5)


def test_quoted_newlines_bom_and_tab_delimiter(tmp_path):
    tab = ("\ufeffsession_id\tcharge_point_id\tconnector_id\tstarted_at\tstopped_at\tenergy_kwh\tstatus\n"
           'S1\tCP\t1\t2026-01-05T10:00:00Z\t2026-01-05T11:00:00Z\t3\t"COMPLETED\nafter a retry"\n'
           "S2\tCP\t1\t2026-01-05T12:00:00Z\t2026-01-05T13:00:00Z\t4\tCOMPLETED\n")
    conn = _run(tmp_path, {"backend/t/x.csv": tab.encode("utf-8")})
    acc = _balanced(conn)["backend/t/x.csv"]
    assert (acc["records_read"], acc["records_staged"]) == (2, 2)
    got = {r["session_id"]: r["record_no"] for r in rows(conn, "select session_id, record_no from "
                                                         "staging.backend_sessions")}
    assert got == {"S1": 2, "S2": 4}  # a record is numbered by the line it starts on


def test_a_stray_quote_does_not_swallow_the_rows_after_it(tmp_path):
    csv = ('session_id,charge_point_id,connector_id,started_at,stopped_at,energy_kwh\n'
           'S1,CP,1,2026-01-05T10:00:00Z,"2026-01-05T11:00:00Z,1\n'
           'S2,CP,1,2026-01-05T12:00:00Z,2026-01-05T13:00:00Z,2\n'
           'S3,CP,1,2026-01-05T14:00:00Z,2026-01-05T15:00:00Z,3\n')
    conn = _run(tmp_path, {"backend/q/x.csv": csv})
    acc = _balanced(conn)["backend/q/x.csv"]
    assert (acc["records_read"], acc["records_staged"], acc["records_rejected"]) == (3, 2, 1)
    assert list(_reasons(conn, "backend/q/x.csv")) == [2]


def test_ambiguous_day_month_order_is_rejected_naming_the_setting(tmp_path):
    csv = ("session_id;charge_point_id;connector_id;started_at;stopped_at;energy_kwh\n"
           "S1;CP;1;05.01.2026 10:00;05.01.2026 11:00;1\n"
           "S2;CP;1;06/01/2026 10:00;06/01/2026 11:00;1\n")
    conn = _run(tmp_path, {"backend/amb/x.csv": csv})
    reasons = _reasons(conn, "backend/amb/x.csv")
    assert reasons[3] == ["timestamp day/month order ambiguous: set timestamp_format for this source"]
    raw = rows(conn, "select raw from quarantine.rejects where record_no = 3")[0]["raw"]
    assert raw == "S2;CP;1;06/01/2026 10:00;06/01/2026 11:00;1"  # the line as written
    fixed = _run(tmp_path / "fixed", {"backend/amb/x.csv": csv},
                 {"amb": {"glob": "backend/amb/*", "timestamp_format": "%d/%m/%Y %H:%M"}})
    got = {r["session_id"]: r["started_at"] for r in rows(fixed, "select * from staging.backend_sessions")}
    assert got["S2"] == datetime(2026, 1, 6, 10, tzinfo=UTC)


def test_partner_map_applies_to_its_folder_only(tmp_path):
    partner = ("SessionRef,StationID,Port,StartLocal,EndLocal,EnergyWh\n"
               "P1,CP,1,2026-01-05 10:00:00,2026-01-05 11:00:00,5000\n")
    conn = _run(tmp_path, {"backend/partner_depotnet/a.csv": partner, "backend/elsewhere/a.csv": partner})
    acc = _balanced(conn)
    assert acc["backend/partner_depotnet/a.csv"]["records_staged"] == 1
    assert acc["backend/elsewhere/a.csv"]["records_staged"] == 0  # no map for that partner


HEAD = "session_id,charge_point_id,connector_id,started_at,stopped_at,energy_kwh"


def test_latest_export_wins_by_file_time_not_name(tmp_path):
    older = f"{HEAD}\nS1,CP,1,2026-01-05T10:00:00Z,2026-01-05T11:00:00Z,5\n"
    newer = f"{HEAD}\nS1,CP,1,2026-01-05T10:00:00Z,2026-01-05T11:00:00Z,6\n"
    # the corrected export sorts first by name: the old rule kept the stale one
    conn = _run(tmp_path, {"backend/x/export_b.csv": older, "backend/x/export_a.csv": newer},
                mtimes={"backend/x/export_b.csv": 1_700_000_000, "backend/x/export_a.csv": 1_700_086_400})
    (s,) = rows(conn, "select energy_kwh, source_file from staging.backend_sessions")
    assert s == {"energy_kwh": pytest.approx(6), "source_file": "backend/x/export_a.csv"}
    assert any("superseded by backend/x/export_a.csv:2" in r[0] for r in _reasons(conn, "backend/x/export_b.csv").values())


def test_export_time_inside_the_data_beats_file_time(tmp_path):
    head = HEAD + ",exported_at"
    early = f"{head}\nS1,CP,1,2026-01-05T10:00:00Z,2026-01-05T11:00:00Z,5,2026-01-06T01:00:00Z\n"
    late = f"{head}\nS1,CP,1,2026-01-05T10:00:00Z,2026-01-05T11:00:00Z,7,2026-01-07T01:00:00Z\n"
    # the file written last holds the earlier export (a re-sent old file)
    conn = _run(tmp_path, {"backend/x/late.csv": late, "backend/x/early.csv": early},
                mtimes={"backend/x/late.csv": 1_700_000_000, "backend/x/early.csv": 1_700_086_400})
    (s,) = rows(conn, "select energy_kwh from staging.backend_sessions")
    assert s["energy_kwh"] == pytest.approx(7)


def test_ems_export_in_a_european_dialect(tmp_path):
    ems = ("site_id;interval_start;interval_minutes;ev_energy_kwh;grid_import_kwh\r\n"
           "S-OSL;05.01.2026 10:00;15;1,25;2.000,5\r\n"
           "S-OSL;05.01.2026 10:15;15;NA;0,5\r\n")
    sites = "site_id,site_type,time_zone,name,country\nS-OSL,fleet,Europe/Oslo,Garage,NO\n"
    landing = tmp_path / "landing"
    for rel, text in {"registry/sites.csv": sites, "ems/oslo/day.csv": ems}.items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_bytes(text.encode())
    options = load_options()
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, landing, options["ingest"])
    stage_source(conn, "registry", options)
    stage_source(conn, "ems", options)
    got = rows(conn, "select interval_start_at, ev_energy_kwh, grid_import_kwh from staging.ems_intervals "
                     "order by interval_start_at")
    assert got[0] == {"interval_start_at": datetime(2026, 1, 5, 9, tzinfo=UTC),  # 10:00 Oslo
                      "ev_energy_kwh": pytest.approx(1.25), "grid_import_kwh": pytest.approx(2000.5)}
    assert len(got) + len(_reasons(conn, "ems/oslo/day.csv")) == 2
