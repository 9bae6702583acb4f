"""Lineage layer, OCPP: ``lineage.transactions``, one row per charger transaction.

Belongs here: the thin asset that reconstructs OCPP transactions from the OCPP staging
tables (SQL in ``assets/sql/lineage/transactions.sql``): 1.6 Start/Stop joined by the
CSMS's transaction id, 2.0.1 TransactionEvents by transactionId, energy from the register
or the meter values, and the field's failure forms marked in ``anomalies``.
"""

import dagster as dg
import duckdb

from pipeline.day_partitions import context_days, daily
from pipeline.day_queue import replace_partitions
from pipeline.ocpp import ocpp_params
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table

LINEAGE_GROUP = "lineage"


def build_transactions(conn: duckdb.DuckDBPyConnection, options: dict) -> int:
    """Rebuild ``lineage.transactions``; its row count."""
    return build_table(conn, "lineage.transactions", ocpp_params(options))


@dg.asset(
    name="lineage_transactions",
    group_name=LINEAGE_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetKey("stg_ocpp_transaction_events"), dg.AssetKey("stg_ocpp_meter_values")],
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="lineage.transactions: OCPP transactions reconstructed per charger, with energy, "
    "its basis and anomalies (restarted starts, offline-queue stops, epoch clocks, rollbacks).",
)
def lineage_transactions(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
    with duckdb.get_connection() as conn:
        # computed from all staged frames; only the run's days are written
        # a day run computes its whole window and publishes its own days (pipeline.engine)
        with replace_partitions(conn, "lineage.transactions", [] if duckdb.engine else context_days(context)):
            build_transactions(conn, landing.settings().options)
        n = conn.execute("select count(*) from lineage.transactions").fetchall()[0][0]
        by_anomaly = dict(conn.execute(
            "select a, count(*) from (select unnest(anomalies) as a from lineage.transactions) group by a "
            "order by 2 desc").fetchall())
    context.log.info(f"transactions: {n}, anomalies: {by_anomaly}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "anomalies": dg.MetadataValue.json(by_anomaly),
    })
