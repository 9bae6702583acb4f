"""Recon layer: ``recon.status_timeline``, each connector's OCPP status as OCPI statuses.

Belongs here: turning StatusNotifications into per-connector intervals mapped to the OCPI
EVSE status enum (``pipeline.models.status_map``), with the Location snapshots published
in each interval, so that ``status_mismatch`` (``checks/location_status.py``) and analysts
compare like with like. Built even without ``locations/`` (then no snapshot columns filled).
"""

import dagster as dg

from pipeline.flags import table_exists
from pipeline.models.status_map import sql_params
from pipeline.resources import WarehouseResource
from pipeline.sql import execute, load_sql

TIMELINE_SQL = "assets/sql/recon/status_timeline.sql"
_PUBLISHED = "select evse_uid, snapshot_at, status from staging.location_evse_status"
_NONE = "select null::varchar as evse_uid, null::timestamptz as snapshot_at, null::varchar as status where false"


def build_status_timeline(conn) -> dict[str, int]:
    """(Re)build ``recon.status_timeline``; counts of intervals, unmapped ones and snapshots."""
    for t in ("recon",):
        execute(conn, f"create schema if not exists {t}")
    if not table_exists(conn, "staging.ocpp_status"):
        return {"intervals": 0, "unmapped": 0, "snapshots_disagreeing": 0}
    published = _PUBLISHED if table_exists(conn, "staging.location_evse_status") else _NONE
    execute(conn, f"create or replace temp view _status_published as {published}")
    execute(conn, f"create or replace table recon.status_timeline as\n{load_sql(TIMELINE_SQL)}", sql_params())
    n, unmapped, dis = conn.execute(
        "select count(*), count(*) filter (where is_unmapped), coalesce(sum(n_snapshots_disagreeing), 0) "
        "from recon.status_timeline"
    ).fetchall()[0]
    return {"intervals": n, "unmapped": unmapped, "snapshots_disagreeing": int(dis)}


@dg.asset(
    name="recon_status_timeline",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in ("stg_ocpp_status", "stg_evses", "stg_sites", "stg_location_evse_status")],
    description="recon.status_timeline: per connector, OCPP status intervals mapped to OCPI EVSE status.",
)
def recon_status_timeline(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    with duckdb.get_connection() as conn:
        counts = build_status_timeline(conn)
    if counts["unmapped"]:
        context.log.warning(f"{counts['unmapped']} StatusNotifications with a status outside the mapping (UNKNOWN)")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": counts["intervals"],
        "unmapped_statuses": counts["unmapped"],
        "snapshots_disagreeing": counts["snapshots_disagreeing"],
    })
