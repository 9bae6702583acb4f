"""Enforcement at the staging boundary: validate a staging table, quarantine its failures.

Belongs here: the one mechanism every staging asset uses to move rows that break their
row model (a pandera polars ``DataFrameModel`` from ``pipeline/models/staging.py``) or that SQL
could not type into ``quarantine.rejects``, so that nothing is lost and nothing stops the night.
Words: the *row models* are ``pipeline.models.staging``; this module *enforces* them; the
*product contract* is ``docs/contract.md``. (A reject of a model keeps ``stage = 'contract'``
in ``quarantine.rejects``: that value is documented for analysts, so it stays.)

Protocol for a staging asset (re-runnable, because each step replaces its earlier output)::

    build_table(conn, "staging.cdrs", params)            # create or replace from raw.*
    enforce(conn, "staging.cdrs", StgCdrs, "cdrs")        # SQL reasons + pandera failures

A staging SQL may compute a ``_reject_reasons VARCHAR[]`` column (values it could not type,
duplicates). ``enforce`` treats a non-empty list as a failure too, so a reject row carries
every reason, SQL's and the model's, and drops the column. ``route_rejects`` does only the
SQL part, for a table that has no model.
Both first delete the quarantine rows they wrote for the same table on an earlier run, so
rebuilding a table and calling them again never duplicates a reject. A reject row stores
``source_file, record_no`` and the record's text from its raw table, looked up by that pair.

Derived tables (e.g. ``staging.cdr_charging_periods``) share ``(source_file, record_no)``
with their record-level table: pass ``cascade=`` so a failing derived row also removes its
parent record (and siblings) from the other tables. The record is then rejected once,
whole, and the per-file accounting (read = staged + rejected) still balances.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import polars as pl

from pipeline.ingest.run import ensure_tables

REJECT_REASONS_COLUMN = "_reject_reasons"
RAW_MAX_CHARS = 2000

# Staging table -> raw table its records come from (for the reject's raw text).
RAW_TABLE_OF: dict[str, str] = {
    "staging.sites": "raw.registry_sites",
    "staging.evses": "raw.registry_evses",
    "staging.ocpp_frames": "raw.ocpp_frames",
    "staging.backend_sessions": "raw.backend_sessions",
    "staging.cdrs": "raw.cdrs",
    "staging.cdr_charging_periods": "raw.cdrs",
    "staging.tariff_versions": "raw.tariffs",
    "staging.ems_intervals": "raw.ems_intervals",
    "staging.location_evse_status": "raw.locations",
    "staging.tokens": "raw.tokens",
}
_LINEAGE = ("source_file", "record_no")
# DuckDB's implicit row identity: the one key every staging table has, derived ones too.
_ROWID = "_quarantine_rowid"


class ModelSchemaError(RuntimeError):
    """The table's shape (columns, dtypes) breaks its model: a code defect, not bad data."""


@dataclass(frozen=True)
class QuarantineResult:
    """What enforcing a row model (or SQL routing) did to one staging table.

    Attributes
    ----------
    table : str
        The staging table, ``schema.name``.
    staged : int
        Rows left in the table afterwards.
    rejected : int
        Rows moved to ``quarantine.rejects`` by this call (cascaded rows not counted).
    top_reasons : list of (str, int)
        The most frequent reasons and how many rows carried each, most frequent first.
    """

    table: str
    staged: int
    rejected: int
    top_reasons: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"table": self.table, "staged": self.staged, "rejected": self.rejected,
                "top_reasons": [list(r) for r in self.top_reasons]}


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = $s and table_name = $t "
        "order by ordinal_position", {"s": schema, "t": name}).fetchall()
    return [r[0] for r in rows]


def _raw_text_sql(conn: duckdb.DuckDBPyConnection, raw_table: str | None) -> tuple[str, str]:
    """A join clause and an expression giving each record's raw text (``r`` alias)."""
    if raw_table is None:
        return "", "null::varchar"
    cols = [c for c in _columns(conn, raw_table) if c not in (*_LINEAGE, "ingested_at")]
    if not cols:
        return "", "null::varchar"
    if cols == ["obj"]:
        expr = "r.obj::varchar"
    else:  # tabular raw rows: the fields as one JSON object, in file column order
        expr = "to_json({" + ", ".join(f"'{c}': r.\"{c}\"" for c in cols) + "})::varchar"
    join = f"left join {raw_table} as r on r.source_file = q.source_file and r.record_no = q.record_no"
    return join, f"left({expr}, {RAW_MAX_CHARS})"


