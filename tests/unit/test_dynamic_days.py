"""Days of any year are partitions: the sensor and the schedule register what they request."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import duckdb

from pipeline.day_queue import ensure_meta, pending_days
from pipeline.definitions import defs
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.warehouse import configure


def _resources(tmp_path):
    (tmp_path / "landing").mkdir(exist_ok=True)
    return {"duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb")),
            "landing": LandingResource(path=str(tmp_path / "landing"))}


def test_sensor_requests_and_registers_days_of_any_year(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        configure(conn)
        ensure_meta(conn)
        conn.execute("insert into meta.pending_days values ('2035-01-15', now()), ('2019-03-10', now())")
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance, \
            dg.build_sensor_context(instance=instance, resources=_resources(tmp_path)) as context:
        requests = sensor(context)
        assert [(r.job_name, r.partition_key) for r in requests] == [
            ("reconcile", "2019-03-10"), ("reconcile", "2035-01-15")]
        assert list(instance.get_dynamic_partitions("days")) == ["2019-03-10", "2035-01-15"]


def test_schedule_registers_yesterday_even_in_2035():
    schedule = defs.resolve_schedule_def("nightly_schedule")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance,
                                            scheduled_execution_time=datetime(2035, 1, 16, 4, 30, tzinfo=UTC))
        request = schedule(context)
        assert request.tags["chargeline/night"] == "2035-01-15" and request.partition_key is None
        assert instance.has_dynamic_partition("days", "2035-01-15")


def test_a_legacy_rebuild_marker_becomes_the_days_it_stood_for():
    conn = configure(duckdb.connect(":memory:"))
    ensure_meta(conn)
    conn.execute("insert into meta.file_days values ('cdrs/a.json', 'h', '2019-03-10'), ('cdrs/a.json', 'h', null)")
    conn.execute("insert into meta.pending_days values ('0001-01-01', now())")
    ensure_meta(conn)
    assert [d for d, _ in pending_days(conn)] == [date(2019, 3, 10)]
