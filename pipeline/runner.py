"""Run the whole pipeline in-process (what ``chargeline run`` and ``demo`` do)."""

from __future__ import annotations

import dagster as dg

from pipeline.config import Settings
from pipeline.definitions import ALL_ASSETS, ALL_CHECKS
from pipeline.resources import make_resources


def run_pipeline(
    settings: Settings, raise_on_error: bool = True, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        resources=make_resources(settings),
        raise_on_error=raise_on_error,
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
