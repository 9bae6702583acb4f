"""Where review decisions live: a small store made for concurrent short writes.

A settlement clerk records decisions at any time, also while a night runs and holds the
DuckDB warehouse. So decisions (and their append-only log) are never kept only in a file
the night rewrites: they live in this store, and each night's queue sync copies them into
``recon.review`` / ``recon.review_log`` for analysts. The store also keeps a mirror of the
queue as of the last sync, so ``chargeline review list|show|set`` work while the warehouse
is locked.

The embedded default is SQLite in WAL mode (readers never block the writer, and a write
waits up to ``BUSY_TIMEOUT_S`` for another), at ``<warehouse stem>.review.sqlite`` beside
the warehouse unless ``[review] store`` or ``CHARGELINE_REVIEW_STORE`` names another file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_S = 30.0

_DDL = (
    """create table if not exists decisions (
        review_key text primary key, session_key text, status text not null,
        reviewer text, note text, decided_at text not null)""",
    """create table if not exists review_log (
        log_id integer primary key autoincrement, review_key text not null, session_key text,
        old_status text, new_status text not null, reviewer text, note text,
        decided_at text not null)""",
    # The queue as of the last sync: what a clerk can look up while the warehouse is busy.
    """create table if not exists items (
        review_key text primary key, session_key text, cdr_id text, backend_session_id text,
        charger_tx text, flag_ids text, payload text not null)""",
    "create table if not exists meta (key text primary key, value text)",
)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class StoredDecision:
    """One row of the store's log: a decision as it was recorded."""

    log_id: int
    review_key: str
    session_key: str | None
    old_status: str | None
    new_status: str
    reviewer: str | None
    note: str | None
    decided_at: datetime


class DecisionStore:
    """Decisions, their log and the queue mirror in one SQLite file (WAL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("pragma journal_mode = wal")
            for ddl in _DDL:
                con.execute(ddl)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (begin immediate) below.
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        con.execute(f"pragma busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            # immediate: take the write lock now, so the read of the old status and the
            # write of the new one are one step (two clerks on one item both get logged).
            con.execute("begin immediate")
            yield con
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        finally:
            con.close()

    def record(self, review_key: str, session_key: str | None, status: str, reviewer: str | None,
               note: str | None, at: datetime) -> StoredDecision:
        """Set an item's decision and append it to the log, atomically.

        A decision without a note keeps the item's earlier note; the log keeps what was given.
        """
        with self._write() as con:
            row = con.execute("select status from decisions where review_key = ?", (review_key,)).fetchone()
            old = row[0] if row else "open"
            con.execute(
                """insert into decisions (review_key, session_key, status, reviewer, note, decided_at)
                   values (?, ?, ?, ?, ?, ?)
                   on conflict (review_key) do update set session_key = excluded.session_key,
                       status = excluded.status, reviewer = excluded.reviewer,
                       note = coalesce(excluded.note, decisions.note), decided_at = excluded.decided_at""",
                (review_key, session_key, status, reviewer, note, _iso(at)))
            cur = con.execute(
                """insert into review_log (review_key, session_key, old_status, new_status, reviewer, note, decided_at)
                   values (?, ?, ?, ?, ?, ?, ?)""",
                (review_key, session_key, old, status, reviewer, note, _iso(at)))
            log_id = cur.lastrowid
        return StoredDecision(log_id, review_key, session_key, old, status, reviewer, note, at)

    def import_legacy(self, decisions: Iterable[tuple], log: Iterable[tuple]) -> int:
        """Adopt decisions a warehouse kept before this store existed (only into an empty store).

        ``decisions``: (review_key, session_key, status, reviewer, note, decided_at);
        ``log``: (review_key, session_key, old_status, new_status, reviewer, note, decided_at).
        """
        with self._write() as con:
            if con.execute("select count(*) from review_log").fetchone()[0]:
                return 0
            rows = [(*d[:5], _iso(d[5])) for d in decisions]
            con.executemany("insert or ignore into decisions values (?, ?, ?, ?, ?, ?)", rows)
            con.executemany(
                """insert into review_log (review_key, session_key, old_status, new_status, reviewer, note, decided_at)
                   values (?, ?, ?, ?, ?, ?, ?)""", [(*r[:6], _iso(r[6])) for r in log])
        return len(rows)

    def decisions(self) -> list[tuple]:
        """(review_key, session_key, status, reviewer, note, decided_at) per decided item."""
        with self._connect() as con:
            rows = con.execute("select review_key, session_key, status, reviewer, note, decided_at "
                               "from decisions order by review_key").fetchall()
        return [(*r[:5], _instant(r[5])) for r in rows]

    def log(self, review_key: str | None = None) -> list[StoredDecision]:
        with self._connect() as con:
            rows = con.execute(
                "select * from review_log where ? is null or review_key = ? order by log_id",
                (review_key, review_key)).fetchall()
        return [StoredDecision(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _instant(r[7])) for r in rows]

    def replace_items(self, items: list[dict[str, Any]], synced_at: datetime) -> None:
        """The queue mirror: every item as of this sync (decision columns included)."""
        rows = [(
            it["review_key"], it.get("session_key"), it.get("cdr_id"), it.get("backend_session_id"),
            f"{it['charge_point_id']}:{it['ocpp_transaction_id']}"
            if it.get("charge_point_id") and it.get("ocpp_transaction_id") else None,
            json.dumps(list(it.get("flag_ids") or [])),
            json.dumps(it, default=_json_default),
        ) for it in items]
        with self._write() as con:
            con.execute("delete from items")
            con.executemany("insert into items values (?, ?, ?, ?, ?, ?, ?)", rows)
            con.execute("insert or replace into meta values ('items_synced_at', ?)", (_iso(synced_at),))

    def items_synced_at(self) -> datetime | None:
        with self._connect() as con:
            row = con.execute("select value from meta where key = 'items_synced_at'").fetchone()
        return _instant(row[0]) if row else None

    def items(self) -> list[dict[str, Any]]:
        """The mirrored queue with each item's current decision laid over it."""
        with self._connect() as con:
            rows = con.execute(
                """select i.payload, d.status, d.reviewer, d.note, d.decided_at
                   from items as i left join decisions as d using (review_key)""").fetchall()
        out = []
        for payload, status, reviewer, note, decided_at in rows:
            it = json.loads(payload)
            if status is not None:
                it.update(status=status, reviewer=reviewer, note=note, decided_at=decided_at)
            out.append(it)
        return out

    def find(self, key: str) -> set[tuple[str, str | None]]:
        """(review_key, session_key) of mirrored items that KEY names."""
        flag = key.removeprefix("flag:")
        with self._connect() as con:
            rows = con.execute(
                """select i.review_key, i.session_key from items as i
                   where i.review_key = ?1 or i.session_key = ?1 or i.cdr_id = ?1
                      or i.backend_session_id = ?1 or i.charger_tx = ?1
                      or exists (select 1 from json_each(i.flag_ids) where value = ?2)""",
                (key, flag)).fetchall()
        return {(r[0], r[1]) for r in rows}


def store_path(warehouse: str | Path, options: dict[str, Any] | None = None) -> Path:
    """Where the decision store of ``warehouse`` lives."""
    configured = os.environ.get("CHARGELINE_REVIEW_STORE") or ((options or {}).get("review") or {}).get("store")
    if configured:
        return Path(configured)
    warehouse = Path(warehouse)
    return warehouse.with_name(f"{warehouse.stem}.review.sqlite")
