"""Great Expectations suites and Data Docs (the one test that imports GX: ~5 s)."""

from pipeline import review
from pipeline.gx import run_suites
from pipeline.report import write_report
from pipeline.warehouse import connect
from tests.fixtures.review_seed import FLAGS_BASE, seed_flags, seed_upstream


def test_suites_pass_fail_and_docs_are_linked(tmp_path):
    from assets.marts import build_marts

    with connect(tmp_path / "w.duckdb") as conn:
        seed_upstream(conn)
        review.sync_review(conn)
        build_marts(conn)
        good = run_suites(conn, tmp_path / "reports")
        suites = {s.suite: s for s in good.suites}
        assert suites["recon_flags"].success and suites["recon_flags"].evaluated == 5
        assert suites["lineage_sessions"].success and suites["recon_review"].success
        # SITE-A: both sessions flagged, reconciliation rate 0 < 0.5
        assert not suites["site_kpis"].success
        assert suites["site_kpis"].failed_expectations == [
            "expect_column_values_to_be_between(reconciliation_rate)"]
        docs = tmp_path / "reports" / "gx" / "index.html"
        assert good.docs_index == docs.resolve() and docs.stat().st_size > 1000

        # broken findings: unknown severity, negative money, the same finding twice
        bad = [(*FLAGS_BASE[0][:2], "fatal", *FLAGS_BASE[0][3:11], -1.0, *FLAGS_BASE[0][12:]),
               *FLAGS_BASE, FLAGS_BASE[3]]
        seed_flags(conn, bad)
        loose = run_suites(conn, tmp_path / "reports", {"quality": {"reconciliation_rate_min": 0.0}})
        suites = {s.suite: s for s in loose.suites}
        assert not loose.success and suites["site_kpis"].success
        assert sorted(suites["recon_flags"].failed_expectations) == [
            "expect_column_values_to_be_between(money_at_risk)",
            "expect_column_values_to_be_in_set(severity)",
            "expect_column_values_to_be_unique(flag_id)"]

        page = write_report(conn, tmp_path / "reports", gx=loose.to_dict()).read_text()
    assert 'id="data-docs-link" href="gx/index.html"' in page
    assert "FAIL" in page


def test_suites_skip_missing_tables(tmp_path):
    with connect(tmp_path / "w.duckdb") as conn:
        result = run_suites(conn, tmp_path / "reports")
    assert result.success and all(s.skipped for s in result.suites)
