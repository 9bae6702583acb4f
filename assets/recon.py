"""Recon layer: ``recon.flags``, one row per finding of every failure class.

Belongs here: running the rules declared in ``checks/`` against the lineage. The rules
themselves (SQL, tolerances, explanations) live in ``checks/``.
"""

import dagster as dg

from checks import collect_rules
from pipeline.day_partitions import context_days, daily
from pipeline.day_queue import replace_partitions
from pipeline.flags import build_flags
from pipeline.resources import LandingResource, WarehouseResource

UPSTREAM = [
    "lineage_sessions", "lineage_transactions", "stg_ems_intervals", "stg_ocpp_meter_values",
    "stg_tariff_versions", "recon_session_prices", "recon_charger_clock", "recon_site_intervals",
    "recon_attribution_judgement",
    # location, token, authorization and capability rules
    "recon_status_timeline", "stg_location_evse_status", "stg_tokens", "stg_ocpp_authorizations",
    "stg_ocpp_calls", "stg_ocpp_transaction_events", "stg_evses", "stg_sites", "stg_cdrs",
]


@dg.asset(
    name="recon_flags",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in UPSTREAM],
    description="recon.flags: every finding with evidence, severity and money at risk.",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def recon_flags(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    options = landing.settings().options
    with duckdb.get_connection() as conn:
        # findings of other days keep their rows (and flagged_at); charger findings are renewed
        # a day run computes its whole window and publishes its own days (pipeline.engine)
        with replace_partitions(conn, "recon.flags", [] if duckdb.engine else context_days(context)):
            counts = build_flags(conn, options, collect_rules())
        money = conn.execute("select coalesce(sum(money_at_risk), 0) from recon.flags").fetchone()[0]
    context.log.info(f"findings: {counts}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(counts.values()),
        "findings_by_check": counts,
        "money_at_risk": float(money),
    })
