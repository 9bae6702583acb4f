"""Energy attribution: sessions' energy in site EMS intervals, and where it came from.

Belongs here: spreading each session's energy over time (``recon.session_intervals``),
setting it beside what the site EMS measured (``recon.site_intervals``, read by the
``energy_attribution_mismatch`` check) and the microgrid PV / battery / grid share of each
session (``marts.session_energy_sources``). Options: ``[attribution]`` in defaults.toml.
"""

import dagster as dg

from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table

DEFAULTS = {
    "interval_minutes": 15,
    "clock_offset_min_s": 60,
    "default_max_power_kw": 400.0,
    "power_margin": 1.25,
    "register_rounding_kwh": 0.002,
    "epoch_before": "2000-01-01T00:00:00+00:00",
}


def attribution_params(options: dict) -> dict:
    """``[attribution]`` options over the built-in defaults."""
    return {**DEFAULTS, **options.get("attribution", {})}


def _build(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource, table: str):
    params = attribution_params(landing.settings().options)
    with duckdb.get_connection() as conn:
        rows = build_table(conn, table, params)
    context.log.info(f"{table}: {rows} rows")
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


@dg.asset(
    name="recon_session_intervals",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("lineage_sessions", "lineage_transactions", "stg_ocpp_meter_values", "stg_evses")],
    description="recon.session_intervals: each session's energy prorated into 15-minute site intervals.",
)
def recon_session_intervals(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    return _build(context, duckdb, landing, "recon.session_intervals")


@dg.asset(
    name="recon_site_intervals",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("recon_session_intervals", "stg_ems_intervals", "stg_sites")],
    description="recon.site_intervals: EMS EV energy per site interval beside the sessions' sum.",
)
def recon_site_intervals(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    return _build(context, duckdb, landing, "recon.site_intervals")


@dg.asset(
    name="marts_session_energy_sources",
    group_name="marts",
    kinds={"duckdb"},
    deps=[dg.AssetKey("recon_site_intervals")],
    description="marts.session_energy_sources: each microgrid session's PV / battery / grid share.",
)
def marts_session_energy_sources(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource
):
    return _build(context, duckdb, landing, "marts.session_energy_sources")
