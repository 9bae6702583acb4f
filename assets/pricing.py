"""Recon layer: ``recon.session_prices``, each billed (or billable) session re-priced.

Belongs here: the thin asset. Which tariff version a CDR was priced with and what the
session costs under each version is ``pipeline.tariffs.session_prices``; the tariff checks
(``checks/tariffs.py``) compare those prices in SQL. The asset writes only its own table:
readers of the recomputed cost join ``recon.session_prices`` on ``session_key``.
"""

import dagster as dg

from pipeline.resources import LandingResource, WarehouseResource
from pipeline.tariffs.session_prices import build_session_prices


@dg.asset(
    name="recon_session_prices",
    group_name="recon",
    kinds={"duckdb", "python"},
    deps=[dg.AssetKey(k) for k in (
        "lineage_sessions", "lineage_transactions", "stg_cdrs", "stg_tariff_versions", "stg_sites", "stg_evses",
        "stg_ocpp_meter_values",
    )],
    description="recon.session_prices: each CDR session priced under its own tariff, the version in force "
    "(the contract's recomputed cost: price_in_force_excl_vat / _incl_vat), the next.",
)
def recon_session_prices(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    options = landing.settings().options
    with duckdb.get_connection() as conn:
        counts = build_session_prices(conn, options=options)
    context.log.info(f"priced sessions: {counts}")
    return dg.MaterializeResult(metadata={"dagster/row_count": sum(counts.values()), "by_status": counts})


@dg.asset_check(asset=recon_session_prices, description="one price row per session")
def session_prices_unique(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        dupes = conn.execute(
            "select count(*) from (select session_key from recon.session_prices group by 1 having count(*) > 1)"
        ).fetchall()[0][0]
    return dg.AssetCheckResult(passed=dupes == 0, metadata={"duplicate_sessions": dupes})
