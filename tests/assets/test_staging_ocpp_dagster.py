"""The OCPP assets and their checks, materialized in-process on a temporary warehouse."""

import shutil

import dagster as dg

from assets import lineage_transactions as lt
from assets import raw, staging_ocpp
from checks import ocpp_staging
from pipeline.resources import LandingResource, WarehouseResource
from tests.fixtures.ocpp.frames import HERE, call, start16, stop16, write_jsonl


def _materialize(tmp_path, day: str = "2026-11-20"):
    # the OCPP tables derived from frames are built per day, as a night builds them
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("days", [day])
    assets = [a for a in raw.raw_assets if a.key.to_user_string() == "raw_ocpp"]
    assets += [v for v in vars(staging_ocpp).values() if isinstance(v, dg.AssetsDefinition)]
    assets.append(lt.lineage_transactions)
    checks = [v for v in vars(ocpp_staging).values() if isinstance(v, dg.AssetChecksDefinition)]
    return dg.materialize(
        [*assets, *checks],
        resources={"duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb")),
                   "landing": LandingResource(path=str(tmp_path / "landing"))},
        raise_on_error=False,
        instance=instance,
        partition_key=day,
    )


def _evaluations(result) -> dict[str, bool]:
    return {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}


def test_clean_frames_pass_every_check(tmp_path):
    write_jsonl(tmp_path / "landing/ocpp/a.jsonl", [
        *start16("2026-11-20T08:00:00Z", "CP-1", "s1", 11),
        *stop16("2026-11-20T09:00:00Z", "CP-1", "e1", 11),
    ])
    result = _materialize(tmp_path)
    assert result.success
    assert _evaluations(result) == {
        "ocpp_frames_rejects": True, "ocpp_calls_answered": True,
        "ocpp_meter_values_typed": True, "transactions_account_for_events": True,
    }
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert "lineage_transactions" in mats


def test_bad_frames_and_unanswered_calls_warn(tmp_path):
    (tmp_path / "landing/ocpp").mkdir(parents=True)
    shutil.copy(HERE / "bad_frames.jsonl", tmp_path / "landing/ocpp/bad.jsonl")
    write_jsonl(tmp_path / "landing/ocpp/b.jsonl",
                [call("2026-11-20T08:00:00Z", "CP-2", str(i), "Heartbeat", {}) for i in range(5)])
    result = _materialize(tmp_path)
    checks = _evaluations(result)
    assert checks["ocpp_frames_rejects"] is False
    assert checks["ocpp_calls_answered"] is False
    assert result.success  # WARN checks never fail the run


def test_transactions_check_fails_when_events_are_lost(tmp_path):
    write_jsonl(tmp_path / "landing/ocpp/a.jsonl", [
        *start16("2026-11-20T08:00:00Z", "CP-1", "s1", 11),
        *stop16("2026-11-20T09:00:00Z", "CP-1", "e1", 11),
    ])
    assert _materialize(tmp_path).success
    duckdb = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    with duckdb.get_connection() as conn:
        conn.execute("delete from lineage.transactions").fetchall()
    check = ocpp_staging.transactions_account_for_events
    result = dg.materialize([lt.lineage_transactions, check], selection=dg.AssetSelection.checks(check),
                            resources={"duckdb": duckdb, "landing": LandingResource(path=str(tmp_path / "landing"))},
                            raise_on_error=False,
                            instance=dg.DagsterInstance.ephemeral())
    (ev,) = result.get_asset_check_evaluations()
    assert ev.passed is False and ev.metadata["events_without_transaction"].value == 1
