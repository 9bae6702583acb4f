"""Marts and the review assets, materialised in-process on a small seeded warehouse."""

import dagster as dg
import pytest

from assets.marts import (
    build_marts,
    charger_health_unique,
    marts_charger_health,
    marts_findings,
    marts_flagged_sessions,
    marts_session_facts,
    marts_site_daily_kpis,
    session_facts_session_key_unique,
    site_daily_kpis_rates_are_shares,
)
from assets.review import recon_review, review_report
from pipeline import review
from pipeline.privacy import token_hash
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.warehouse import connect
from tests.fixtures.review_seed import seed_flags, seed_upstream

MART_ASSETS = [marts_findings, marts_session_facts, marts_site_daily_kpis, marts_charger_health,
               marts_flagged_sessions]


@pytest.fixture
def resources(tmp_path):
    config = tmp_path / "options.toml"
    config.write_text("[report]\ngx = false\n")   # GX has its own test (tests/unit/test_review_gx.py)
    (tmp_path / "landing").mkdir()
    return {"duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb")),
            "landing": LandingResource(path=str(tmp_path / "landing"), config_file=str(config))}


def _materialize(resources, selection):
    return dg.materialize(selection, resources=resources, raise_on_error=False,
                          instance=dg.DagsterInstance.ephemeral())


def test_review_marts_and_report_assets(resources, tmp_path):
    with connect(resources["duckdb"].database) as conn:
        seed_upstream(conn)
    result = _materialize(resources, [recon_review, *MART_ASSETS, review_report,
                                      session_facts_session_key_unique, charger_health_unique,
                                      site_daily_kpis_rates_are_shares])
    assert result.success
    evals = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evals["review_key_unique"] and evals["every_finding_queued"]
    assert evals["site_daily_kpis_rates_are_shares"] and evals["session_facts_session_key_unique"]
    assert (tmp_path / "reports" / "review_report.html").stat().st_size > 10_000
    with connect(resources["duckdb"].database) as conn:
        kpis = {r[0]: r[1:] for r in conn.execute("""
            select site_id || '/' || day, sessions, energy_kwh, sessions_flagged,
                   reconciliation_rate, link_coverage, findings_pricing, findings_records,
                   findings_energy, money_at_risk
            from marts.site_daily_kpis""").fetchall()}
        assert kpis["SITE-A/2026-11-20"] == (2, 20.5, 2, 0.0, 1.0, 2, 0, 1, pytest.approx(5.75))
        assert kpis["SITE-B/2026-11-21"] == (2, 35.0, 1, 0.5, 1.0, 0, 1, 1, pytest.approx(12.8))
        health = {r[0]: r[1:] for r in conn.execute("""
            select charge_point_id, median_start_drift_s, clock_skew_findings, meter_anomaly_findings
            from marts.charger_health""").fetchall()}
        assert health["CP-2"] == (-180.0, 1, 0) and health["CP-1"] == (-5.0, 0, 0)
        # tokens only as their keyed hash: the seed's raw id_tag never reaches a mart
        tokens = conn.execute("select token_hash from marts.session_facts order by session_key").fetchall()
        assert tokens[0][0] == token_hash("TAG1")
        dumped = conn.execute("select * from marts.flagged_sessions").fetchall()
        assert not any("TAG" in str(v) for row in dumped for v in row)

        # flagged_sessions is a view: a decision shows without rebuilding
        review.set_status(conn, "sk-3", "confirmed", reviewer="ana")
        assert conn.execute("select status from marts.flagged_sessions where review_key = 'sk-3'"
                            ).fetchall() == [("confirmed",)]


def test_marts_build_on_an_empty_warehouse(tmp_path):
    with connect(tmp_path / "w.duckdb") as conn:
        rows = build_marts(conn)
    assert rows == {"findings": 0, "session_facts": 0, "site_daily_kpis": 0, "charger_health": 0,
                    "flagged_sessions": 0}


def test_checks_fail_on_duplicate_finding_and_unqueued(resources):
    with connect(resources["duckdb"].database) as conn:
        seed_upstream(conn)
        seed_flags(conn)
        conn.execute("insert into recon.flags select * from recon.flags where session_key = 'sk-3'")
    from assets.marts import findings_flag_id_unique

    result = _materialize(resources, [recon_review, marts_findings, findings_flag_id_unique])
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["findings_flag_id_unique"].passed is False
    assert evals["findings_flag_id_unique"].metadata["duplicates"].value == 1
    # the duplicate still makes a single review item
    assert evals["review_key_unique"].passed is True


@pytest.mark.parametrize(("bad_rate", "passed"), [(None, True), (1.5, False)])
def test_site_daily_kpis_check(tmp_path, bad_rate, passed):
    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    with resource.get_connection() as conn:
        seed_upstream(conn)
        build_marts(conn)
        if bad_rate is not None:
            conn.execute("update marts.site_daily_kpis set reconciliation_rate = $r "
                         "where site_id = 'SITE-A'", {"r": bad_rate})
    result = site_daily_kpis_rates_are_shares(duckdb=resource)
    assert result.passed is passed
