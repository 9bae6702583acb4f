"""A day run's DuckDB share of the machine, and the window a day run reads."""

from datetime import UTC, date, datetime

import duckdb

from pipeline.engine import window
from pipeline.warehouse import configure


def test_threads_follow_the_process_share(monkeypatch):
    monkeypatch.setenv("CHARGELINE_DUCKDB_THREADS", "1")
    conn = configure(duckdb.connect())
    assert conn.execute("select current_setting('threads')").fetchall()[0][0] == 1
    monkeypatch.delenv("CHARGELINE_DUCKDB_THREADS")
    conn = configure(duckdb.connect())
    assert conn.execute("select current_setting('threads')").fetchall()[0][0] >= 1


def test_window_is_the_days_plus_the_lookback_either_side():
    lo, hi = window([date(2019, 3, 10), date(2019, 3, 11)], 1)
    assert (lo, hi) == (datetime(2019, 3, 9, tzinfo=UTC), datetime(2019, 3, 13, tzinfo=UTC))
    lo, hi = window([date(2035, 1, 15)], 0)
    assert (lo, hi) == (datetime(2035, 1, 15, tzinfo=UTC), datetime(2035, 1, 16, tzinfo=UTC))
