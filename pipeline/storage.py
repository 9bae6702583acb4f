"""The published tables: one Delta Lake table per warehouse table, written with delta-rs.

Belongs here: how a night's rows reach storage that several writers can commit to and any
number of readers can read while it is written. DuckDB stays the engine inside each step;
a step hands its rows to ``TableStore`` as Arrow, in one of three ways:

- ``write_days``: the rows of some UTC days, partitioned by ``part_day``. One predicate
  overwrite replaces exactly those days in one commit, so two processes writing two days
  of the same table both land (delta-rs retries a commit whose partitions do not overlap).
- ``write_files``: record-level inputs (raw rows, staged frames) keyed by ``source_file``:
  the rows of replaced or removed files are deleted and the new files appended.
- ``write_whole``: small tables (registry, reference data, bookkeeping) in one overwrite.

Why Delta and not DuckDB's own storage or a Parquet folder: ``../docs`` and
``docs/operations.md`` ("Storage"): a DuckDB file has one writer process, and a
``PARTITION_BY`` copy either keeps stale files of a day or deletes the other days. Readers
never glob a table's folder (superseded files stay until vacuum); they read the file list
of one committed version (``files``), which is what ``pipeline.publish`` pins into views.

delta-rs takes predicates as SQL text (DataFusion), with no parameter binding: the only
values put into one are ``date`` objects (ISO form) and file names through ``_literal``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa

PART_COLUMN = "part_day"
_COLUMNS_SUFFIX = ".columns.json"


class StorageError(RuntimeError):
    """The table location cannot be used (unsupported scheme, unreadable table)."""


def _literal(value: str) -> str:
    """A DataFusion string literal: quotes doubled, control characters refused."""
    if any(ord(ch) < 32 for ch in value):
        raise StorageError(f"file name with a control character cannot be deleted by predicate: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def _days_predicate(days: Sequence[date]) -> str:
    days = sorted(set(days))
    return f"{PART_COLUMN} IN ({', '.join(_literal(d.isoformat()) for d in days)})"


def local_root(location: str | Path) -> Path:
    """The folder of a ``file://`` location (or a plain path)."""
    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else text).resolve()
    raise StorageError(
        f"table location {text!r}: only file:// is readable by the analysts' DuckDB file here "
        "(DuckDB reads s3:// only through its httpfs extension, which cannot be installed offline); "
        "see docs/operations.md 'Storage'")


class TableStore:
    """Delta tables under one root, ``<root>/<schema>/<table>/``."""

    def __init__(self, location: str | Path):
        self.root = local_root(location)

    # --- where things are ---------------------------------------------------------------

    def uri(self, table: str) -> str:
        schema, name = table.split(".", 1)
        return str(self.root / schema / name)

    def exists(self, table: str) -> bool:
        return (Path(self.uri(table)) / "_delta_log").is_dir()

    def tables(self) -> list[str]:
        """Every table with a Delta log, as ``schema.table``, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(f"{s.name}.{t.name}" for s in self.root.iterdir() if s.is_dir()
                      for t in s.iterdir() if (t / "_delta_log").is_dir())

    def _delta(self, table: str):
        from deltalake import DeltaTable

        return DeltaTable(self.uri(table))

    def files(self, table: str) -> tuple[int, list[str]]:
        """(version, data files) of the table's latest committed version."""
        t = self._delta(table)
        return t.version(), [urlparse(u).path if u.startswith("file:") else u for u in t.file_uris()]

    def is_partitioned(self, table: str) -> bool:
        return PART_COLUMN in self._delta(table).metadata().partition_columns

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) as the writer had them: Parquet keeps JSON only as text."""
        path = Path(self.uri(table) + _COLUMNS_SUFFIX)
        return [tuple(c) for c in json.loads(path.read_text())] if path.exists() else []

    def _save_columns(self, table: str, columns: Sequence[tuple[str, str]]) -> None:
        path = Path(self.uri(table) + _COLUMNS_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([list(c) for c in columns]))
        os.replace(tmp, path)

    # --- writing --------------------------------------------------------------------------

    def write_days(self, table: str, data: pa.Table, days: Iterable[date],
                   columns: Sequence[tuple[str, str]]) -> int:
        """Replace the rows of ``days`` with ``data`` (which has ``part_day``); rows written."""
        from deltalake import write_deltalake

        days = sorted(set(days))
        if not days:
            return 0
        outside = data.filter(pa.compute.invert(pa.compute.is_in(data[PART_COLUMN], pa.array(days, pa.date32()))))
        if outside.num_rows:
            raise StorageError(f"{table}: {outside.num_rows} rows outside the days being replaced")
        kwargs = {"partition_by": [PART_COLUMN]}
        if self.exists(table):
            kwargs["predicate"] = _days_predicate(days)
        write_deltalake(self.uri(table), data, mode="overwrite", schema_mode=None, **kwargs)
        self._save_columns(table, columns)
        return data.num_rows

    def write_files(self, table: str, data: pa.Table, replaced: Sequence[str],
                    columns: Sequence[tuple[str, str]]) -> int:
        """Delete the rows of ``replaced`` files, then append ``data``; rows written."""
        from deltalake import write_deltalake

        if self.exists(table) and replaced:
            for start in range(0, len(replaced), 500):  # a bounded predicate per delete
                chunk = replaced[start:start + 500]
                self._delta(table).delete(f"source_file IN ({', '.join(_literal(f) for f in chunk)})")
        if data.num_rows or not self.exists(table):
            write_deltalake(self.uri(table), data, mode="append")
        self._save_columns(table, columns)
        return data.num_rows

    def write_whole(self, table: str, data: pa.Table, columns: Sequence[tuple[str, str]]) -> int:
        from deltalake import write_deltalake

        write_deltalake(self.uri(table), data, mode="overwrite", schema_mode="overwrite")
        self._save_columns(table, columns)
        return data.num_rows

    def vacuum(self, retention_hours: float) -> int:
        """Delete files no version younger than ``retention_hours`` uses; files removed.

        Views pin the file list of the version they were published with, so a reader of
        an old ``warehouse.duckdb`` keeps working until the retention has passed.
        """
        removed = 0
        for table in self.tables():
            removed += len(self._delta(table).vacuum(
                retention_hours=int(retention_hours), dry_run=False, enforce_retention_duration=False))
        return removed
