"""The review queue: sync keeps decisions, keys resolve, the log is append-only."""

from datetime import UTC, datetime

import pytest

from pipeline import review
from pipeline.warehouse import connect
from tests.fixtures.review_seed import FLAGS_BASE, flags_changed, seed_flags, seed_upstream

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def conn(warehouse_path):
    with connect(warehouse_path) as c:
        seed_upstream(c)
        yield c


def _rows(conn):
    return {r["review_key"]: r for r in review.queue(conn).iter_rows(named=True)}


def test_one_item_per_session_and_per_charger_or_site_finding(conn):
    report = review.sync_review(conn, at=T0)
    rows = _rows(conn)
    assert report.items == report.new == 5 == len(rows)
    assert rows["sk-1"]["checks"] == ["cost_mismatch", "stale_tariff"]
    assert rows["sk-1"]["max_severity"] == "error"
    assert rows["sk-1"]["money_at_risk"] == pytest.approx(5.30)
    assert rows["sk-1"]["started_at"] == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    flag_keys = sorted(k for k in rows if k.startswith("flag:"))
    assert len(flag_keys) == 2 and all(len(k) == len("flag:") + 16 for k in flag_keys)
    assert all(r["status"] == "open" and r["finding_present"] for r in rows.values())
    # most money at risk first
    assert list(rows)[:2] == ["sk-3", "sk-1"]


def test_flag_id_is_stable_and_depends_only_on_identity(conn):
    ids = lambda: conn.execute(  # noqa: E731
        f"select flag_id from ({review.findings_sql(conn)}) order by flag_id").fetchall()
    first = ids()
    seed_flags(conn, list(reversed(FLAGS_BASE)))        # other row order, same findings
    assert ids() == first
    assert len(set(first)) == len(first)
    changed = [(*r[:11], 99.0, *r[12:]) for r in FLAGS_BASE]   # money is not identity
    seed_flags(conn, changed)
    assert ids() == first


def test_rerun_and_reingestion_keep_decisions_and_mark_disappeared(conn):
    review.sync_review(conn, at=T0)
    review.set_status(conn, "sk-1", "confirmed", note="refund 4.20", reviewer="ana", at=T0)
    review.set_status(conn, "B-201", "dismissed", note="meter swap", reviewer="bo", at=T0)
    clock_key = next(k for k, r in _rows(conn).items() if "charger_clock_skew" in r["checks"])
    review.set_status(conn, clock_key, "resolved", reviewer="cy", at=T0)

    # same flags rebuilt (a rerun): nothing changes, nothing duplicates
    seed_flags(conn)
    again = review.sync_review(conn, at=T1)
    assert again.new == 0 and again.disappeared == 0 and again.items == 5
    rows = _rows(conn)
    assert rows["sk-1"]["status"] == "confirmed" and rows["sk-1"]["note"] == "refund 4.20"
    assert rows["sk-1"]["first_flagged_at"] == T0 and rows["sk-1"]["last_seen_at"] == T1

    # changed flags (new data): sk-2 vanished, sk-4 appeared, sk-1 costs more
    seed_flags(conn, flags_changed())
    changed = review.sync_review(conn, at=T1)
    assert (changed.new, changed.disappeared) == (1, 1)
    rows = _rows(conn)
    assert len(rows) == 6
    assert rows["sk-2"]["finding_present"] is False and rows["sk-2"]["status"] == "dismissed"
    assert rows["sk-2"]["reviewer"] == "bo" and rows["sk-2"]["note"] == "meter swap"
    assert rows["sk-1"]["status"] == "confirmed" and rows["sk-1"]["reviewer"] == "ana"
    assert rows["sk-1"]["money_at_risk"] == pytest.approx(6.10)
    assert rows[clock_key]["status"] == "resolved"
    assert rows["sk-4"]["status"] == "open" and rows["sk-4"]["first_flagged_at"] == T1

    # the finding comes back: present again, decision still there
    seed_flags(conn)
    back = review.sync_review(conn, at=T1)
    assert back.reappeared == 1
    assert _rows(conn)["sk-2"]["finding_present"] is True
    assert _rows(conn)["sk-2"]["status"] == "dismissed"
    keys = conn.execute("select review_key, count(*) from recon.review group by 1 having count(*) > 1")
    assert keys.fetchall() == []


def test_log_is_append_only_history(conn):
    review.sync_review(conn, at=T0)
    review.set_status(conn, "sk-3", "confirmed", note="chase partner", reviewer="ana", at=T0)
    review.set_status(conn, "sk-3", "resolved", reviewer="bo", at=T1)
    review.sync_review(conn, at=T1)
    log = conn.execute(
        "select old_status, new_status, reviewer, note from recon.review_log order by log_id"
    ).fetchall()
    assert log == [("open", "confirmed", "ana", "chase partner"), ("confirmed", "resolved", "bo", None)]
    row = _rows(conn)["sk-3"]
    # a decision without a note keeps the earlier note
    assert (row["status"], row["reviewer"], row["note"]) == ("resolved", "bo", "chase partner")


@pytest.mark.parametrize("key", ["sk-1", "CDR-101", "B-101", "CP-1:101", "S101"])
def test_resolve_key_forms(conn, key):
    review.sync_review(conn, at=T0)
    assert review.resolve_key(conn, key) == "sk-1"


def test_resolve_flag_key_and_unknown(conn):
    review.sync_review(conn, at=T0)
    flag_key = next(k for k in _rows(conn) if k.startswith("flag:"))
    assert review.resolve_key(conn, flag_key) == flag_key
    assert review.resolve_key(conn, flag_key.removeprefix("flag:")) == flag_key
    with pytest.raises(review.KeyNotFound):
        review.resolve_key(conn, "nope")
    with pytest.raises(ValueError):
        review.set_status(conn, "sk-1", "approved")


def test_queue_filters(conn):
    review.sync_review(conn, at=T0)
    review.set_status(conn, "sk-1", "confirmed", reviewer="ana", at=T0)
    keys = lambda **kw: review.queue(conn, **kw)["review_key"].to_list()  # noqa: E731
    assert keys(status="confirmed") == ["sk-1"]
    assert keys(check="missing_cdr") == ["sk-3"]
    assert keys(site="SITE-A", severity="error") == ["sk-1"]
    assert set(keys(site_type="fleet")) == {"sk-3", next(k for k in keys(site_type="fleet") if k.startswith("flag:"))}
    assert keys(day_from="2026-11-21", check="missing_cdr") == ["sk-3"]
    assert "sk-3" not in keys(day_to="2026-11-20")
    assert len(keys(severity="info")) == 5


def test_sync_without_flags_table(warehouse_path):
    with connect(warehouse_path) as c:
        report = review.sync_review(c, at=T0)
        assert report.items == 0
        assert review.queue(c).is_empty()
