"""Ingest a landing folder: skip unchanged files, replace changed ones, account for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.ingest.files import DataFile, discover
from pipeline.ingest.sources import RAW_TABLES, SOURCE_TABLES, load_file, to_arrow

META_DDL = """
create table if not exists meta.files (
    source varchar, source_file varchar primary key, content_hash varchar, size_bytes bigint,
    ingested_at timestamptz, records_read bigint, records_loaded bigint, records_rejected bigint
)"""
REJECTS_DDL = """
create table if not exists quarantine.rejects (
    source varchar, source_file varchar, record_no bigint, raw varchar, reasons varchar[],
    stage varchar, ingested_at timestamptz
)"""


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(META_DDL)
    conn.execute(REJECTS_DDL)
    # Added after the first release: staging fills these (which table rejected a record,
    # how many records of a file reached their record-level staging table).
    conn.execute("alter table quarantine.rejects add column if not exists staging_table varchar")
    conn.execute("alter table meta.files add column if not exists records_staged bigint")
    for table, cols in RAW_TABLES.items():
        conn.execute(
            f"create table if not exists {table} "
            f"(source_file varchar, record_no bigint, {cols}, ingested_at timestamptz)"
        )


@dataclass
class IngestReport:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    records_read: int = 0
    records_loaded: int = 0
    records_rejected: int = 0

    @property
    def touched(self) -> list[str]:
        return self.new + self.changed


def _forget(conn: duckdb.DuckDBPyConnection, f: DataFile) -> None:
    for table in SOURCE_TABLES[f.source]:
        conn.execute(f"delete from {table} where source_file = $f", {"f": f.rel})
    conn.execute("delete from quarantine.rejects where source_file = $f", {"f": f.rel})
    conn.execute("delete from meta.files where source_file = $f", {"f": f.rel})


def ingest_file(conn: duckdb.DuckDBPyConnection, f: DataFile, digest: str, opts: dict) -> tuple[int, int, int]:
    """Load one file inside a transaction, so a crash never leaves half a file behind."""
    loaded = load_file(f, opts)
    now = datetime.now(UTC)
    conn.execute("begin transaction")
    try:
        _forget(conn, f)
        if loaded.rows and loaded.table:
            batch = to_arrow(loaded.table, f.rel, loaded.rows)
            batch = batch.append_column("ingested_at", pa.array([now] * batch.num_rows, pa.timestamp("us", tz="UTC")))
            conn.register("_batch", batch)
            conn.execute(f"insert into {loaded.table} by name select * from _batch")
            conn.unregister("_batch")
        if loaded.rejects:
            rej = pa.table({
                "source": [f.source] * len(loaded.rejects),
                "source_file": [f.rel] * len(loaded.rejects),
                "record_no": pa.array([r.record_no for r in loaded.rejects], pa.int64()),
                "raw": [r.raw for r in loaded.rejects],
                "reasons": [r.reasons for r in loaded.rejects],
                "stage": ["read"] * len(loaded.rejects),
                "ingested_at": pa.array([now] * len(loaded.rejects), pa.timestamp("us", tz="UTC")),
            })
            conn.register("_rej", rej)
            conn.execute("insert into quarantine.rejects by name select * from _rej")
            conn.unregister("_rej")
        conn.execute(
            "insert into meta.files (source, source_file, content_hash, size_bytes, ingested_at, records_read, "
            "records_loaded, records_rejected) values ($source, $rel, $hash, $size, $now, $read, $loaded, $rejected)",
            {"source": f.source, "rel": f.rel, "hash": digest, "size": f.path.stat().st_size, "now": now,
             "read": loaded.records_read, "loaded": len(loaded.rows), "rejected": len(loaded.rejects)},
        )
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return loaded.records_read, len(loaded.rows), len(loaded.rejects)


def ingest_landing(
    conn: duckdb.DuckDBPyConnection,
    landing: Path,
    opts: dict | None = None,
    sources: tuple[str, ...] | None = None,
) -> IngestReport:
    """Load every new or changed file below ``landing``; unchanged files are skipped."""
    opts = opts or {}
    ensure_tables(conn)
    known = dict(conn.execute("select source_file, content_hash from meta.files").fetchall())
    report = IngestReport()
    for f in discover(Path(landing)):
        if sources and f.source not in sources:
            continue
        digest = f.content_hash()
        before = known.get(f.rel)
        if before == digest:
            report.unchanged.append(f.rel)
            continue
        read, loaded, rejected = ingest_file(conn, f, digest, opts)
        (report.changed if before else report.new).append(f.rel)
        report.records_read += read
        report.records_loaded += loaded
        report.records_rejected += rejected
    return report
