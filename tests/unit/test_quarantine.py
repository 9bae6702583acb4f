"""pipeline.quarantine: SQL routing and the enforced row models move failing rows, losing nothing."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pytest

from pipeline.ingest.run import ensure_tables
from pipeline.quarantine import ModelSchemaError, enforce, failing_rows, route_rejects
from pipeline.warehouse import connect


class Thing(pa.DataFrameModel):
    source_file: str
    record_no: int = pa.Field(nullable=True)
    thing_id: str = pa.Field(nullable=False)
    energy_kwh: float = pa.Field(ge=0, nullable=True)


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    ensure_tables(c)
    c.execute("""create table raw.things as select * from (values
        ('f.csv', 1::bigint, 'a', '1.5'), ('f.csv', 2, null, '2'), ('f.csv', 3, 'c', '-1'),
        ('f.csv', 4, 'd', 'x')) t(source_file, record_no, thing_id, energy)""")
    yield c
    c.close()


def _build(conn):
    conn.execute("""create or replace table staging.things as
        select source_file, record_no, thing_id, try_cast(energy as double) as energy_kwh,
               case when energy is not null and try_cast(energy as double) is null
                    then ['energy_kwh: not a number'] else [] end::varchar[] as _reject_reasons
        from raw.things""")


def test_route_then_enforce_moves_every_failing_row_once(conn):
    _build(conn)
    routed = route_rejects(conn, "staging.things", "things", raw_table="raw.things")
    result = enforce(conn, "staging.things", Thing, "things", raw_table="raw.things")
    assert (routed.rejected, result.rejected, result.staged) == (1, 2, 1)
    rejects = conn.sql("select record_no, reasons, stage, raw from quarantine.rejects order by record_no").fetchall()
    assert [(r[0], r[2]) for r in rejects] == [(2, "contract"), (3, "contract"), (4, "staging")]
    assert rejects[0][1] == ["thing_id:not_nullable"]
    assert rejects[1][1] == ["energy_kwh:greater_than_or_equal_to(0)"]
    assert '"thing_id":"c"' in rejects[1][3]
    assert "_reject_reasons" not in [c[0] for c in conn.sql("describe staging.things").fetchall()]


def test_rerun_replaces_rejects_instead_of_duplicating(conn):
    for _ in range(2):
        _build(conn)
        route_rejects(conn, "staging.things", "things", raw_table="raw.things")
        enforce(conn, "staging.things", Thing, "things", raw_table="raw.things")
    assert conn.sql("select count(*) from quarantine.rejects").fetchall()[0][0] == 3


def test_cascade_removes_the_parent_record(conn):
    _build(conn)
    conn.execute("create table staging.parents as select distinct source_file, record_no from raw.things")
    route_rejects(conn, "staging.things", "things", raw_table="raw.things", cascade=["staging.parents"])
    enforce(conn, "staging.things", Thing, "things", raw_table="raw.things", cascade=["staging.parents"])
    assert conn.sql("select list(record_no) from staging.parents").fetchall()[0][0] == [1]


def test_schema_level_failure_raises():
    with pytest.raises(ModelSchemaError):
        failing_rows(pl.DataFrame({"source_file": ["f"], "record_no": [1], "thing_id": [1],
                                   "energy_kwh": [1.0]}), Thing)


def test_clean_frame_has_no_failures():
    frame = pl.DataFrame({"source_file": ["f"], "record_no": [1], "thing_id": ["a"], "energy_kwh": [1.0]})
    assert failing_rows(frame, Thing).height == 0


def test_enforce_alone_keeps_sql_and_model_reasons_together(conn):
    _build(conn)
    conn.execute("update raw.things set thing_id = null where record_no = 4")
    _build(conn)
    result = enforce(conn, "staging.things", Thing, "things", raw_table="raw.things")
    assert (result.rejected, result.staged) == (3, 1)
    reasons = conn.sql("select reasons from quarantine.rejects where record_no = 4").fetchall()[0][0]
    assert sorted(reasons) == ["energy_kwh: not a number", "thing_id:not_nullable"]


@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
def test_enforce_in_slices_finds_the_same_failures(conn, monkeypatch, chunk_rows):
    """Large tables are validated a slice of rows at a time; slicing changes no verdict."""
    monkeypatch.setattr("pipeline.quarantine.ENFORCE_CHUNK_ROWS", chunk_rows)
    _build(conn)
    # a deleted row leaves a gap in the rowids (as routing does): the last row must still be read
    conn.execute("delete from staging.things where record_no = 1")
    result = enforce(conn, "staging.things", Thing, "things", raw_table="raw.things")
    assert (result.rejected, result.staged) == (3, 0)
    assert conn.sql("select list(record_no order by record_no) from quarantine.rejects").fetchall()[0][0] == [2, 3, 4]
