"""Raw layer: one asset per landing source, loading new and changed files as they are.

Belongs here: reading files into ``raw.*`` with file lineage and sending unreadable
records to ``quarantine.rejects``. Typing and validation belong to staging.
"""

import dagster as dg

from pipeline.ingest.files import SOURCE_ORDER
from pipeline.ingest.run import ingest_landing
from pipeline.resources import LandingResource, WarehouseResource

RAW_GROUP = "raw"


def _raw_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{source}",
        group_name=RAW_GROUP,
        kinds={"duckdb"},
        description=f"Files under landing/{source}/ loaded as records (new and changed files only).",
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
        settings = landing.settings()
        with duckdb.get_connection() as conn:
            report = ingest_landing(conn, settings.landing, settings.option("ingest", default={}), sources=(source,))
        context.log.info(
            f"{source}: {len(report.new)} new, {len(report.changed)} changed, "
            f"{len(report.unchanged)} unchanged files"
        )
        return dg.MaterializeResult(metadata={
            "files_new": len(report.new),
            "files_changed": len(report.changed),
            "files_unchanged": len(report.unchanged),
            "records_read": report.records_read,
            "records_loaded": report.records_loaded,
            "records_rejected": report.records_rejected,
            "lines_skipped": report.lines_skipped,
        })

    return _asset


raw_assets = [_raw_asset(source) for source in SOURCE_ORDER]
