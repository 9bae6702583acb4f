"""Marts: ``marts.auth_latency``, Authorize round-trip percentiles per site and charger.

Belongs here: the analyst-facing latency table. The finding per slow charger is the
``auth_latency`` rule (``checks/auth.py``); both use ``[checks.auth_latency].tolerance_ms``.
"""

import dagster as dg

from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table, execute, table_exists

DEFAULT_TOLERANCE_MS = 2000


def build_auth_latency(conn, options: dict) -> int:
    """(Re)build ``marts.auth_latency``; row count (0 and no table without Authorize data)."""
    needed = ("staging.ocpp_authorizations", "staging.evses", "staging.sites")
    if not all(table_exists(conn, t) for t in needed):
        return 0
    execute(conn, "create schema if not exists marts")
    tol = options.get("checks", {}).get("auth_latency", {}).get("tolerance_ms", DEFAULT_TOLERANCE_MS)
    return build_table(conn, "marts.auth_latency", {"tolerance_ms": tol})


@dg.asset(
    name="marts_auth_latency",
    group_name="marts",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("stg_ocpp_authorizations", "stg_evses", "stg_sites")],
    description="marts.auth_latency: Authorize round-trip p50/p95/p99 per site and charger.",
)
def marts_auth_latency(duckdb: WarehouseResource, landing: LandingResource):
    with duckdb.get_connection() as conn:
        n = build_auth_latency(conn, landing.settings().options)
    return dg.MaterializeResult(metadata={"dagster/row_count": n})