def clear_rejects(conn: duckdb.DuckDBPyConnection, table: str, stage: str) -> None:
    """Forget the quarantine rows an earlier run wrote for ``table`` at ``stage``."""
    conn.execute("delete from quarantine.rejects where staging_table = $t and stage = $s",
                 {"t": table, "s": stage}).fetchall()


def _quarantine(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    stage: str,
    bad: pl.DataFrame,
    raw_table: str | None,
    cascade: Sequence[str],
    recorded_as: str | None = None,
) -> None:
    """Insert ``bad`` (``_quarantine_rowid, source_file, record_no, reasons``) and delete it."""
    join, raw_expr = _raw_text_sql(conn, raw_table)
    conn.register("_quarantine_bad", bad.to_arrow())
    try:
        # One reject row per record, even when several derived rows of it failed.
        conn.execute(f"""
            insert into quarantine.rejects by name
            select $source as source, q.source_file, q.record_no, {raw_expr} as raw, q.reasons,
                   $stage as stage, now() as ingested_at, $table as staging_table
            from (
                select source_file, record_no, list_sort(list_distinct(flatten(list(reasons)))) as reasons
                from _quarantine_bad group by all
            ) as q {join}
        """, {"source": source, "stage": stage, "table": recorded_as or table}).fetchall()
        conn.execute(f"delete from {table} where rowid in (select {_ROWID} from _quarantine_bad)").fetchall()
        for other in cascade:
            conn.execute(
                f"delete from {other} where (source_file, record_no) in "
                "(select (source_file, record_no) from _quarantine_bad)").fetchall()
    finally:
        conn.unregister("_quarantine_bad")


def _result(conn, table: str, bad: pl.DataFrame) -> QuarantineResult:
    counts: Counter[str] = Counter()
    for reasons in bad.get_column("reasons").to_list() if bad.height else []:
        counts.update(set(reasons))
    staged = conn.execute(f"select count(*) from {table}").fetchall()[0][0]
    return QuarantineResult(table, staged, bad.height, counts.most_common(10))


def route_rejects(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    *,
    raw_table: str | None = None,
    cascade: Sequence[str] = (),
    recorded_as: str | None = None,
    clear: bool = True,
) -> QuarantineResult:
    """Move rows whose SQL-computed ``_reject_reasons`` is non-empty to the quarantine.

    The column is dropped afterwards, so the staging table keeps only its own columns.
    A table without the column is left as it is. ``recorded_as``: the staging table the
    quarantine names (a batch staged into a side table); ``clear=False``: the caller
    already cleared the quarantine rows of the files it stages.
    """
    ensure_tables(conn)
    if clear:
        clear_rejects(conn, recorded_as or table, "staging")
    if REJECT_REASONS_COLUMN not in _columns(conn, table):
        return _result(conn, table, pl.DataFrame({"reasons": []}))
    bad = conn.sql(
        f"select rowid as {_ROWID}, source_file, record_no, {REJECT_REASONS_COLUMN} as reasons "
        f"from {table} where len(coalesce({REJECT_REASONS_COLUMN}, [])) > 0").pl()
    if bad.height:
        _quarantine(conn, table, source, "staging", bad, raw_table or RAW_TABLE_OF.get(table), cascade,
                    recorded_as=recorded_as)
    conn.execute(f"alter table {table} drop column {REJECT_REASONS_COLUMN}").fetchall()
    return _result(conn, table, bad)


def _model_columns(model) -> list[str]:
    return list(model.to_schema().columns)


