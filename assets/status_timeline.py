"""Recon layer: EVSE status as timelines, OCPP against the public map.

Belongs here: three relations that ``status_mismatch`` (``checks/location_status.py``) and
analysts read, so that both compare like with like:

- ``recon.status_timeline``: StatusNotifications as per-connector intervals mapped to the
  OCPI EVSE status enum (``pipeline.models.status_map``). Built even without ``locations/``.
- ``recon.status_published``: what the map showed, a step function over the Location
  snapshots (full push, EVSE PATCH, pulled listing), each holding until the next.
- ``recon.status_comparison``: both timelines cut into pieces and judged once: the one
  definition of "the map agrees with OCPP" (grace and offline margin from
  ``[checks.status_mismatch]``).
"""

import dagster as dg

from pipeline.config import load_options
from pipeline.models.status_map import sql_params
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import execute, load_sql, table_exists

TIMELINE_SQL = "assets/sql/recon/status_timeline.sql"
PUBLISHED_SQL = "assets/sql/recon/status_published.sql"
COMPARISON_SQL = "assets/sql/recon/status_comparison.sql"
_PUBLISHED = ("select evse_uid, location_id, status, snapshot_at, published_at, snapshot_kind, source_file, "
              "record_no from staging.location_evse_status")
_NONE_PUBLISHED = ("select null::varchar as evse_uid, null::varchar as location_id, null::varchar as status, "
                   "null::timestamptz as snapshot_at, null::timestamptz as published_at, "
                   "null::varchar as snapshot_kind, null::varchar as source_file, null::bigint as record_no where false")
_TX = ("select charge_point_id, connector_id, transaction_id, start_received_at, stopped_at, stop_received_at, "
       "has_stop, stop_from_offline_queue from lineage.transactions")
_NONE_TX = ("select null::varchar as charge_point_id, null::integer as connector_id, null::varchar as transaction_id, "
            "null::timestamptz as start_received_at, null::timestamptz as stopped_at, "
            "null::timestamptz as stop_received_at, null::boolean as has_stop, "
            "null::boolean as stop_from_offline_queue where false")
# Statuses (OCPP and published) hold until the end of the data: the last frame or snapshot seen.
_HORIZON = "select greatest({}) as end_at"


def comparison_params(options: dict | None) -> dict:
    """The agreement rules' parameters: the mapping and ``[checks.status_mismatch]`` margins."""
    section = (options or load_options()).get("checks", {}).get("status_mismatch", {})
    return {**sql_params(), "grace_s": section["grace_s"], "clock_margin_s": section["clock_margin_s"]}


def build_status_timeline(conn, options: dict | None = None) -> dict[str, int]:
    """(Re)build the three status relations; counts of intervals, unmapped statuses, pieces."""
    execute(conn, "create schema if not exists recon")
    if not table_exists(conn, "staging.ocpp_status"):
        return {"intervals": 0, "unmapped": 0, "snapshots": 0, "disagreeing_s": 0}
    published = _PUBLISHED if table_exists(conn, "staging.location_evse_status") else _NONE_PUBLISHED
    execute(conn, f"create or replace temp view _status_published as {published}")
    execute(conn, f"create or replace temp view _status_tx as {_TX if table_exists(conn, 'lineage.transactions') else _NONE_TX}")
    ends = ["(select max(received_at) from staging.ocpp_status)", "(select max(published_at) from _status_published)",
            "(select max(greatest(start_received_at, stop_received_at)) from _status_tx)"]
    if table_exists(conn, "staging.ocpp_frames"):
        ends.append("(select max(received_at) from staging.ocpp_frames)")
    execute(conn, f"create or replace temp view _status_horizon as {_HORIZON.format(', '.join(ends))}")
    params = comparison_params(options)
    execute(conn, f"create or replace table recon.status_timeline as\n{load_sql(TIMELINE_SQL)}", params)
    execute(conn, f"create or replace table recon.status_published as\n{load_sql(PUBLISHED_SQL)}", params)
    execute(conn, f"create or replace table recon.status_comparison as\n{load_sql(COMPARISON_SQL)}", params)
    n, unmapped = conn.execute(
        "select count(*), count(*) filter (where is_unmapped) from recon.status_timeline").fetchall()[0]
    snaps = conn.execute("select count(*) from recon.status_published").fetchall()[0][0]
    dis = conn.execute(
        "select coalesce(sum(duration_s) filter (where agrees = false), 0) from recon.status_comparison").fetchall()[0][0]
    return {"intervals": n, "unmapped": unmapped, "snapshots": snaps, "disagreeing_s": int(dis)}


@dg.asset(
    name="recon_status_timeline",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in (
        "stg_ocpp_status", "stg_evses", "stg_sites", "stg_location_evse_status", "lineage_transactions")],
    description="recon.status_timeline / status_published / status_comparison: OCPP and map status as timelines.",
)
def recon_status_timeline(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    options = landing.settings().options
    with duckdb.get_connection() as conn:
        counts = build_status_timeline(conn, options)
    if counts["unmapped"]:
        context.log.warning(f"{counts['unmapped']} StatusNotifications with a status outside the mapping (UNKNOWN)")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": counts["intervals"],
        "unmapped_statuses": counts["unmapped"],
        "published_snapshots": counts["snapshots"],
        "disagreeing_s": counts["disagreeing_s"],
    })
