"""Recon layer: ``recon.charger_clock``, each charger's clock offset from the CSMS clock.

Belongs here: estimating per charger how far its payload timestamps run ahead of (positive)
or behind (negative) the CSMS receive clock, so that ``charger_clock_skew`` can report the
charger and ``timestamp_drift`` can correct OCPP times before comparing sources.
"""

import dagster as dg

from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import execute, load_sql, table_exists

CLOCK_SQL = "assets/sql/recon/charger_clock.sql"
CLOCK_DEFAULTS = {"tolerance_s": 60, "min_samples": 5, "offline_s": 600, "bin_s": 30}

# Frames whose payload time is stamped when the charger sends them. Meter values sent with
# StopTransaction (transactionData) are history, so only live MeterValues/TransactionEvent
# samples count; a frame carrying several sampled values counts once.
_SOURCES = {
    "staging.ocpp_transaction_events": """
        select charge_point_id, event_at, received_at, 'transaction_event' as kind, {keys}
        from staging.ocpp_transaction_events where not coalesce(is_retransmit, false)""",
    "staging.ocpp_meter_values": """
        select charge_point_id, max(sampled_at) as event_at, received_at, 'meter_values' as kind,
               source_file, record_no
        from staging.ocpp_meter_values where origin in ('MeterValues', 'TransactionEvent')
        group by charge_point_id, received_at, source_file, record_no""",
    "staging.ocpp_status": """
        select charge_point_id, {status_at} as event_at, received_at, 'status' as kind, {keys}
        from staging.ocpp_status""",
}
_EMPTY = ("select null::varchar as charge_point_id, null::timestamptz as event_at, "
          "null::timestamptz as received_at, null::varchar as kind, null::varchar as source_file, "
          "null::bigint as record_no where false")
# A bare capture's receive time is estimated from the charger's own stamps
# (staging.ocpp_frames.received_at_basis = 'file_order'): comparing the two says nothing.
_RECEIVE_KNOWN = """
    select s.* exclude (source_file, record_no), f.source_file is null as receive_known
    from ({samples}) as s
    left join (select source_file, record_no from staging.ocpp_frames where received_at_basis = 'file_order') as f
        on f.source_file = s.source_file and f.record_no = s.record_no"""
# Transactions whose stop the charger stamped before their own start (lineage.transactions).
_STEPS = """
    select charge_point_id, transaction_id, stop_before_start_s
    from lineage.transactions where is_stop_before_start"""
_NO_STEPS = ("select null::varchar as charge_point_id, null::varchar as transaction_id, "
             "null::double as stop_before_start_s where false")


def clock_params(options: dict) -> dict:
    """The estimator's settings: ``[checks.charger_clock_skew]`` over the built-in defaults."""
    section = options.get("checks", {}).get("charger_clock_skew", {})
    return {**CLOCK_DEFAULTS, **{k: v for k, v in section.items() if k != "severity"}}


def _columns(conn, table: str, schema: str = "staging") -> set[str]:
    return {r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = $s and table_name = $t",
        {"s": schema, "t": table}).fetchall()}


def build_charger_clock(conn, options: dict) -> int:
    """(Re)build ``recon.charger_clock`` from whichever OCPP staging tables exist; row count."""
    # staging.ocpp_status.status_at falls back to the receive time for a missing or 1970 stamp,
    # which would read as "no skew"; its event_at is the charger's stamp as sent.
    status_at = "event_at" if "event_at" in _columns(conn, "ocpp_status") else "status_at"
    bare_known = "received_at_basis" in _columns(conn, "ocpp_frames")
    keys = "source_file, record_no" if bare_known else "null::varchar as source_file, null::bigint as record_no"
    parts = [sql.format(status_at=status_at, keys=keys) for table, sql in _SOURCES.items() if table_exists(conn, table)]
    samples = " union all ".join(parts or [_EMPTY])
    if bare_known:
        samples = _RECEIVE_KNOWN.format(samples=samples)
    else:
        samples = f"select * exclude (source_file, record_no), true as receive_known from ({samples})"
    execute(conn, "create or replace temp view _clock_samples as " + samples)
    steps = _STEPS if "is_stop_before_start" in _columns(conn, "transactions", "lineage") else _NO_STEPS
    execute(conn, "create or replace temp view _clock_steps as " + steps)
    execute(conn, f"create or replace table recon.charger_clock as\n{load_sql(CLOCK_SQL)}", clock_params(options))
    return conn.execute("select count(*) from recon.charger_clock").fetchall()[0][0]


@dg.asset(
    name="recon_charger_clock",
    group_name="recon",
    kinds={"duckdb"},
    deps=[dg.AssetKey(k) for k in (
        "stg_ocpp_transaction_events", "stg_ocpp_meter_values", "stg_ocpp_status", "stg_evses", "stg_sites",
        "lineage_transactions",
    )],
    description="recon.charger_clock: per charger, median payload-minus-receive offset (clock skew) "
    "and stops stamped before their own start (clock stepped back).",
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
                   count(*) filter (where n_used + n_offline_ignored + n_epoch_ignored
                                          + n_receive_unknown_ignored <> n_frames)
            from recon.charger_clock""").fetchall()[0]
    return dg.AssetCheckResult(passed=unbalanced == 0, metadata={
        "chargers": rows, "too_few_samples": unreliable, "unbalanced_chargers": unbalanced,
    })