def failing_rows(frame: pl.DataFrame, model) -> pl.DataFrame:
    """Validate ``frame`` lazily (every failure collected); rows that fail, with reasons.

    Returns a frame of ``_row`` (0-based position in ``frame``) and ``reasons`` (list of
    ``column:check``). A failure not tied to a row (a missing column, a wrong dtype) means
    the staging SQL and the model disagree: that raises ``ModelSchemaError``.
    """
    from pandera.config import ValidationDepth, config_context
    from pandera.errors import SchemaErrors

    empty = pl.DataFrame(schema={"_row": pl.UInt32, "reasons": pl.List(pl.String)})
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            model.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        schema_level = cases.filter(pl.col("index").is_null())
        if schema_level.height:
            raise ModelSchemaError(
                f"{model.__name__}: {schema_level.select('column', 'check').rows()}") from exc
        # A dataframe-level check names the model as its column: the check name says it all.
        reason = (pl.when(pl.col("schema_context") == "DataFrameSchema").then(pl.col("check"))
                  .otherwise(pl.concat_str([pl.col("column"), pl.lit(":"), pl.col("check")])))
        return (cases.group_by("index")
                .agg(reason.unique().sort().alias("reasons"))
                .select(pl.col("index").cast(pl.UInt32).alias("_row"), "reasons")
                .sort("_row"))
    return empty


# Python datetimes span years 1-9999; DuckDB parses far beyond (e.g. "99999-01-01"), and
# pandera's failure report converts values to Python: such a time crashed the whole table.
_PY_MIN_AT = datetime(1, 1, 2, tzinfo=UTC)
_PY_MAX_AT = datetime(9999, 12, 30, tzinfo=UTC)


