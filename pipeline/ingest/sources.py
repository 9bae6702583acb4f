"""Source loaders: one landing file -> record-level raw rows + rejects.

Each loader returns a ``Loaded``: the raw rows for its table (a pyarrow table whose first
columns are ``source_file`` and ``record_no``) and the records it could not read at all.
Typing and validation happen later, in staging; a loader only decides whether a record can
be read as a record of its source.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.files import SOURCE_PATTERNS, DataFile, iter_lines


@dataclass
class Reject:
    record_no: int | None
    raw: str
    reasons: list[str]


@dataclass
class Loaded:
    table: str | None  # raw table the rows go to (None when nothing readable)
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def records_read(self) -> int:
        return len(self.rows) + len(self.rejects)


# Raw tables: every column text or JSON, so that nothing is lost before the contracts run.
RAW_TABLES: dict[str, str] = {
    "raw.registry_sites": "site_id varchar, site_type varchar, time_zone varchar, name varchar, country varchar",
    "raw.registry_evses": "charge_point_id varchar, connector_id varchar, site_id varchar, location_id varchar, evse_uid varchar, evse_id varchar, max_power_kw varchar",
    "raw.ocpp_frames": "received_at varchar, received_tz varchar, charge_point_id varchar, direction varchar, ocpp_version varchar, frame json",
    "raw.backend_sessions": "session_id varchar, charge_point_id varchar, connector_id varchar, transaction_id varchar, id_tag varchar, started_at varchar, stopped_at varchar, energy_kwh varchar, energy_wh varchar, ocpi_session_id varchar, cdr_id varchar, status varchar, amount varchar, currency varchar",
    "raw.cdrs": "obj json",
    "raw.tariffs": "obj json",
    "raw.ems_intervals": "site_id varchar, charge_point_id varchar, interval_start varchar, interval_minutes varchar, interval_end varchar, ev_energy_kwh varchar, grid_import_kwh varchar, pv_kwh varchar, battery_discharge_kwh varchar, battery_charge_kwh varchar, ev_setpoint_kw varchar",
    # envelope_at: the OCPI response envelope's timestamp (a pulled listing): when the eMSP
    # saw these objects, which a Location's own last_updated does not say.
    "raw.locations": "obj json, envelope_at varchar",
    "raw.tokens": "obj json",
}
SOURCE_TABLES: dict[str, tuple[str, ...]] = {
    "registry": ("raw.registry_sites", "raw.registry_evses"),
    "ocpp": ("raw.ocpp_frames",),
    "backend": ("raw.backend_sessions",),
    "cdrs": ("raw.cdrs",),
    "tariffs": ("raw.tariffs",),
    "ems": ("raw.ems_intervals",),
    "locations": ("raw.locations",),
    "tokens": ("raw.tokens",),
}


def columns_of(table: str) -> list[str]:
    return [part.strip().split()[0] for part in RAW_TABLES[table].split(",")]


def _text(raw: bytes, limit: int = 2000) -> str:
    return raw[:limit].decode("utf-8", errors="replace")


# --- CSV / Parquet -------------------------------------------------------------------

def _tabular_rows(f: DataFile, data: bytes, table: str, rename: dict[str, str]) -> Loaded:
    """Rows of a CSV or Parquet file mapped onto ``table``'s columns by (renamed) header."""
    wanted = columns_of(table)
    out = Loaded(table)
    if f.kind == ".parquet":
        try:
            tbl = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # a damaged parquet file is one reject naming the file
            out.rejects.append(Reject(None, _text(data, 200), [f"unreadable parquet: {exc}"]))
            return out
        names = [rename.get(c.strip().lower(), c.strip().lower()) for c in tbl.column_names]
        for no, rec in enumerate(tbl.to_pylist(), start=1):
            row = {names[i]: v for i, v in enumerate(rec.values())}
            out.rows.append({c: None if row.get(c) is None else str(row[c]) for c in wanted}
                            | {"record_no": no})
        return out

    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        out.rejects.append(Reject(None, text[:200], ["empty file or no header"]))
        return out
    header = [rename.get(h.strip().lower(), h.strip().lower()) for h in next(csv.reader([lines[0]]))]
    if not set(header) & set(wanted):
        out.rejects.append(Reject(None, lines[0][:2000], ["header names none of the expected columns"]))
        # the data rows are still records of this file: count them as rejected too
    known = bool(set(header) & set(wanted))
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if not known:
            out.rejects.append(Reject(no, line[:2000], ["row of a file with an unknown header"]))
            continue
        reasons = []
        if "\ufffd" in line:
            reasons.append("invalid UTF-8")
        try:
            (values,) = list(csv.reader([line]))
        except (csv.Error, ValueError) as exc:
            values, reasons = [], [*reasons, f"unparseable CSV: {exc}"]
        if values and len(values) != len(header):
            reasons.append(f"{len(values)} fields, header has {len(header)}")
        if reasons:
            out.rejects.append(Reject(no, line[:2000], reasons))
            continue
        row = dict(zip(header, values, strict=True))
        out.rows.append({c: (row.get(c) if row.get(c) not in ("",) else None) for c in wanted}
                        | {"record_no": no})
    return out


