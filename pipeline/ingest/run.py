"""Ingest a landing folder: skip unchanged files, replace changed ones, account for all."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.ingest.files import DataFile, discover, iter_lines
from pipeline.ingest.formats import LogPattern, log_pattern
from pipeline.ingest.sources import RAW_TABLES, SOURCE_TABLES, Reject, load_file, to_arrow
from pipeline.models.ocpp import CHARGER_INITIATED_ACTIONS
from pipeline.sql import execute, load_sql

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
    # Text-log lines that are not frames (notices, prose): counted here, not records.
    conn.execute("alter table meta.files add column if not exists lines_skipped bigint default 0")
    # When the file was last written: "latest export wins" needs an order that does not
    # depend on how partners name their files.
    conn.execute("alter table meta.files add column if not exists modified_at timestamptz")
    for table, cols in RAW_TABLES.items():
        conn.execute(
            f"create table if not exists {table} "
            f"(source_file varchar, record_no bigint, {cols}, ingested_at timestamptz)"
        )
    # backend columns added later (meter registers, an export time inside the data)
    for col in ("meter_start_wh", "meter_stop_wh", "exported_at"):
        conn.execute(f"alter table raw.backend_sessions add column if not exists {col} varchar")
    # raw.locations.envelope_at was added after the first release
    conn.execute("alter table raw.locations add column if not exists envelope_at varchar")
    # Added later: 'file_order' marks a bare frame whose receive time is estimated.
    conn.execute("alter table raw.ocpp_frames add column if not exists received_basis varchar")


@dataclass
class IngestReport:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    records_read: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    lines_skipped: int = 0  # text-log lines that are not frames: counted, not records

    def add(self, read: int, loaded: int, rejected: int, skipped: int = 0) -> None:
        self.records_read += read
        self.records_loaded += loaded
        self.records_rejected += rejected
        self.lines_skipped += skipped

    @property
    def touched(self) -> list[str]:
        return self.new + self.changed


def _forget(conn: duckdb.DuckDBPyConnection, files: list[DataFile]) -> None:
    """Remove every row an earlier version of these files left (one statement per table)."""
    if not files:
        return
    rels = [f.rel for f in files]
    for table in sorted({t for f in files for t in SOURCE_TABLES[f.source]}):
        conn.execute(f"delete from {table} where source_file in (select unnest($f))", {"f": rels})
    conn.execute("delete from quarantine.rejects where source_file in (select unnest($f))", {"f": rels})
    conn.execute("delete from meta.files where source_file in (select unnest($f))", {"f": rels})


def ingest_file(
    conn: duckdb.DuckDBPyConnection, f: DataFile, digest: str, opts: dict, known: bool = True
) -> tuple[int, int, int, int]:
    """Load one file inside a transaction, so a crash never leaves half a file behind.

    ``known``: an earlier version of the file was ingested, so its rows must go first; a
    new file has none, and skipping the deletes keeps thousands of small files cheap.
    """
    loaded = load_file(f, opts)
    now = datetime.now(UTC)
    conn.execute("begin transaction")
    try:
        if known:
            _forget(conn, [f])
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
        stat = f.path.stat()
        conn.execute(
            "insert into meta.files (source, source_file, content_hash, size_bytes, ingested_at, records_read, "
            "records_loaded, records_rejected, lines_skipped, modified_at) values ($source, $rel, $hash, $size, "
            "$now, $read, $loaded, $rejected, $skipped, $mtime)",
            {"source": f.source, "rel": f.rel, "hash": digest, "size": stat.st_size, "now": now,
             "read": loaded.records_read, "loaded": len(loaded.rows), "rejected": len(loaded.rejects),
             "skipped": loaded.skipped, "mtime": datetime.fromtimestamp(stat.st_mtime, UTC)},
        )
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return loaded.records_read, len(loaded.rows), len(loaded.rejects), loaded.skipped


# OCPP files are many (one per charger-day) and large: they are read in batches of about
# this many bytes, one transaction per batch, parsed set-based by DuckDB.
OCPP_BATCH_BYTES = 96 << 20


def _split_lines(f: DataFile, data: bytes, rejects: list[Reject]) -> tuple[list[int], list[str]]:
    """Line numbers and text of the non-blank lines; undecodable lines become rejects."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    nos: list[int] = []
    out: list[str] = []
    if text is not None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for no, line in enumerate(lines, start=1):
            if line.endswith("\r"):
                line = line[:-1]
            if line.strip():
                nos.append(no)
                out.append(line.lstrip("\ufeff") if no == 1 else line)
        return nos, out
    for no, raw in iter_lines(data):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.append(Reject(no, raw[:2000].decode("utf-8", "replace"), ["invalid UTF-8"]))
            continue
        nos.append(no)
        out.append(line.lstrip("\ufeff") if no == 1 else line)
    return nos, out