def _out_of_range_times(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` with a reason added for each time outside years 1-9999, and a copy to validate
    with those times nulled (the row is rejected either way, for every reason it has)."""
    cols = [c for c, dt in frame.schema.items() if isinstance(dt, pl.Datetime) and c not in _LINEAGE]
    if not cols:
        return frame, frame

    def outside(c: str) -> pl.Expr:
        lo, hi = (pl.lit(v).cast(frame.schema[c]) for v in (_PY_MIN_AT, _PY_MAX_AT))
        return ((pl.col(c) < lo) | (pl.col(c) > hi)).fill_null(False)

    reasons = [pl.when(outside(c)).then(pl.lit([f"{c}:out_of_range_time"])).otherwise(pl.lit([], pl.List(pl.String)))
               for c in cols]
    frame = frame.with_columns(pl.concat_list(pl.col("_sql_reasons"), *reasons).alias("_sql_reasons"))
    checked = frame.with_columns(pl.when(outside(c)).then(None).otherwise(pl.col(c)).alias(c) for c in cols)
    return frame, checked


# Rows validated per polars frame: bounds enforcement's memory on the largest tables.
ENFORCE_CHUNK_ROWS = 2_000_000


def enforce(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    model,
    source: str,
    *,
    raw_table: str | None = None,
    cascade: Sequence[str] = (),
    recorded_as: str | None = None,
    clear: bool = True,
) -> QuarantineResult:
    """Validate ``table`` with the pandera polars ``model``; quarantine and delete failing rows.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        Warehouse connection.
    table : str
        Staging table, ``schema.name``; it must have ``source_file`` and ``record_no``.
    model : type[pandera.polars.DataFrameModel]
        The table's row model (``pipeline.models.staging``). Only the model's columns are read (plus lineage), so wide
        JSON columns the model does not name never leave DuckDB.
    source : str
        Landing sub-folder the records came from (``quarantine.rejects.source``).
    raw_table : str, optional
        Where the record's raw text is looked up; defaults from ``RAW_TABLE_OF``.
    cascade : sequence of str
        Other staging tables holding rows of the same records, deleted with a failing one.

    Returns
    -------
    QuarantineResult
        Rows left, rows rejected by this call and the top reasons.
    """
    ensure_tables(conn)
    if clear:
        clear_rejects(conn, recorded_as or table, "contract")
    table_cols = _columns(conn, table)
    has_sql_reasons = REJECT_REASONS_COLUMN in table_cols
    wanted = [c for c in _model_columns(model) if c in table_cols and c not in _LINEAGE]
    select = ", ".join([f"rowid as {_ROWID}", *_LINEAGE, *(f'"{c}"' for c in wanted)])
    if has_sql_reasons:
        select += f", coalesce({REJECT_REASONS_COLUMN}, [])::varchar[] as _sql_reasons"
    # rowids keep their gaps after deletes (route_rejects): slice up to the largest one
    end = conn.execute(f"select coalesce(max(rowid) + 1, 0) from {table}").fetchall()[0][0]
    bads = []
    # In slices of rowid: an OCPP night is tens of millions of rows, and a whole-table
    # polars frame would cost more memory than DuckDB itself is allowed.
    for lo in range(0, max(end, 1), ENFORCE_CHUNK_ROWS):
        frame = conn.sql(
            f"select {select} from {table} where rowid >= $lo and rowid < $hi order by rowid",
            params={"lo": lo, "hi": lo + ENFORCE_CHUNK_ROWS},
        ).pl()
        if not has_sql_reasons:
            frame = frame.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("_sql_reasons"))
        frame, checked = _out_of_range_times(frame)
        fails = failing_rows(checked.drop(_ROWID, "_sql_reasons"), model)
        # Every reason in one reject row: what SQL could not type and what the model refused.
        bads.append(frame.with_row_index("_row").join(fails, on="_row", how="left")
                    .with_columns(pl.concat_list(pl.col("_sql_reasons"),
                                                 pl.col("reasons").fill_null(pl.lit([], dtype=pl.List(pl.String))))
                                  .alias("reasons"))
                    .filter(pl.col("reasons").list.len() > 0)
                    .select(_ROWID, *_LINEAGE, "reasons"))
    bad = pl.concat(bads) if bads else pl.DataFrame()
    if bad.height:
        _quarantine(conn, table, source, "contract", bad, raw_table or RAW_TABLE_OF.get(table), cascade,
                    recorded_as=recorded_as)
    if has_sql_reasons:
        conn.execute(f"alter table {table} drop column {REJECT_REASONS_COLUMN}").fetchall()
    return _result(conn, table, bad)



# Landing source -> its record-level staging table(s): a record is staged when it is there.
RECORD_TABLES: dict[str, tuple[str, ...]] = {
    "registry": ("staging.sites", "staging.evses"),
    "ocpp": ("staging.ocpp_frames",),
    "backend": ("staging.backend_sessions",),
    "cdrs": ("staging.cdrs",),
    "tariffs": ("staging.tariff_versions",),
    "ems": ("staging.ems_intervals",),
    "locations": ("staging.location_evse_status",),
    "tokens": ("staging.tokens",),
}


def _existing(conn: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> list[str]:
    return [t for t in tables if _columns(conn, t)]


def file_accounting(conn: duckdb.DuckDBPyConnection, source: str) -> pl.DataFrame:
    """Per file of ``source``: records read, staged, rejected and whether they balance.

    A record is staged once however many rows it became (a Location's EVSEs), and rejected
    once however many reject rows name it; a reject without a record number (a whole file,
    an unknown header) is one record each, as the loader counted it.
    """
    ensure_tables(conn)
    tables = _existing(conn, RECORD_TABLES.get(source, ()))
    staged_union = " union all ".join(
        f"select distinct source_file, record_no from {t}" for t in tables) or \
        "select null::varchar as source_file, null::bigint as record_no where false"
    return conn.sql(f"""
        with staged as (
            select source_file, count(distinct record_no) as n from ({staged_union}) group by 1
        ),
        rejected as (
            select source_file, count(distinct record_no) + count(*) filter (where record_no is null) as n
            from quarantine.rejects where source = $source group by 1
        ),
        both_ways as (
            select r.source_file, count(distinct r.record_no) as n
            from quarantine.rejects as r
            join ({staged_union}) as s on s.source_file = r.source_file and s.record_no = r.record_no
            where r.source = $source group by 1
        )
        select f.source, f.source_file, f.records_read,
               coalesce(s.n, 0) as records_staged, coalesce(r.n, 0) as records_rejected,
               coalesce(b.n, 0) as records_staged_and_rejected,
               f.records_read = coalesce(s.n, 0) + coalesce(r.n, 0) and coalesce(b.n, 0) = 0 as balanced
        from meta.files as f
        left join staged as s using (source_file)
        left join rejected as r using (source_file)
        left join both_ways as b using (source_file)
        where f.source = $source
        order by f.source_file
    """, params={"source": source}).pl()


def update_file_accounting(conn: duckdb.DuckDBPyConnection, source: str) -> pl.DataFrame:
    """Write staged/rejected counts of ``source``'s files into ``meta.files``; the accounting."""
    acc = file_accounting(conn, source)
    if acc.height:
        conn.register("_acc", acc.select("source_file", "records_staged", "records_rejected").to_arrow())
        try:
            conn.execute("""update meta.files as f set records_staged = a.records_staged,
                            records_rejected = a.records_rejected
                            from _acc as a where f.source_file = a.source_file""").fetchall()
        finally:
            conn.unregister("_acc")
    return acc
