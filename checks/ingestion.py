"""Ingestion checks: what each staging table took in and rejected, and whether it balances.

Belongs here: per staging table a WARN check (rows staged, rows rejected, top reasons) and,
per landing source, an ERROR check that every file's accounting balances (records read =
records staged in its record-level staging table + records rejected, none both). The row models
themselves live in ``pipeline/models/staging.py`` and are enforced inside the staging assets. No check
here blocks: a night never stops on data, and a failed accounting check is a row in
``meta.integrity_results`` that the run's summary prints.
"""

import dagster as dg

from pipeline.integrity import record_result
from pipeline.quarantine import file_accounting
from pipeline.resources import WarehouseResource

# Staging table -> the asset that builds it (record-level tables carry the accounting).
_TABLES = {
    "staging.sites": ("stg_sites", None),
    "staging.evses": ("stg_evses", "registry"),
    "staging.backend_sessions": ("stg_backend_sessions", "backend"),
    "staging.cdrs": ("stg_cdrs", "cdrs"),
    "staging.cdr_charging_periods": ("stg_cdr_charging_periods", None),
    "staging.tariff_versions": ("stg_tariff_versions", "tariffs"),
    "staging.ems_intervals": ("stg_ems_intervals", "ems"),
    "staging.location_evse_status": ("stg_location_evse_status", "locations"),
    "staging.tokens": ("stg_tokens", "tokens"),
}


def _md(frame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(10).to_pandas().to_markdown(index=False) if frame.height else "(none)")


def _rows_check(table: str, asset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name="rows_staged_and_rejected",
                    description=f"{table}: rows staged, rows its staging rejected and why (WARN on any reject).")
    def _check(duckdb: WarehouseResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            staged = conn.execute(f"select count(*) from {table}").fetchall()[0][0]
            reasons = conn.sql(
                "select reason, count(*) as n from (select unnest(reasons) as reason from quarantine.rejects "
                "where staging_table = $t) group by reason order by n desc, reason limit 10",
                params={"t": table}).pl()
            rejected = conn.execute("select count(*) from quarantine.rejects where staging_table = $t",
                                    {"t": table}).fetchall()[0][0]
        return dg.AssetCheckResult(
            passed=rejected == 0, severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows_staged": staged, "rows_rejected": rejected, "top_reasons": _md(reasons)})

    return _check


def _accounting_check(source: str, asset: str) -> dg.AssetChecksDefinition:
    # Judges every file: each ingest run restages whole tables, so all of them are what
    # this run wrote. Never blocking: an unbalanced file is reported (check result and a
    # meta.integrity_results row) and the night's other results are still written.
    @dg.asset_check(asset=asset, name="accounting_balances",
                    description=f"Every {source}/ file: records read = staged + rejected, none both "
                                "(ERROR; reported, never blocking).")
    def _check(context: dg.AssetCheckExecutionContext, duckdb: WarehouseResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            acc = file_accounting(conn, source)
            bad = acc.filter(~acc.get_column("balanced"))
            counts = {"files": acc.height, "files_unbalanced": bad.height,
                      "records_read": int(acc.get_column("records_read").sum() or 0),
                      "records_staged": int(acc.get_column("records_staged").sum() or 0),
                      "records_rejected": int(acc.get_column("records_rejected").sum() or 0)}
            record_result(conn, run_id=context.run.run_id, check_name="accounting_balances", asset=asset,
                          days=[], passed=bad.height == 0,
                          details={**counts, "source": source, "unbalanced": bad.head(10).to_dicts()})
        return dg.AssetCheckResult(
            passed=bad.height == 0, severity=dg.AssetCheckSeverity.ERROR,
            metadata={**counts, "sample": _md(bad)})

    return _check


ingestion_checks = [_rows_check(t, a) for t, (a, _) in _TABLES.items()] + [
    _accounting_check(source, a) for a, source in _TABLES.values() if source
]