def load_registry(f: DataFile, data: bytes, opts: dict) -> Loaded:
    table = {"sites": "raw.registry_sites", "evses": "raw.registry_evses"}.get(f.stem)
    if table is None:
        return Loaded(None, rejects=[Reject(None, f.rel, ["registry file must be sites.csv or evses.csv"])])
    return _tabular_rows(f, data, table, {})


def load_backend(f: DataFile, data: bytes, opts: dict) -> Loaded:
    rename = {k.lower(): v for k, v in opts.get("backend_columns", {}).items()}
    return _tabular_rows(f, data, "raw.backend_sessions", rename)


def load_ems(f: DataFile, data: bytes, opts: dict) -> Loaded:
    return _tabular_rows(f, data, "raw.ems_intervals", {})


# --- OCPP -----------------------------------------------------------------------------

# `ocpp` package logger lines: "<date> <time> LEVEL (thread) [logger] CP-ID: receive message [...]"
_LOG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+\w+\s+\([^)]*\)\s+\[[^\]]*\]\s+"
    r"(?P<cp>[^:\s]+):\s+(?P<verb>receive message|send)\s+(?P<frame>\[.*\])\s*$"
)


def load_ocpp(f: DataFile, data: bytes, opts: dict) -> Loaded:
    out = Loaded("raw.ocpp_frames")
    log_tz = opts.get("ocpp_log_time_zone", "UTC")
    is_log = f.kind == ".log"
    for no, raw in iter_lines(data):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.rejects.append(Reject(no, _text(raw), ["invalid UTF-8"]))
            continue
        if is_log:
            m = _LOG_LINE.match(line)
            if not m:
                # the ocpp logger also writes lines that are not frames (connection notices)
                out.rejects.append(Reject(no, line[:2000], ["log line is not an OCPP frame"]))
                continue
            try:
                # the raw column is JSON: an invalid frame would fail the whole file's insert
                frame = json.loads(m["frame"])
            except (ValueError, RecursionError):
                out.rejects.append(Reject(no, line[:2000], ["log frame is not valid JSON"]))
                continue
            out.rows.append({
                "record_no": no, "received_at": m["ts"].replace(",", "."), "received_tz": log_tz,
                "charge_point_id": m["cp"], "direction": "in" if m["verb"] == "receive message" else "out",
                "ocpp_version": None, "frame": json.dumps(frame, separators=(",", ":")),
            })
            continue
        try:
            obj = json.loads(line.lstrip("\ufeff"))
        except (ValueError, RecursionError) as exc:
            out.rejects.append(Reject(no, line[:2000], [f"invalid JSON: {exc.__class__.__name__}"]))
            continue
        if not isinstance(obj, dict):
            out.rejects.append(Reject(no, line[:2000], ["line is not a JSON object"]))
            continue
        frame = obj.get("frame")
        if isinstance(frame, str):
            try:
                frame = json.loads(frame)
            except ValueError:
                out.rejects.append(Reject(no, line[:2000], ["frame string is not JSON"]))
                continue
        if not isinstance(frame, list):
            out.rejects.append(Reject(no, line[:2000], ["frame is not an OCPP-J array"]))
            continue
        out.rows.append({
            "record_no": no, "received_at": _str(obj.get("received_at")), "received_tz": None,
            "charge_point_id": _str(obj.get("charge_point_id")), "direction": _str(obj.get("direction")),
            "ocpp_version": _str(obj.get("ocpp_version")), "frame": json.dumps(frame, separators=(",", ":")),
        })
    return out


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


