"""Staging layer, OCPP: frames typed to UTC and paired, then split by message kind.

Belongs here: the thin assets that build ``staging.ocpp_*`` from ``raw.ocpp_frames``
(SQL in ``assets/sql/staging/ocpp_*.sql``) and move frames that cannot be typed to
``quarantine.rejects``. Record-level table: ``staging.ocpp_frames``; the others are
derived from it and do not count in the per-file accounting.
"""

import dagster as dg
import duckdb

from pipeline.models.ocpp import MILLI_UNITS, V201_ONLY_ACTIONS
from pipeline.models.staging import StgOcppFrames
from pipeline.privacy import token_hash_key, token_hash_params
from pipeline.quarantine import enforce, route_rejects
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table

STAGING_GROUP = "staging"
EPOCH_BEFORE = "2000-01-01T00:00:00Z"  # a charger timestamp earlier than this: clock never set


def ocpp_params(options: dict) -> dict:
    """SQL parameters of the OCPP staging and lineage files, from the options."""
    ocpp = options.get("ocpp", {}) if isinstance(options, dict) else {}
    return {
        "v201_only_actions": list(V201_ONLY_ACTIONS),
        "milli_units": [u.lower() for u in MILLI_UNITS],
        "epoch_before": ocpp.get("epoch_before", EPOCH_BEFORE),
        # 10 min: longer than any CSMS round trip or log-shipping delay seen, far shorter
        # than a connectivity outage (2026-11).
        "offline_queue_s": float(ocpp.get("offline_queue_s", 600)),
        # above the most powerful chargers on the market (HPC 400-600 kW), 2026-11
        "max_plausible_kw": float(ocpp.get("max_plausible_kw", 1000)),
        # a register sample may sit this far outside meterStart..meterStop and still be in
        # their unit (defaults.toml [ocpp] unit_slack_kwh)
        "unit_slack_kwh": float(ocpp.get("unit_slack_kwh", 0.01)),
        **token_hash_params(token_hash_key(options)),
    }


def stage_frames(conn: duckdb.DuckDBPyConnection, params: dict) -> dict:
    """Build ``staging.ocpp_frames``, quarantine untypable frames, enforce the contract."""
    build_table(conn, "staging.ocpp_frames", params)
    routed = route_rejects(conn, "staging.ocpp_frames", "ocpp")
    contract = enforce(conn, "staging.ocpp_frames", StgOcppFrames, "ocpp")
    _update_staged_counts(conn)
    return {"routed": routed, "contract": contract}


def _update_staged_counts(conn: duckdb.DuckDBPyConnection) -> None:
    """``meta.files.records_staged`` for OCPP files: frames that reached staging."""
    conn.execute("""
        update meta.files as f
        set records_staged = coalesce(s.n, 0)
        from (
            select m.source_file, count(o.source_file) as n
            from meta.files as m
            left join staging.ocpp_frames as o on o.source_file = m.source_file
            where m.source = 'ocpp'
            group by m.source_file
        ) as s
        where f.source_file = s.source_file
    """).fetchall()


DERIVED = (
    "staging.ocpp_calls",
    "staging.ocpp_meter_values",
    "staging.ocpp_transaction_events",
    "staging.ocpp_status",
    "staging.ocpp_authorizations",
    "staging.ocpp_boots",
)


def stage_ocpp(conn: duckdb.DuckDBPyConnection, options: dict) -> dict[str, int]:
    """Every OCPP staging table in dependency order; row count per table."""
    params = ocpp_params(options)
    stage_frames(conn, params)
    counts = {"staging.ocpp_frames": conn.execute("select count(*) from staging.ocpp_frames").fetchone()[0]}
    for table in DERIVED:
        counts[table] = build_table(conn, table, params)
    return counts


def _ensure_raw(conn: duckdb.DuckDBPyConnection) -> None:
    from pipeline.ingest.run import ensure_tables

    ensure_tables(conn)


@dg.asset(
    name="stg_ocpp_frames",
    group_name=STAGING_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetKey("raw_ocpp")],
    description="staging.ocpp_frames: every OCPP-J frame typed (UTC, message type, id, action, "
    "payload, version, retransmission flag); untypable frames go to quarantine.rejects.",
)
def stg_ocpp_frames(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    params = ocpp_params(landing.settings().options)
    with duckdb.get_connection() as conn:
        _ensure_raw(conn)
        res = stage_frames(conn, params)
        n, retrans = conn.execute(
            "select count(*), count(*) filter (where is_retransmit) from staging.ocpp_frames").fetchone()
    rejected = res["routed"].rejected + res["contract"].rejected
    top = res["routed"].top_reasons + res["contract"].top_reasons
    context.log.info(f"ocpp frames: {n} staged, {rejected} rejected, {retrans} retransmissions")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "rejected": rejected,
        "retransmissions": retrans,
        "top_reasons": dg.MetadataValue.json([list(r) for r in top]),
    })


def _derived_asset(table: str, deps: list[str], description: str) -> dg.AssetsDefinition:
    name = "stg_" + table.split(".", 1)[1]

    @dg.asset(name=name, group_name=STAGING_GROUP, kinds={"duckdb"},
              deps=[dg.AssetKey(d) for d in deps], description=description)
    def _asset(duckdb: WarehouseResource, landing: LandingResource):
        params = ocpp_params(landing.settings().options)
        with duckdb.get_connection() as conn:
            n = build_table(conn, table, params)
        return dg.MaterializeResult(metadata={"dagster/row_count": n})

    return _asset


stg_ocpp_calls = _derived_asset(
    "staging.ocpp_calls", ["stg_ocpp_frames"],
    "staging.ocpp_calls: each CALL with its CALLRESULT/CALLERROR (by charger and message id) and latency.")
stg_ocpp_meter_values = _derived_asset(
    "staging.ocpp_meter_values", ["stg_ocpp_frames"],
    "staging.ocpp_meter_values: one row per sampled value, normalized to kWh/kW.")
stg_ocpp_transaction_events = _derived_asset(
    "staging.ocpp_transaction_events", ["stg_ocpp_calls", "stg_ocpp_meter_values"],
    "staging.ocpp_transaction_events: 1.6 Start/StopTransaction and 2.0.1 TransactionEvent.")
stg_ocpp_status = _derived_asset(
    "staging.ocpp_status", ["stg_ocpp_frames"],
    "staging.ocpp_status: StatusNotification per connector (2.0.1: per EVSE).")
stg_ocpp_authorizations = _derived_asset(
    "staging.ocpp_authorizations", ["stg_ocpp_calls"],
    "staging.ocpp_authorizations: Authorize requests with the CSMS's status and latency.")
stg_ocpp_boots = _derived_asset(
    "staging.ocpp_boots", ["stg_ocpp_calls"],
    "staging.ocpp_boots: BootNotification and Heartbeat with the CSMS's currentTime.")