def _is_utf8(data: bytes) -> bool:
    if data.isascii():  # C speed, and true for nearly every real OCPP log
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def ingest_ocpp_batch(
    conn: duckdb.DuckDBPyConnection, batch: list[tuple[DataFile, str, bytes | None, bool]], opts: dict
) -> tuple[int, int, int, int]:
    """Load many OCPP files in one transaction; DuckDB parses every line at once."""
    now = datetime.now(UTC)
    cols: dict[str, list] = {"source_file": [], "record_no": [], "is_log": [], "line": []}
    rejects: list[tuple[str, Reject]] = []
    rejected_early: dict[str, int] = {}
    direct: list[DataFile] = []
    # Text logs: each file's line pattern (numbered per distinct pattern) and the charger
    # its path names; JSONL files have neither.
    patterns: dict[LogPattern, int] = {}
    file_pattern: dict[str, int | None] = {}
    file_charger: dict[str, str | None] = {}
    for f, _, _, _ in batch:
        if f.kind == ".log":
            lp = log_pattern(opts, f.rel)
            file_pattern[f.rel] = patterns.setdefault(lp, len(patterns))
            file_charger[f.rel] = lp.path_charger(f.rel)
        else:
            file_pattern[f.rel], file_charger[f.rel] = None, None
    for f, _, data, _ in batch:
        if data is not None and not f.is_gzip and _is_utf8(data):
            # plain UTF-8 text: DuckDB reads and splits it itself, far faster than Python
            direct.append(f)
            continue
        file_rejects: list[Reject] = []
        if data is None:
            loaded = load_file(f, opts)  # unreadable or empty: the generic path explains why
            file_rejects = loaded.rejects
            nos, lines = [], []
        else:
            nos, lines = _split_lines(f, data, file_rejects)
        cols["source_file"].extend([f.rel] * len(lines))
        cols["record_no"].extend(nos)
        cols["is_log"].extend([f.kind == ".log"] * len(lines))
        cols["line"].extend(lines)
        rejects.extend((f.rel, r) for r in file_rejects)
        rejected_early[f.rel] = len(file_rejects)
    table = pa.table({
        "source_file": pa.array(cols["source_file"], pa.string()),
        "record_no": pa.array(cols["record_no"], pa.int64()),
        "is_log": pa.array(cols["is_log"], pa.bool_()),
        "line": pa.array(cols["line"], pa.large_string()),
    })
    del cols
    conn.register("_python_lines", table)
    conn.register("_direct_files", pa.table({
        "path": [str(f.path) for f in direct],
        "source_file": [f.rel for f in direct],
        "is_log": pa.array([f.kind == ".log" for f in direct], pa.bool_()),
    }))
    log_files = [rel for rel, no in file_pattern.items() if no is not None]
    conn.register("_log_files", pa.table({
        "source_file": pa.array(log_files, pa.string()),
        "pattern_no": pa.array([file_pattern[r] for r in log_files], pa.int32()),
        "path_charger": pa.array([file_charger[r] for r in log_files], pa.string()),
    }))
    # Same line rules as _split_lines: split on LF, drop a trailing CR and a leading BOM,
    # skip blank lines (they are not records).
    direct_sql = """
        with texts as (
            select d.source_file, d.is_log, string_split(t.content, chr(10)) as lines
            from read_text($paths) as t
            join _direct_files as d on d.path = t.filename
        ),
        split as (
            select source_file, is_log, generate_subscripts(lines, 1) as record_no, unnest(lines) as line
            from texts
        )
        select source_file, record_no, is_log,
               case when record_no = 1 then ltrim(l, chr(65279)) else l end as line
        from (select *, case when ends_with(line, chr(13)) then line[:-2] else line end as l from split)
        -- trimming every line costs more than the whole split: only short ones can be blank
        where case when strlen(line) > 16 then true
                   else trim(line, ' ' || chr(9) || chr(13) || chr(65279)) <> '' end
        union all
    """ if direct else ""
    lines_sql = direct_sql + "select source_file, record_no, is_log, line from _python_lines"
    conn.execute(
        "create or replace temp table _ocpp_lines as " + lines_sql,
        {"paths": [str(f.path) for f in direct]} if direct else None,
    ).fetchall()
    conn.unregister("_python_lines")
    conn.execute("create or replace temp table _ocpp_log_files as select * from _log_files")
    conn.unregister("_log_files")
    conn.execute("""
        create or replace temp table _ocpp_log_fields (
            source_file varchar, record_no bigint, line varchar, is_frame boolean, received_at varchar,
            received_tz varchar, charge_point_id varchar, direction varchar, ocpp_version varchar,
            frame_text varchar)""")
    log_sql = load_sql("pipeline/ingest/sql/ocpp_log_lines.sql")
    for lp, no in patterns.items():
        execute(conn, "insert into _ocpp_log_fields by name\n" + log_sql, {"pattern_no": no, **lp.params()})
    lines_by_file = dict.fromkeys(file_pattern, 0) | dict(conn.execute(
        "select source_file, count(*) from _ocpp_lines group by all").fetchall())
    skipped_by_file = dict(conn.execute(
        "select source_file, count(*) from _ocpp_log_fields where not is_frame group by all").fetchall())
    conn.unregister("_direct_files")
    # A record is a JSONL line or a frame line of a log; other log lines are only counted.
    read_by_file = {rel: n - skipped_by_file.get(rel, 0) + rejected_early.get(rel, 0)
                    for rel, n in lines_by_file.items()}
    max_chars = int(opts.get("reject_raw_max_chars", 2000))
    conn.execute("begin transaction")
    try:
        # only files seen before have rows to replace: new files skip the deletes
        _forget(conn, [f for f, _, _, known in batch if known])
        execute(conn, "create or replace temp table _ocpp_parsed as\n" + load_sql("pipeline/ingest/sql/ocpp_frames.sql"),
                {"charger_actions": list(CHARGER_INITIATED_ACTIONS)})
        conn.execute("""
            insert into raw.ocpp_frames by name
            select source_file, record_no, received_at, received_tz, charge_point_id, direction,
                   ocpp_version, received_basis, frame, $now as ingested_at
            from _ocpp_parsed where len(reasons) = 0
        """, {"now": now})
        conn.execute("""
            insert into quarantine.rejects by name
            select 'ocpp' as source, source_file, record_no, left(line, $max) as raw, reasons,
                   'read' as stage, $now as ingested_at
            from _ocpp_parsed where len(reasons) > 0
        """, {"now": now, "max": max_chars})
        if rejects:
            rej = pa.table({
                "source": ["ocpp"] * len(rejects),
                "source_file": [rel for rel, _ in rejects],
                "record_no": pa.array([r.record_no for _, r in rejects], pa.int64()),
                "raw": [r.raw for _, r in rejects],
                "reasons": [r.reasons for _, r in rejects],
                "stage": ["read"] * len(rejects),
                "ingested_at": pa.array([now] * len(rejects), pa.timestamp("us", tz="UTC")),
            })
            conn.register("_rej", rej)
            conn.execute("insert into quarantine.rejects by name select * from _rej")
            conn.unregister("_rej")
        files = pa.table({
            "source": ["ocpp"] * len(batch),
            "source_file": [f.rel for f, _, _, _ in batch],
            "content_hash": [digest for _, digest, _, _ in batch],
            "size_bytes": pa.array([f.path.stat().st_size for f, _, _, _ in batch], pa.int64()),
            "records_read": pa.array([read_by_file[f.rel] for f, _, _, _ in batch], pa.int64()),
            "lines_skipped": pa.array([skipped_by_file.get(f.rel, 0) for f, _, _, _ in batch], pa.int64()),
            "modified_at": pa.array([int(f.path.stat().st_mtime * 1e6) for f, _, _, _ in batch],
                                    pa.timestamp("us", tz="UTC")),
        })
        conn.register("_files", files)
        conn.execute("""
            insert into meta.files (source, source_file, content_hash, size_bytes, ingested_at,
                                    records_read, records_loaded, records_rejected, lines_skipped, modified_at)
            select f.source, f.source_file, f.content_hash, f.size_bytes, $now, f.records_read,
                   coalesce(p.loaded, 0), f.records_read - coalesce(p.loaded, 0), f.lines_skipped, f.modified_at
            from _files as f
            left join (
                select source_file::varchar as source_file, count(*) filter (where len(reasons) = 0) as loaded
                from _ocpp_parsed group by all
            ) as p using (source_file)
        """, {"now": now})
        loaded, rejected = conn.execute(
            "select coalesce(sum(m.records_loaded), 0), coalesce(sum(m.records_rejected), 0) "
            "from meta.files as m join _files as f using (source_file)"
        ).fetchall()[0]
        conn.unregister("_files")
        conn.execute("drop table _ocpp_parsed")
        conn.execute("drop table _ocpp_lines")
        conn.execute("drop table _ocpp_log_fields")
        conn.execute("drop table _ocpp_log_files")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return sum(read_by_file.values()), int(loaded), int(rejected), sum(skipped_by_file.values())


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
    batch: list[tuple[DataFile, str, bytes | None, bool]] = []
    batch_bytes = 0

    def flush() -> None:
        nonlocal batch, batch_bytes
        if batch:
            report.add(*ingest_ocpp_batch(conn, batch, opts))
            batch, batch_bytes = [], 0

    for f in discover(Path(landing)):
        if sources and f.source not in sources:
            continue
        if f.source == "ocpp" and f.kind in (".jsonl", ".log"):
            # read once: the bytes serve both the hash and the parse
            raw = f.path.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
        else:
            raw, digest = None, f.content_hash()
        before = known.get(f.rel)
        if before == digest:
            report.unchanged.append(f.rel)
            continue
        (report.changed if before else report.new).append(f.rel)
        if raw is not None:
            try:
                data = gzip.decompress(raw) if f.is_gzip else raw
            except (OSError, EOFError):
                data = None
            if data is not None and (not data.strip() or b"\x00" in data[:4096]):
                data = None  # empty or binary: the generic loader names the reason
            batch.append((f, digest, data, before is not None))
            batch_bytes += len(data or b"")
            if batch_bytes >= OCPP_BATCH_BYTES:
                flush()
            continue
        report.add(*ingest_file(conn, f, digest, opts, known=before is not None))
    flush()
    return report
