"""The one Dagster ``Definitions`` of chargeline (``dagster dev -w workspace.yaml``)."""

from __future__ import annotations

import dagster as dg

from assets.raw import raw_assets
from pipeline.config import Settings
from pipeline.resources import make_resources

ALL_ASSETS = [*raw_assets]
ALL_CHECKS: list[dg.AssetChecksDefinition] = []


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.resolve()
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        resources=make_resources(settings),
        # One DuckDB file, one writer at a time: parallel steps would only queue on its lock.
        executor=dg.in_process_executor,
        jobs=[dg.define_asset_job("nightly", selection=dg.AssetSelection.all())],
    )


defs = build_definitions()
