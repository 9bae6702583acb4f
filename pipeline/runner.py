"""Run the whole pipeline in-process (what ``chargeline run`` and ``demo`` do)."""

from __future__ import annotations

import dagster as dg

from pipeline.config import Settings
from pipeline.definitions import ALL_ASSETS, ALL_CHECKS
from pipeline.resources import make_resources


def run_pipeline(
    settings: Settings,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "WARNING",
) -> dg.ExecuteInProcessResult:
    """Materialize every asset and run every check, in dependency order, in this process.

    The console log defaults to warnings: the CLI prints its own summary, and Dagster's
    per-step chatter would bury it. Failures still print their stack traces.
    """
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        resources=make_resources(settings),
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=raise_on_error,
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
