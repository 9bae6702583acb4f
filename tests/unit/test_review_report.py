"""The HTML report's content (the browser test checks that it renders)."""

import re

from pipeline import review
from pipeline.report import write_report
from pipeline.report.data import gather
from pipeline.warehouse import connect
from tests.fixtures.review_seed import seed_upstream


def test_report_on_an_empty_warehouse(tmp_path):
    with connect(tmp_path / "w.duckdb") as conn:
        path = write_report(conn, tmp_path / "reports")
    page = path.read_text()
    for section in ("summary", "by-check", "queue", "sessions", "plots", "quality"):
        assert f'id="{section}"' in page
    assert "The review queue is empty." in page and "<svg" not in page


def test_report_totals_queue_and_limits(tmp_path):
    from assets.marts import build_marts

    with connect(tmp_path / "w.duckdb") as conn:
        seed_upstream(conn)
        review.sync_review(conn)
        build_marts(conn)
        review.set_status(conn, "sk-3", "confirmed", reviewer="ana")
        data = gather(conn, queue_limit=3, drilldown_limit=2)
        page = write_report(conn, tmp_path / "reports").read_text()
    assert data.totals["findings"] == 6 and data.totals["review_items"] == 5
    assert data.totals["open_items"] == 4
    assert round(data.totals["money_at_risk"], 2) == 18.55
    assert round(data.totals["open_money_at_risk"], 2) == 6.55
    assert data.queue["review_key"].to_list()[:2] == ["sk-3", "sk-1"] and data.queue_total == 5
    assert [d.item["review_key"] for d in data.drilldowns] == ["sk-3", "sk-1"]
    assert data.by_check["check"][0] == "missing_cdr"
    # every queue link lands on a drill-down
    targets = set(re.findall(r'<details id="([^"]+)"', page))
    links = set(re.findall(r'<a href="#(item-[^"]+)"', page))
    assert links and links <= targets
    assert page.count("<svg") == 3
