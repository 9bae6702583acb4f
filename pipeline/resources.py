"""Dagster resources: the DuckDB warehouse and the landing folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipeline.config import Settings
from pipeline.warehouse import configure


class WarehouseResource(DuckDBResource):
    """``DuckDBResource`` that creates the file's folder and applies chargeline's settings."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as conn:
            yield configure(conn)


class LandingResource(dg.ConfigurableResource):
    """The landing folder and the options file (tolerances, column mappings)."""

    path: str
    config_file: str | None = None
    reports: str | None = None

    def settings(self) -> Settings:
        return Settings.resolve(landing=self.path, reports=self.reports, config=self.config_file)


def make_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "duckdb": WarehouseResource(database=str(settings.warehouse)),
        "landing": LandingResource(path=str(settings.landing), reports=str(settings.reports)),
    }
