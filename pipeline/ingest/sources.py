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
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.files import SOURCE_PATTERNS, DataFile, iter_lines
from pipeline.ingest.formats import source_settings
from pipeline.models.ocpp import CHARGER_INITIATED_ACTIONS


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
    skipped: int = 0  # lines that are not records (text-log notices): counted, not rejected

    @property
    def records_read(self) -> int:
        return len(self.rows) + len(self.rejects)


# Raw tables: every column text or JSON, so that nothing is lost before the row models are enforced.
RAW_TABLES: dict[str, str] = {
    "raw.registry_sites": "site_id varchar, site_type varchar, time_zone varchar, name varchar, country varchar",
    "raw.registry_evses": "charge_point_id varchar, connector_id varchar, site_id varchar, location_id varchar, evse_uid varchar, evse_id varchar, max_power_kw varchar",
    "raw.ocpp_frames": "received_at varchar, received_tz varchar, charge_point_id varchar, direction varchar, ocpp_version varchar, frame json",
    "raw.backend_sessions": "session_id varchar, charge_point_id varchar, connector_id varchar, transaction_id varchar, id_tag varchar, started_at varchar, stopped_at varchar, energy_kwh varchar, energy_wh varchar, ocpi_session_id varchar, cdr_id varchar, status varchar, amount varchar, currency varchar, meter_start_wh varchar, meter_stop_wh varchar, exported_at varchar",
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

def _mapped_header(names: list[str], mapping: dict[str, list[str]]) -> list[list[str]]:
    """Each column's name(s) in the product contract: a mapped header may feed several (SteVe's key)."""
    return [mapping.get(n.strip().lower(), [n.strip().lower()]) for n in names]


def _row_builder(header: list[list[str]], wanted: list[str], constants: dict[str, str],
                 nulls: set[str]) -> Callable[[list], dict]:
    """values -> row of ``wanted`` columns: the first column mapped to each, nulls as None."""
    src: dict[str, int] = {}
    for i, targets in enumerate(header):
        for t in targets:
            src.setdefault(t, i)
    present = [c for c in wanted if c in src]
    idx = [src[c] for c in present]
    absent = {c: constants.get(c) for c in wanted if c not in src}
    filled = {c: v for c, v in constants.items() if c in src}
    # exact spellings: a hash lookup per cell, this runs on every cell of every export
    tokens = {""} | {t for n in nulls for t in (n, n.upper(), n.lower(), n.title())}

    def build(values: list) -> dict:
        row = {c: (None if v is None or v in tokens else v) for c, v in zip(present, [values[i] for i in idx],
                                                                             strict=True)}
        row.update(absent)
        for c, v in filled.items():
            if row[c] is None:
                row[c] = v
        return row

    return build


def _tabular_rows(f: DataFile, data: bytes, table: str, settings: dict | None = None) -> Loaded:
    """Rows of a CSV or Parquet file mapped onto ``table``'s columns by (renamed) header.

    ``settings`` are the file's source settings (``pipeline.ingest.formats``): column
    mapping, constants and the CSV dialect; what they leave open is recognised from the file.
    """
    settings = settings or {}
    wanted = columns_of(table)
    constants = {k.lower(): str(v) for k, v in (settings.get("constants") or {}).items()}
    out = Loaded(table)
    if f.kind == ".parquet":
        try:
            tbl = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # a damaged parquet file is one reject naming the file
            out.rejects.append(Reject(None, _text(data, 200), [f"unreadable parquet: {exc}"]))
            return out
        mapping = column_mapping(table, tbl.column_names, settings)
        build = _row_builder(_mapped_header(tbl.column_names, mapping), wanted, constants, {""})
        for no, rec in enumerate(tbl.to_pylist(), start=1):
            vals = [None if v is None else str(v) for v in rec.values()]
            out.rows.append(build(vals) | {"record_no": no})
        return out

    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or first > 0:
        out.rejects.append(Reject(None, text[:200], ["empty file or no header"]))
        return out
    dialect = csv_dialect(lines[0], settings)
    try:
        (names,) = list(csv.reader([lines[0]], **dialect))
    except (csv.Error, ValueError):
        names = []
    mapping = column_mapping(table, names, settings)
    header = _mapped_header(names, mapping)
    known = bool({t for ts in header for t in ts} & set(wanted)) or bool(set(constants) & set(wanted))
    if not known:
        out.rejects.append(Reject(None, lines[0][:2000], ["header names none of the expected columns"]))
        # the data rows are still records of this file: count them as rejected too
    nulls = {v.strip().lower() for v in settings.get("null_values", NULL_VALUES)} | {""}
    build = _row_builder(header, wanted, constants, nulls)
    parsed: list[tuple[int, dict]] = []
    raws: dict[int, str] = {}
    for no, raw, values, reasons in _csv_records(lines, dialect, len(names)):
        if not known:
            out.rejects.append(Reject(no, raw[:2000], ["row of a file with an unknown header"]))
            continue
        if "\ufffd" in raw:
            reasons = ["invalid UTF-8", *reasons]
        if values is not None and len(values) != len(names):
            reasons = [*reasons, f"{len(values)} fields, header has {len(names)}"]
        if reasons:
            out.rejects.append(Reject(no, raw[:2000], reasons))
            continue
        parsed.append((no, build(values)))
        raws[no] = raw
    _normalise_numbers(parsed, table, settings, dialect["delimiter"])
    for no, row in parsed:
        out.rows.append(row | {"record_no": no})
    _normalise_times(out, table, settings, raws)
    return out


# Cells that mean "no value" in exports seen in the field (R and spreadsheet 'NA', SQL
# dumps' NULL and \N); configurable per source as `null_values`.
NULL_VALUES = ("NA", "N/A", "NULL", "\\N")
# Columns of each raw table that hold numbers / timestamps: the dialect is undone on them.
NUMBER_COLUMNS = {
    "raw.registry_evses": ("max_power_kw",),
    "raw.backend_sessions": ("energy_kwh", "energy_wh", "meter_start_wh", "meter_stop_wh", "amount"),
    "raw.ems_intervals": ("interval_minutes", "ev_energy_kwh", "grid_import_kwh", "pv_kwh",
                          "battery_discharge_kwh", "battery_charge_kwh", "ev_setpoint_kw"),
}
TIME_COLUMNS = {
    "raw.backend_sessions": ("started_at", "stopped_at", "exported_at"),
    "raw.ems_intervals": ("interval_start", "interval_end"),
}
_DELIMITERS = (",", ";", "\t", "|")


def csv_dialect(header_line: str, settings: dict) -> dict[str, Any]:
    """Delimiter and quote of a CSV file: configured, else the candidate the header uses most.

    The header is the one line that is sure to hold every column and no free text.
    """
    delim = settings.get("delimiter")
    if delim in ("tab", "\\t"):
        delim = "\t"
    if not delim:
        counts = {d: _count_outside_quotes(header_line, d) for d in _DELIMITERS}
        delim = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return {"delimiter": delim, "quotechar": settings.get("quote", '"')}


def _count_outside_quotes(line: str, ch: str) -> int:
    n, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            n += 1
    return n


# A quoted field may hold line breaks; a record running this many lines is a stray quote
# eating the file, and its lines are read one by one instead.
_MAX_RECORD_LINES = 50


def _csv_records(lines: list[str], dialect: dict, n_fields: int):
    """(first line no, raw text, values or None, reasons) per data record after the header.

    Quoted fields may span lines. A multi-line record that does not come out with the
    header's field count is not trusted: each of its lines becomes a record of its own, so
    one stray quote cannot swallow the records after it.
    """
    quote = dialect["quotechar"]
    if not any(quote in line for line in lines[1:]):
        # no quoting anywhere (most machine exports): a record is a line, read in one pass
        try:
            body = [(no, line) for no, line in enumerate(lines[1:], start=2) if line.strip()]
            parsed = list(csv.reader([line.rstrip("\r") for _, line in body], strict=True, **dialect))
        except (csv.Error, ValueError):
            parsed = None
        if parsed is not None and len(parsed) == len(body):
            for (no, line), values in zip(body, parsed, strict=True):
                yield no, line.rstrip("\r"), values, []
            return
    i = 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        j = i
        chunk = lines[i]
        while _open_quote(chunk, dialect["quotechar"]) and j + 1 < len(lines) and j - i < _MAX_RECORD_LINES:
            j += 1
            chunk += "\n" + lines[j]
        values, reasons = _parse_record(chunk, dialect)
        if j > i and (values is None or len(values) != n_fields):
            for k in range(i, j + 1):
                if lines[k].strip():
                    v, r = _parse_record(lines[k], dialect)
                    yield k + 1, lines[k].rstrip("\r"), v, r
        else:
            yield i + 1, chunk.rstrip("\r"), values, reasons
        i = j + 1


def _open_quote(text: str, quote: str) -> bool:
    return text.count(quote) % 2 == 1


def _parse_record(text: str, dialect: dict) -> tuple[list[str] | None, list[str]]:
    try:
        rows = list(csv.reader(io.StringIO(text.rstrip("\r"), newline=""), strict=True, **dialect))
    except (csv.Error, ValueError) as exc:
        return None, [f"unparseable CSV: {exc}"]
    if len(rows) != 1:
        return None, ["unparseable CSV: not one record"]
    return rows[0], []


_DECIMAL_COMMA = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+$")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def _normalise_numbers(parsed: list[tuple[int, dict]], table: str, settings: dict, delimiter: str) -> None:
    """Decimal comma -> point on the number columns (configured ``decimal``, else detected).

    Detected only in files not separated by commas, and only when no value of those columns
    uses a decimal point: then "1.234,5" is 1234.5. A value of another form stays as written,
    for staging to reject with its text.
    """
    cols = NUMBER_COLUMNS.get(table, ())
    values = [row[c] for _, row in parsed for c in cols if row.get(c) is not None]
    mark = settings.get("decimal")
    if mark is None:
        comma = any(_DECIMAL_COMMA.match(v.strip()) for v in values)
        point = any("." in v and _PLAIN_NUMBER.match(v.strip()) for v in values)
        mark = "," if delimiter != "," and comma and not point else "."
    if mark != ",":
        return
    for _, row in parsed:
        for c in cols:
            v = row.get(c)
            if v is not None and _DECIMAL_COMMA.match(v.strip()):
                row[c] = v.strip().replace(".", "").replace(",", ".")
            elif v is not None and re.fullmatch(r"[+-]?\d+", v.strip()):
                row[c] = v.strip()


# Day-first and month-first dates as spreadsheets and CSMS exports write them.
_DATE_FORMATS = ("%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d", "%d.%m.%y", "%m/%d/%y")
_TIME_FORMATS = ("%H:%M:%S.%f", "%H:%M:%S", "%H:%M")
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
# with and without a time of day (a date alone is midnight); the first best one is taken
_CANDIDATE_FORMATS = tuple(f"{d} {t}" for d in _DATE_FORMATS for t in _TIME_FORMATS) + _DATE_FORMATS
_SNIFF_VALUES = 500


def _parse_time(value: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip(), fmt)
    except ValueError:
        return None


def _normalise_times(out: Loaded, table: str, settings: dict, raws: dict[int, str]) -> None:
    """Non-ISO timestamps -> ISO 8601 text (configured ``timestamp_format``, else detected).

    Detection takes the date order that reads the most of the file's values; when day-first
    and month-first read them equally (no day above 12), the order is unknown and those rows
    are rejected, naming the setting, rather than read one way by guess. A value no format
    reads stays as written: staging rejects it with its text.
    """
    cols = TIME_COLUMNS.get(table, ())
    values = {row[c].strip() for row in out.rows for c in cols
              if row.get(c) is not None and not _ISO_START.match(row[c].strip())}
    if not values:
        return
    fmt = settings.get("timestamp_format")
    ambiguous = False
    if not fmt:
        # a spread sample decides: scoring every value under every format costs seconds
        ordered = sorted(values)
        sample = ordered[:: max(1, len(ordered) // _SNIFF_VALUES)]
        scores = {f: sum(_parse_time(v, f) is not None for v in sample) for f in _CANDIDATE_FORMATS}
        best = max(scores.values())
        if best == 0:
            return
        winners = [f for f in _CANDIDATE_FORMATS if scores[f] == best]
        fmt = winners[0]
        # the same values read both day-first and month-first: the order would be a guess
        ambiguous = any(f.startswith("%d") for f in winners) and any(f.startswith("%m") for f in winners)
    keep: list[dict] = []
    for row in out.rows:
        bad = False
        for c in cols:
            v = row.get(c)
            if v is None or _ISO_START.match(v.strip()):
                continue
            if ambiguous:
                bad = True
                continue
            ts = _parse_time(v, fmt)
            if ts is not None:
                row[c] = ts.isoformat()
        if bad:
            out.rejects.append(Reject(row["record_no"], raws.get(row["record_no"], "")[:2000],
                                      ["timestamp day/month order ambiguous: set timestamp_format for this source"]))
        else:
            keep.append(row)
    out.rows = keep
    out.rejects.sort(key=lambda r: r.record_no or 0)


# Export shapes recognised by their header when a source configures no mapping.
SHAPES: dict[str, dict[str, Any]] = {
    # SteVe (steve-community/steve) `transaction` view: the transaction's primary key is
    # the OCPP transactionId SteVe assigned, and its session id; energy is the register
    # difference. Joined exports add charge_box_id/connector_id; without them the rows
    # have no charger and are rejected for it unless the source maps connector_pk.
    "steve_transaction": {
        "table": "raw.backend_sessions",
        "requires": {"transaction_pk", "connector_pk", "start_timestamp", "start_value"},
        "columns": {
            "transaction_pk": ["session_id", "transaction_id"], "charge_box_id": "charge_point_id",
            "connector_id": "connector_id", "id_tag": "id_tag", "start_timestamp": "started_at",
            "stop_timestamp": "stopped_at", "start_value": "meter_start_wh", "stop_value": "meter_stop_wh",
        },
    },
}


def column_mapping(table: str, names: list[str], settings: dict) -> dict[str, list[str]]:
    """Header (lower case) -> product-contract column(s): a recognised shape, then the source's own.

    ``settings['columns']`` adds to or overrides what a recognised shape maps; ``shape``
    names a shape (or ``none``) instead of recognising one.
    """
    lower = {n.strip().lower() for n in names}
    chosen = settings.get("shape")
    mapping: dict[str, list[str]] = {}
    if chosen != "none":
        for name, shape in SHAPES.items():
            if shape["table"] != table:
                continue
            if chosen == name or (chosen is None and shape["requires"] <= lower):
                mapping |= {k: [v] if isinstance(v, str) else list(v) for k, v in shape["columns"].items()}
                break
    for k, v in (settings.get("columns") or {}).items():
        mapping[k.lower()] = [v] if isinstance(v, str) else list(v)
    return mapping


def load_registry(f: DataFile, data: bytes, opts: dict) -> Loaded:
    table = {"sites": "raw.registry_sites", "evses": "raw.registry_evses"}.get(f.stem)
    if table is None:
        return Loaded(None, rejects=[Reject(None, f.rel, ["registry file must be sites.csv or evses.csv"])])
    return _tabular_rows(f, data, table, source_settings(opts, f.rel))


def load_backend(f: DataFile, data: bytes, opts: dict) -> Loaded:
    return _tabular_rows(f, data, "raw.backend_sessions", source_settings(opts, f.rel))


def load_ems(f: DataFile, data: bytes, opts: dict) -> Loaded:
    return _tabular_rows(f, data, "raw.ems_intervals", source_settings(opts, f.rel))


# --- OCPP -----------------------------------------------------------------------------

def load_ocpp(f: DataFile, data: bytes, opts: dict) -> Loaded:
    """One OCPP file by the same SQL the batch ingest runs (``pipeline.ingest.run``).

    The night loads OCPP files in batches; this single-file path serves tests and tools
    and must read every line exactly as the batch does.
    """
    import duckdb

    from pipeline.ingest.formats import log_pattern
    from pipeline.sql import execute, load_sql

    out = Loaded("raw.ocpp_frames")
    is_log = f.kind == ".log"
    lp = log_pattern(opts, f.rel) if is_log else None
    nos: list[int] = []
    lines: list[str] = []
    for no, raw in iter_lines(data):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.rejects.append(Reject(no, _text(raw), ["invalid UTF-8"]))
            continue
        nos.append(no)
        lines.append(line.lstrip("\ufeff") if no == 1 else line)
    conn = duckdb.connect(":memory:")
    try:
        conn.register("_lines", pa.table({
            "source_file": pa.array([f.rel] * len(lines), pa.string()),
            "record_no": pa.array(nos, pa.int64()),
            "is_log": pa.array([is_log] * len(lines), pa.bool_()),
            "line": pa.array(lines, pa.large_string()),
        }))
        conn.execute("create temp table _ocpp_lines as select * from _lines")
        conn.execute("create temp table _ocpp_log_files as select $rel::varchar as source_file, 0 as pattern_no, "
                     "$charger::varchar as path_charger", {"rel": f.rel, "charger": lp.path_charger(f.rel) if lp else None})
        conn.execute("""create temp table _ocpp_log_fields (
            source_file varchar, record_no bigint, line varchar, is_frame boolean, received_at varchar,
            received_tz varchar, charge_point_id varchar, direction varchar, ocpp_version varchar,
            frame_text varchar)""")
        if lp:
            execute(conn, "insert into _ocpp_log_fields by name\n" + load_sql("pipeline/ingest/sql/ocpp_log_lines.sql"),
                    {"pattern_no": 0, **lp.params()})
        out.skipped = conn.execute("select count(*) from _ocpp_log_fields where not is_frame").fetchall()[0][0]
        parsed = conn.execute("select record_no, received_at, received_tz, charge_point_id, direction, "
                              "ocpp_version, frame::varchar, line, reasons from ("
                              + load_sql("pipeline/ingest/sql/ocpp_frames.sql") + ") order by record_no",
                              {"charger_actions": list(CHARGER_INITIATED_ACTIONS)}).fetchall()
    finally:
        conn.close()
    for no, at, tz, cp, direction, version, frame, line, reasons in parsed:
        if reasons:
            out.rejects.append(Reject(no, line[:2000], list(reasons)))
        else:
            out.rows.append({"record_no": no, "received_at": at, "received_tz": tz, "charge_point_id": cp,
                             "direction": direction, "ocpp_version": version, "frame": frame})
    out.rejects.sort(key=lambda r: r.record_no or 0)
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
