"""Dagster resources: the DuckDB warehouse and the landing folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from pipeline.config import Settings
from pipeline.warehouse import configure


class WarehouseResource(DuckDBResource):
    """The DuckDB file a step computes in, with chargeline's session settings.

    Without ``store`` (a test on a temporary warehouse) every step uses ``database``.
    With ``store`` (what ``make_resources`` builds) ``database`` is the work file the ingest
    writes, and a run of days computes in its own engine file, prepared from the work file
    on its first connection (``pipeline.engine``): days never share a writer.
    """

    store: str | None = None
    analysts: str | None = None
    lookback_days: int = 1
    _days: list[date] = PrivateAttr(default_factory=list)
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from pipeline.day_partitions import days_of_run

        run = context.run
        self._run_id = run.run_id if run else None
        self._days = days_of_run(run.tags, context.instance) if run else []

    @property
    def engine(self) -> Path | None:
        """The run's engine file, when this run computes days from the store's inputs."""
        if not (self.store and self._days and self._run_id):
            return None
        from pipeline.engine import engine_path

        return engine_path(Path(self.analysts or self.database), self._run_id)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        engine = self.engine
        if engine is not None:
            from pipeline.engine import prepare_engine

            prepare_engine(engine, Path(self.database), self._days, self.lookback_days, configure)
            with duckdb.connect(str(engine)) as conn:
                yield configure(conn)
            return
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        if not self.store:
            with super().get_connection() as conn:
                yield configure(conn)
            return
        from pipeline.engine import work_lock
        from pipeline.publish import locked

        with locked(work_lock(Path(self.database))), super().get_connection() as conn:
            yield configure(conn)


class LandingResource(dg.ConfigurableResource):
    """The landing folder and the options file (tolerances, column mappings)."""

    path: str
    config_file: str | None = None
    reports: str | None = None

    def settings(self) -> Settings:
        return Settings.resolve(landing=self.path, reports=self.reports, config=self.config_file)


def make_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    from pipeline.engine import store_location, work_path

    night = settings.options.get("night", {}) if isinstance(settings.options, dict) else {}
    return {
        "duckdb": WarehouseResource(
            database=str(work_path(settings.warehouse)),
            store=store_location(settings.warehouse, settings.options),
            analysts=str(settings.warehouse),
            lookback_days=int(night.get("lookback_days", 1)),
        ),
        "landing": LandingResource(path=str(settings.landing), reports=str(settings.reports)),
    }
