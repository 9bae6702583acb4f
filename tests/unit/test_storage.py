"""Delta tables written by day and by file, and the analysts' views over them."""

from datetime import date

import duckdb
import pyarrow as pa
import pytest

from pipeline.publish import publish
from pipeline.storage import StorageError, TableStore, _literal

COLS = [("session_key", "VARCHAR"), ("evidence", "JSON")]


def _rows(keys, day):
    return pa.table({"session_key": keys, "evidence": ['{"k": 1}'] * len(keys),
                     "part_day": pa.array([day] * len(keys), pa.date32())})


def test_a_day_write_replaces_that_day_only_and_the_view_reads_it(tmp_path):
    store = TableStore(tmp_path / "t")
    d1, d2 = date(2019, 3, 10), date(2035, 1, 15)
    store.write_days("lineage.sessions", _rows(["a", "b"], d1), [d1], COLS)
    store.write_days("lineage.sessions", _rows(["c"], d2), [d2], COLS)
    store.write_days("lineage.sessions", _rows(["b2"], d1), [d1], COLS)
    publish(store, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        assert sorted(r[0] for r in conn.execute("select session_key from lineage.sessions").fetchall()) == ["b2", "c"]
        # JSON comes back as JSON, and the partition column stays out of the view
        assert conn.execute("select evidence->>'k' from lineage.sessions limit 1").fetchall() == [("1",)]
        assert "part_day" not in [r[0] for r in conn.execute("describe lineage.sessions").fetchall()]


def test_rows_outside_the_days_being_replaced_are_refused(tmp_path):
    store = TableStore(tmp_path / "t")
    with pytest.raises(StorageError, match="outside the days"):
        store.write_days("lineage.sessions", _rows(["a"], date(2026, 1, 2)), [date(2026, 1, 1)], COLS)


def test_files_are_replaced_by_name_even_with_quotes(tmp_path):
    store = TableStore(tmp_path / "t")
    cols = [("source_file", "VARCHAR"), ("v", "BIGINT")]
    store.write_files("raw.cdrs", pa.table({"source_file": ["o'brien.json", "b.json"], "v": [1, 2]}), [], cols)
    store.write_files("raw.cdrs", pa.table({"source_file": ["o'brien.json"], "v": [3]}), ["o'brien.json"], cols)
    publish(store, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        assert sorted(conn.execute("select source_file, v from raw.cdrs").fetchall()) == [("b.json", 2),
                                                                                         ("o'brien.json", 3)]
    with pytest.raises(StorageError):
        _literal("a\nb")


def test_an_empty_table_is_a_typed_empty_view(tmp_path):
    store = TableStore(tmp_path / "t")
    store.write_whole("meta.pending_days", pa.table({"day": pa.array([], pa.date32())}), [("day", "DATE")])
    publish(store, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from meta.pending_days").fetchall() == [(0,)]


def test_object_storage_is_refused_with_the_reason():
    with pytest.raises(StorageError, match="httpfs"):
        TableStore("s3://bucket/tables")


def test_vacuum_keeps_what_the_latest_version_reads(tmp_path):
    store = TableStore(tmp_path / "t")
    d = date(2026, 1, 1)
    store.write_days("lineage.sessions", _rows(["a"], d), [d], COLS)
    store.write_days("lineage.sessions", _rows(["b"], d), [d], COLS)
    assert store.vacuum(0) == 1  # the superseded file of "a"
    publish(store, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        assert conn.execute("select session_key from lineage.sessions").fetchall() == [("b",)]