# --- OCPI JSON objects ----------------------------------------------------------------

def _json_objects(table: str) -> Callable[[DataFile, bytes, dict], Loaded]:
    def load(f: DataFile, data: bytes, opts: dict) -> Loaded:
        out = Loaded(table)
        if f.kind == ".jsonl":
            for no, raw in iter_lines(data):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8").lstrip("\ufeff"))
                except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                    out.rejects.append(Reject(no, _text(raw), [f"invalid JSON: {exc.__class__.__name__}"]))
                    continue
                _collect(out, obj, no, raw)
            return out
        try:
            doc = json.loads(data.decode("utf-8").lstrip("\ufeff"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            out.rejects.append(Reject(None, _text(data, 500), [f"unreadable JSON file: {exc.__class__.__name__}"]))
            return out
        envelope_at = None
        if isinstance(doc, dict) and "data" in doc and ("status_code" in doc or "timestamp" in doc):
            envelope_at = _str(doc.get("timestamp"))
            doc = doc["data"]  # OCPI response envelope
        items = doc if isinstance(doc, list) else [doc]
        for no, obj in enumerate(items, start=1):
            _collect(out, obj, no, None, envelope_at)
        return out

    return load


def _collect(out: Loaded, obj: Any, no: int, raw: bytes | None, envelope_at: str | None = None) -> None:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(obj, dict):
        out.rejects.append(Reject(no, (raw.decode("utf-8", "replace") if raw else text)[:2000],
                                  ["record is not a JSON object"]))
        return
    out.rows.append({"record_no": no, "obj": text, "envelope_at": envelope_at})


LOADERS: dict[str, Callable[[DataFile, bytes, dict], Loaded]] = {
    "registry": load_registry,
    "ocpp": load_ocpp,
    "backend": load_backend,
    "cdrs": _json_objects("raw.cdrs"),
    "tariffs": _json_objects("raw.tariffs"),
    "ems": load_ems,
    "locations": _json_objects("raw.locations"),
    "tokens": _json_objects("raw.tokens"),
}


def load_file(f: DataFile, opts: dict) -> Loaded:
    """Read one landing file; a file that cannot be read at all is one reject naming it."""
    if f.kind not in SOURCE_PATTERNS[f.source]:
        return Loaded(None, rejects=[Reject(None, f.rel, [f"unexpected file type {f.kind or '(none)'} for {f.source}/"])])
    try:
        data = f.read_bytes()
    except (OSError, EOFError) as exc:
        return Loaded(None, rejects=[Reject(None, f.rel, [f"unreadable file: {exc}"])])
    if not data.strip():
        return Loaded(None, rejects=[Reject(None, f.rel, ["empty file"])])
    if b"\x00" in data[:4096] and f.kind != ".parquet":
        return Loaded(None, rejects=[Reject(None, _text(data, 200), ["binary content in a text file"])])
    return LOADERS[f.source](f, data, opts)


def to_arrow(table: str, rel: str, rows: list[dict[str, Any]]) -> pa.Table:
    cols = columns_of(table)
    return pa.table({
        "source_file": pa.array([rel] * len(rows), pa.string()),
        "record_no": pa.array([r["record_no"] for r in rows], pa.int64()),
        **{c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols},
    })
