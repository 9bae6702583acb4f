"""Asset checks on the OCPP staging tables and ``lineage.transactions``.

Belongs here: health of the OCPP path itself (rejected frames, unanswered CALLs, meter
values that did not type, transactions that lost events or show negative energy). Findings
about sessions go to ``recon.flags`` through the rules in the other check modules.
"""

import dagster as dg

from pipeline.day_partitions import run_days
from pipeline.integrity import record_result
from pipeline.resources import WarehouseResource
from pipeline.sql import execute, load_sql, table_exists

# A CSMS answers nearly every CALL; more than 2 % unanswered means frames are being lost
# between the CSMS and its log shipping (2026-11, from field logs of two CPOs).
MAX_UNANSWERED_SHARE = 0.02


def _md(rows: list[tuple], header: tuple[str, ...]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset_check(asset=dg.AssetKey("stg_ocpp_frames"), name="ocpp_frames_rejects",
                description="OCPP frames quarantined at staging (WARN): count and top reasons.")
def ocpp_frames_rejects(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        staged = conn.execute("select count(*) from staging.ocpp_frames").fetchone()[0]
        top = conn.execute("""
            select reason, count(*) as n
            from (select unnest(reasons) as reason from quarantine.rejects where source = 'ocpp')
            group by reason order by n desc, reason limit 10
        """).fetchall()
        rejected = conn.execute("select count(*) from quarantine.rejects where source = 'ocpp'").fetchone()[0]
    return dg.AssetCheckResult(
        passed=rejected == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"staged": staged, "rejected": rejected, "top_reasons": _md(top, ("reason", "records"))},
    )


@dg.asset_check(asset=dg.AssetKey("stg_ocpp_calls"), name="ocpp_calls_answered",
                description="Share of chargers' CALLs without a CSMS answer stays small (WARN).")
def ocpp_calls_answered(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        calls, unanswered = conn.execute("""
            select count(*), count(*) filter (where answer_type is null)
            from staging.ocpp_calls where direction = 'in' and not is_retransmit
        """).fetchone()
        sample = conn.execute("""
            select action, count(*) as n from staging.ocpp_calls
            where direction = 'in' and not is_retransmit and answer_type is null
            group by action order by n desc limit 10
        """).fetchall()
    share = unanswered / calls if calls else 0.0
    return dg.AssetCheckResult(
        passed=share <= MAX_UNANSWERED_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"calls": calls, "unanswered": unanswered, "unanswered_share": round(share, 4),
                  "threshold": MAX_UNANSWERED_SHARE, "by_action": _md(sample, ("action", "unanswered"))},
    )


@dg.asset_check(asset=dg.AssetKey("stg_ocpp_meter_values"), name="ocpp_meter_values_typed",
                description="Every sampled value that was sent as a number is typed (WARN).")
def ocpp_meter_values_typed(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        total, untyped = conn.execute("""
            select count(*), count(*) filter (where value_raw is not null and value is null
                                              and coalesce(format, 'Raw') = 'Raw')
            from staging.ocpp_meter_values
        """).fetchone()
        sample = conn.execute("""
            select charge_point_id, measurand, unit, value_raw, source_file, record_no
            from staging.ocpp_meter_values
            where value_raw is not null and value is null and coalesce(format, 'Raw') = 'Raw' limit 10
        """).fetchall()
    return dg.AssetCheckResult(
        passed=untyped == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"sampled_values": total, "untyped": untyped,
                  "sample": _md(sample, ("charger", "measurand", "unit", "value_raw", "file", "record"))},
    )


@dg.asset_check(asset=dg.AssetKey("lineage_transactions"), name="transactions_account_for_events",
                description="Every transaction event of the run's days lands in exactly one transaction, "
                            "and no transaction of those days reports negative energy (ERROR: a "
                            "reconstruction defect; reported, never blocking).")
def transactions_account_for_events(context: dg.AssetCheckExecutionContext,
                                    duckdb: WarehouseResource) -> dg.AssetCheckResult:
    # A run writes only its days of lineage.transactions: the events of other days may
    # not be written yet (a later range of the same night), so they are not judged here.
    days = run_days(context)
    with duckdb.get_connection() as conn:
        if not table_exists(conn, "lineage.transactions"):
            metadata = {"error": "lineage.transactions missing"}
            record_result(conn, run_id=context.run.run_id, check_name="transactions_account_for_events",
                          asset="lineage_transactions", days=days, passed=False, details=metadata)
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)
        params = {"all_days": not days, "days": days}
        lost = execute(conn, load_sql("checks/sql/integrity/events_without_transaction.sql"), params)
        duplicated, negative = execute(conn, load_sql("checks/sql/integrity/transaction_defects.sql"), params)[0]
        details = {"days": [d.isoformat() for d in days] or "all", "events_without_transaction": len(lost),
                   "duplicated_transaction_ids": duplicated, "negative_energy": negative,
                   "sample": [dict(zip(("charger", "transaction", "event", "file", "record"), r, strict=True))
                              for r in lost]}
        passed = not lost and duplicated == 0 and negative == 0
        record_result(conn, run_id=context.run.run_id, check_name="transactions_account_for_events",
                      asset="lineage_transactions", days=days, passed=passed, details=details)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"days": len(days) or "all", "events_without_transaction": len(lost),
                  "duplicated_transaction_ids": duplicated, "negative_energy": negative,
                  "sample": _md(lost, ("charger", "transaction", "event", "file", "record"))},
    )
