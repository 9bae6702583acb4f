"""The one Dagster ``Definitions`` of chargeline (``dagster dev -w workspace.yaml``).

Assets and checks are collected from every module of the ``assets`` and ``checks``
packages, so adding a layer or a check means adding a module, not editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg

import assets as assets_pkg
import checks as checks_pkg
from pipeline.config import Settings
from pipeline.resources import make_resources


def _modules(package) -> list:
    return [
        importlib.import_module(f"{package.__name__}.{m.name}")
        for m in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name)
        if not m.name.startswith("_")
    ]


ALL_ASSETS = list(dg.load_assets_from_modules(_modules(assets_pkg)))
ALL_CHECKS = list(dg.load_asset_checks_from_modules(_modules(assets_pkg) + _modules(checks_pkg)))


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    from pipeline.schedules import (
        build_jobs,
        build_publish_sensors,
        build_schedule,
        build_sensor,
        split_assets,
    )

    settings = settings or Settings.resolve()
    jobs = build_jobs(*split_assets(tuple(ALL_ASSETS)))
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        resources=make_resources(settings),
        # The steps of a run share its one DuckDB file (the work file or the run's engine);
        # days run side by side as separate runs (docs/operations.md).
        executor=dg.in_process_executor,
        jobs=list(jobs.values()),
        schedules=[build_schedule(jobs["ingest"])],
        sensors=[build_sensor(jobs["ingest"], jobs["reconcile"]),
                 *build_publish_sensors(jobs["ingest"], jobs["reconcile"])],
    )


defs = build_definitions()
