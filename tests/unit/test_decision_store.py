"""The decision store's contract, on SQLite (embedded default) and on Postgres (a team)."""

import itertools
import multiprocessing as mp
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.decisions import DecisionStore, store_path
from tests.support.postgres import postgres_server

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg_url():
    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        pytest.skip(f"no Postgres server: {exc}")


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "review.sqlite")
    url = request.getfixturevalue("pg_url")
    # a fresh database per test, so tests do not see each other's decisions
    import psycopg

    name = f"t{abs(hash(request.node.nodeid)) % 10**9}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'drop database if exists "{name}"')
        con.execute(f'create database "{name}"')
    return url.replace("/postgres?", f"/{name}?")


def test_record_keeps_the_note_and_logs_every_decision(location):
    store = DecisionStore(location)
    a = store.record("sk-1", "sk-1", "confirmed", "ana", "refund 4.20", T0)
    b = store.record("sk-1", "sk-1", "resolved", "bo", None, T0 + timedelta(hours=1))
    assert (a.old_status, b.old_status) == ("open", "confirmed")
    assert store.decisions() == [("sk-1", "sk-1", "resolved", "bo", "refund 4.20", T0 + timedelta(hours=1))]
    assert [(d.log_id, d.new_status, d.note) for d in store.log("sk-1")] == [
        (a.log_id, "confirmed", "refund 4.20"), (b.log_id, "resolved", None)]
    assert b.log_id > a.log_id


def test_items_mirror_resolves_keys_and_carries_decisions(location):
    store = DecisionStore(location)
    items = [
        {"review_key": "sk-1", "session_key": "sk-1", "status": "open", "cdr_id": "CDR-9",
         "backend_session_id": "B-1", "charge_point_id": "CP-1", "ocpp_transaction_id": "17",
         "flag_ids": ["f1", "f2"], "started_at": T0},
        {"review_key": "flag:abc", "session_key": None, "status": "open", "flag_ids": ["abc"]},
    ]
    store.replace_items(items, T0)
    for key in ("sk-1", "CDR-9", "B-1", "CP-1:17", "flag:f2"):
        assert store.find(key) == {("sk-1", "sk-1")}, key
    assert store.find("flag:abc") == {("flag:abc", None)}
    assert store.find("nothing") == set()
    store.record("flag:abc", None, "dismissed", "cy", "known outage", T0)
    by_key = {it["review_key"]: it for it in store.items()}
    assert by_key["flag:abc"]["status"] == "dismissed" and by_key["sk-1"]["status"] == "open"
    assert store.items_synced_at() == T0
    store.replace_items(items[:1], T0 + timedelta(days=1))    # the next sync replaces the mirror
    assert [it["review_key"] for it in store.items()] == ["sk-1"]
    assert store.decisions()[0][0] == "flag:abc"               # but never a decision


def test_legacy_import_only_into_an_empty_store(location):
    store = DecisionStore(location)
    assert store.import_legacy([("sk-2", "sk-2", "confirmed", "ana", None, T0)],
                               [("sk-2", "sk-2", "open", "confirmed", "ana", None, T0)]) == 1
    assert store.import_legacy([("sk-3", "sk-3", "confirmed", "ana", None, T0)], []) == 0
    assert [d[0] for d in store.decisions()] == ["sk-2"]


def _clerk(location: str, clerk: int, n: int) -> None:
    store = DecisionStore(location)
    for i in range(n):
        store.record(f"sk-{i % 5}", None, ("confirmed", "dismissed")[clerk % 2], f"clerk{clerk}",
                     f"{clerk}/{i}", T0 + timedelta(seconds=i))


def test_concurrent_clerks_lose_no_decision(location):
    DecisionStore(location)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_clerk, args=(location, c, 40)) for c in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    store = DecisionStore(location)
    log = store.log()
    assert len(log) == 120 and len({d.log_id for d in log}) == 120
    # each item's logged old status is the status the previous logged decision set
    for key in {d.review_key for d in log}:
        rows = [d for d in log if d.review_key == key]
        assert rows[0].old_status == "open"
        assert all(b.old_status == a.new_status for a, b in itertools.pairwise(rows))


def test_store_path_defaults_beside_the_warehouse(tmp_path, monkeypatch):
    monkeypatch.delenv("CHARGELINE_REVIEW_STORE", raising=False)
    assert store_path(tmp_path / "w.duckdb") == tmp_path / "w.review.sqlite"
    assert store_path(tmp_path / "w.duckdb", {"review": {"store": "postgresql://u@h/db"}}) == "postgresql://u@h/db"
    monkeypatch.setenv("CHARGELINE_REVIEW_STORE", str(tmp_path / "x.sqlite"))
    assert store_path(tmp_path / "w.duckdb") == tmp_path / "x.sqlite"


def test_review_queue_on_a_postgres_store(location, warehouse_path):
    from pipeline import review
    from pipeline.warehouse import connect
    from tests.fixtures.review_seed import seed_upstream

    store = DecisionStore(location)
    with connect(warehouse_path) as c:
        seed_upstream(c)
        review.sync_review(c, at=T0, store=store)
        review.set_status(c, "sk-3", "confirmed", reviewer="ana", note="chase partner", at=T0, store=store)
    warehouse_path.unlink()                      # a full rebuild of the warehouse
    with connect(warehouse_path) as c:
        seed_upstream(c)
        review.sync_review(c, at=T0 + timedelta(days=1), store=store)
        assert c.execute("select status, note from recon.review where review_key = 'sk-3'").fetchall() == [
            ("confirmed", "chase partner")]
