"""Recon layer: ``recon.charger_clock``, each charger's clock offset from the CSMS clock.

Belongs here: estimating per charger how far its payload timestamps run ahead of (positive)
or behind (negative) the CSMS receive clock, so that ``charger_clock_skew`` can report the
charger and ``timestamp_drift`` can correct OCPP times before comparing sources.
"""

import dagster as dg

from pipeline.flags import table_exists
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import execute, load_sql

CLOCK_SQL = "assets/sql/recon/charger_clock.sql"
CLOCK_DEFAULTS = {"tolerance_s": 60, "min_samples": 5, "offline_s": 600, "bin_s": 30}

# Frames whose payload time is stamped when the charger sends them. Meter values sent with
# StopTransaction (transactionData) are history, so only live MeterValues/TransactionEvent
# samples count; a frame carrying several sampled values counts once.
_SOURCES = {
    "staging.ocpp_transaction_events": """
        select charge_point_id, event_at, received_at, 'transaction_event' as kind
        from staging.ocpp_transaction_events where not coalesce(is_retransmit, false)""",
    "staging.ocpp_meter_values": """
        select charge_point_id, max(sampled_at) as event_at, received_at, 'meter_values' as kind
        from staging.ocpp_meter_values where origin in ('MeterValues', 'TransactionEvent')
        group by charge_point_id, received_at, source_file, record_no""",
    "staging.ocpp_status": """
        select charge_point_id, {status_at} as event_at, received_at, 'status' as kind
        from staging.ocpp_status""",
}
_EMPTY = ("select null::varchar as charge_point_id, null::timestamptz as event_at, "
          "null::timestamptz as received_at, null::varchar as kind where false")


def clock_params(options: dict) -> dict:
    """The estimator's settings: ``[checks.charger_clock_skew]`` over the built-in defaults."""
    section = options.get("checks", {}).get("charger_clock_skew", {})
    return {**CLOCK_DEFAULTS, **{k: v for k, v in section.items() if k != "severity"}}


def build_charger_clock(conn, options: dict) -> int:
    """(Re)build ``recon.charger_clock`` from whichever OCPP staging tables exist; row count."""
    # staging.ocpp_status.status_at falls back to the receive time for a missing or 1970 stamp,
    # which would read as "no skew"; its event_at is the charger's stamp as sent.
    status_cols = {r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = 'staging' "
        "and table_name = 'ocpp_status'").fetchall()}
    status_at = "event_at" if "event_at" in status_cols else "status_at"
    parts = [sql.format(status_at=status_at) for table, sql in _SOURCES.items() if table_exists(conn, table)]
    execute(conn, "create or replace temp view _clock_samples as " + " union all ".join(parts or [_EMPTY]))
    execute(conn, f"create or replace table recon.charger_clock as\n{load_sql(CLOCK_SQL)}", clock_params(options))
    return conn.execute("select count(*) from recon.charger_clock").fetchall()[0][0]


@dg.asset(
    name="recon_charger_clock",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in (
        "stg_ocpp_transaction_events", "stg_ocpp_meter_values", "stg_ocpp_status", "stg_evses", "stg_sites",
    )],
    description="recon.charger_clock: per charger, median payload-minus-receive offset (clock skew).",
)
def recon_charger_clock(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    options = landing.settings().options
    with duckdb.get_connection() as conn:
        n = build_charger_clock(conn, options)
        skewed = conn.execute("select count(*) from recon.charger_clock where is_skewed").fetchall()[0][0]
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "skewed_chargers": skewed})


@dg.asset_check(asset=recon_charger_clock, description="every frame is used or ignored for a reason")
def charger_clock_accounted(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        rows, unreliable, unbalanced = conn.execute("""
            select count(*), count(*) filter (where not is_reliable),
                   count(*) filter (where n_used + n_offline_ignored + n_epoch_ignored <> n_frames)
            from recon.charger_clock""").fetchall()[0]
    return dg.AssetCheckResult(passed=unbalanced == 0, metadata={
        "chargers": rows, "too_few_samples": unreliable, "unbalanced_chargers": unbalanced,
    })
