"""Staging is re-runnable: the same landing folder changes nothing; a changed file only its rows.

Also runs the staging assets and ingestion checks in Dagster, passing and failing.
"""

from __future__ import annotations

import dagster as dg

from assets.raw import raw_assets
from assets.staging import stage_all, staging_assets
from checks.ingestion import ingestion_checks
from pipeline.config import load_options
from pipeline.ingest.run import ingest_landing
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sample import write_sample
from pipeline.warehouse import connect

TABLES = ("sites", "evses", "backend_sessions", "cdrs", "cdr_charging_periods", "tariff_versions",
          "ems_intervals")
_SNAP_EXCLUDE = "exclude (ingested_at)"


def _snapshot(conn) -> dict[str, list]:
    out = {t: sorted(map(repr, conn.sql(f"select * from staging.{t}").fetchall())) for t in TABLES}
    out["rejects"] = sorted(map(repr, conn.sql(
        f"select * {_SNAP_EXCLUDE} from quarantine.rejects").fetchall()))
    return out


def _run(conn, landing):
    ingest_landing(conn, landing, load_options()["ingest"])
    stage_all(conn, load_options())


def test_reingesting_the_same_folder_changes_nothing(tmp_path):
    landing = write_sample(tmp_path / "landing")
    (landing / "backend/bad.csv").write_text("session_id,charge_point_id,connector_id,started_at,energy_kwh\n"
                                             "X,CP-1,1,never,1\n")
    conn = connect(tmp_path / "w.duckdb")
    _run(conn, landing)
    before = _snapshot(conn)
    _run(conn, landing)
    assert _snapshot(conn) == before
    assert len(before["rejects"]) == 1


def test_changing_one_file_replaces_exactly_its_rows(tmp_path):
    landing = write_sample(tmp_path / "landing")
    (landing / "backend/extra.csv").write_text(
        "session_id,charge_point_id,connector_id,started_at,stopped_at,energy_kwh\n"
        "B-900,CP-2,1,2026-11-21T08:00:00Z,2026-11-21T09:00:00Z,4\n")
    conn = connect(tmp_path / "w.duckdb")
    _run(conn, landing)
    before = conn.sql("select * from staging.backend_sessions where source_file <> 'backend/extra.csv' "
                      "order by session_id").fetchall()
    (landing / "backend/extra.csv").write_text(
        "session_id,charge_point_id,connector_id,started_at,stopped_at,energy_kwh\n"
        "B-901,CP-2,1,2026-11-21T10:00:00Z,2026-11-21T11:00:00Z,5\n"
        "B-902,CP-2,1,2026-11-21T12:00:00Z,2026-11-21T11:00:00Z,5\n")
    _run(conn, landing)
    after = conn.sql("select * from staging.backend_sessions where source_file <> 'backend/extra.csv' "
                     "order by session_id").fetchall()
    assert after == before
    extra = conn.sql("select session_id from staging.backend_sessions where source_file = 'backend/extra.csv'"
                     ).fetchall()
    assert extra == [("B-901",)]
    assert conn.sql("select record_no from quarantine.rejects").fetchall() == [(3,)]


def _resources(tmp_path, landing):
    return {"duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb")),
            "landing": LandingResource(path=str(landing))}


def _check(asset: str, name: str):
    return next(c for c in ingestion_checks
                if any(k.asset_key.path == [asset] and k.name == name for k in c.check_keys))


def test_dagster_staging_assets_and_checks(tmp_path):
    landing = write_sample(tmp_path / "landing")
    (landing / "cdrs/bad.jsonl").write_text('{"id": "Z", "currency": "EUR"}\n')
    res = dg.materialize([*raw_assets, *staging_assets, *ingestion_checks],
                         resources=_resources(tmp_path, landing), raise_on_error=False)
    assert res.success
    evals = {(e.asset_key.path[0], e.check_name): e for e in res.get_asset_check_evaluations()}
    assert all(e.passed for (a, n), e in evals.items() if n == "accounting_balances")
    cdr_rows = evals[("stg_cdrs", "rows_staged_and_rejected")]
    assert not cdr_rows.passed and cdr_rows.metadata["rows_rejected"].value == 1
    assert evals[("stg_backend_sessions", "rows_staged_and_rejected")].passed


def test_accounting_check_fails_when_a_record_is_lost(tmp_path):
    landing = write_sample(tmp_path / "landing")
    resources = _resources(tmp_path, landing)
    dg.materialize([*raw_assets, *staging_assets], resources=resources)
    with resources["duckdb"].get_connection() as conn:
        conn.execute("delete from staging.backend_sessions where session_id = 'B-101'")
    res = dg.materialize([*raw_assets, *staging_assets, _check("stg_backend_sessions", "accounting_balances")],
                         resources=resources, raise_on_error=False,
                         selection=dg.AssetSelection.checks(_check("stg_backend_sessions", "accounting_balances")))
    (ev,) = res.get_asset_check_evaluations()
    assert not ev.passed and ev.metadata["files_unbalanced"].value == 1
