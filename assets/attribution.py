"""Energy attribution: sessions' energy in site EMS intervals, and where it came from.

Belongs here: what each session can have drawn in each site interval (bounds and a point
estimate, ``recon.session_intervals``), setting it beside what the site EMS measured
(``recon.site_intervals``), judging per interval and jointly per site whether any distribution
of the sessions' energies explains the EMS (``recon.attribution_judgement``, read by the
``energy_attribution_mismatch`` check; solver in ``pipeline/attribution.py``) and the
microgrid PV / battery / grid share of each session (``marts.session_energy_sources``).
Options: ``[attribution]`` and the tolerances of ``[checks.energy_attribution_mismatch]``.
"""

import dagster as dg

from pipeline.attribution import judge
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table, load_sql, query

DEFAULTS = {
    "interval_minutes": 15,
    "clock_offset_min_s": 60,
    "default_max_power_kw": 400.0,
    "power_margin": 1.25,
    "bound_power_margin": 1.05,
    "register_rounding_kwh": 0.002,
    "epoch_before": "2000-01-01T00:00:00+00:00",
    "joint_max_rounds": 5,
    "joint_max_filter": 48,
}

JUDGEMENT_TOLERANCES = ("abs_kwh", "rel", "conversion_loss", "standby_kw_per_evse")


def attribution_params(options: dict) -> dict:
    """``[attribution]`` options over the built-in defaults."""
    return {**DEFAULTS, **options.get("attribution", {})}


def judgement_params(options: dict) -> dict:
    """The band tolerances: the check's own (``[checks.energy_attribution_mismatch]``)."""
    section = options.get("checks", {}).get("energy_attribution_mismatch", {})
    return {k: section[k] for k in JUDGEMENT_TOLERANCES}


def build_judgement(conn, options: dict) -> int:
    """``recon.attribution_judgement``: per-interval band and the joint verdict per site."""
    params = attribution_params(options)
    bands = query(conn, load_sql("assets/sql/recon/attribution_bands.sql"), **judgement_params(options))
    edges = query(conn, load_sql("assets/sql/recon/attribution_edges.sql"))
    out = judge(bands, edges, max_rounds=int(params["joint_max_rounds"]),
                max_filter=int(params["joint_max_filter"]))
    conn.register("_judgement", out.to_arrow())
    try:
        conn.execute("create or replace table recon.attribution_judgement as select * from _judgement")
    finally:
        conn.unregister("_judgement")
    return len(out)


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
    deps=[dg.AssetKey(k) for k in (
        "lineage_sessions", "lineage_transactions", "stg_ocpp_meter_values", "stg_evses",
        "stg_location_evse_status", "stg_ocpp_status", "stg_ocpp_boots")],
    description="recon.session_intervals: least / most / prorated energy of each session per 15-minute interval.",
)
def recon_session_intervals(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    return _build(context, duckdb, landing, "recon.session_intervals")


@dg.asset(
    name="recon_site_intervals",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("recon_session_intervals", "stg_ems_intervals", "stg_sites", "stg_evses")],
    description="recon.site_intervals: EMS EV energy per site interval beside the sessions' sum.",
)
def recon_site_intervals(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    return _build(context, duckdb, landing, "recon.site_intervals")


@dg.asset(
    name="recon_attribution_judgement",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("recon_site_intervals", "recon_session_intervals")],
    description="recon.attribution_judgement: EMS value vs the sessions' band per interval, and "
                "the joint feasibility of each site's intervals.",
)
def recon_attribution_judgement(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource
):
    with duckdb.get_connection() as conn:
        rows = build_judgement(conn, landing.settings().options)
    context.log.info(f"recon.attribution_judgement: {rows} rows")
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


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
