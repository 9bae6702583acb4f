"""Staging layer: typed, UTC, kWh, validated tables from ``raw.*``, one per record kind.

Belongs here: the thin assets that run ``assets/sql/staging/<table>.sql`` and enforce the
table's row model (``pipeline/models/staging.py``) through ``pipeline.quarantine.enforce``, so that
every raw record ends up staged or in ``quarantine.rejects``. OCPP staging lives in its own
module. Tables are rebuilt whole from raw on each run: cheap at this size, and a changed or
re-ingested file then replaces exactly its rows.
"""

from typing import Any

import dagster as dg
import duckdb

from pipeline.ingest.run import ensure_tables
from pipeline.models.staging import MODELS
from pipeline.privacy import token_hash_key, token_hash_params
from pipeline.quarantine import QuarantineResult, enforce, update_file_accounting
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.sql import build_table, execute

STAGING_GROUP = "staging"

# Re-derive validity after the contracts: a rejected version must not end its predecessor.
_TARIFF_VALID_TO = """
update staging.tariff_versions as t set valid_to_at = n.valid_to_at
from (
    select rowid as rid,
        case when lead(valid_from_at) over w is null then end_at
             when end_at is null then lead(valid_from_at) over w
             else least(lead(valid_from_at) over w, end_at) end as valid_to_at
    from staging.tariff_versions
    window w as (partition by country_code, party_id, tariff_id order by valid_from_at, last_updated_at)
) as n
where t.rowid = n.rid
"""


def staging_params(options: dict[str, Any] | None) -> dict[str, Any]:
    """Bound parameters the staging SQL files use (the token hash key, padded)."""
    return token_hash_params(token_hash_key(options))


def stage_table(
    conn: duckdb.DuckDBPyConnection, table: str, source: str, params: dict[str, Any], cascade: tuple[str, ...] = (),
) -> QuarantineResult:
    """Build one staging table from its SQL file and enforce its contract."""
    build_table(conn, table, params)
    return enforce(conn, table, MODELS[table], source, cascade=cascade)


def stage_source(conn: duckdb.DuckDBPyConnection, source: str, options: dict[str, Any] | None = None
                 ) -> dict[str, QuarantineResult]:
    """Stage every table of one landing source and refresh its files' accounting."""
    ensure_tables(conn)
    params = staging_params(options)
    out: dict[str, QuarantineResult] = {}
    if source == "cdrs":
        # Periods are cut from the CDR candidates before either contract runs, so a CDR
        # whose period fails is rejected whole (cascade) and counted once.
        build_table(conn, "staging.cdrs", params)
        build_table(conn, "staging.cdr_charging_periods", params)
        out["staging.cdr_charging_periods"] = enforce(
            conn, "staging.cdr_charging_periods", MODELS["staging.cdr_charging_periods"], "cdrs",
            cascade=("staging.cdrs", "staging.cdr_charging_periods"))
        out["staging.cdrs"] = enforce(conn, "staging.cdrs", MODELS["staging.cdrs"], "cdrs",
                                      cascade=("staging.cdr_charging_periods",))
    else:
        for table in SOURCE_STAGING[source]:
            # A Location is one record but several rows: one bad EVSE rejects the snapshot.
            cascade = (table,) if table == "staging.location_evse_status" else ()
            out[table] = stage_table(conn, table, source, params, cascade)
            if table == "staging.tariff_versions":
                execute(conn, _TARIFF_VALID_TO)
    update_file_accounting(conn, source)
    return out


SOURCE_STAGING: dict[str, tuple[str, ...]] = {
    "registry": ("staging.sites", "staging.evses"),
    "backend": ("staging.backend_sessions",),
    "cdrs": ("staging.cdrs", "staging.cdr_charging_periods"),
    "tariffs": ("staging.tariff_versions",),
    "ems": ("staging.ems_intervals",),
    "locations": ("staging.location_evse_status",),
    "tokens": ("staging.tokens",),
}


def stage_all(conn: duckdb.DuckDBPyConnection, options: dict[str, Any] | None = None) -> dict[str, QuarantineResult]:
    """Every staging table of this module, in dependency order (registry first)."""
    out: dict[str, QuarantineResult] = {}
    for source in SOURCE_STAGING:
        out |= stage_source(conn, source, options)
    return out


def _metadata(result: QuarantineResult) -> dict[str, Any]:
    return {
        "dagster/row_count": result.staged,
        "rows_rejected": result.rejected,
        "top_reasons": dg.MetadataValue.json([list(r) for r in result.top_reasons]),
    }


def _asset_key(table: str) -> str:
    return "stg_" + table.split(".", 1)[1]


# Upstream assets beyond the source's raw asset (time zones come from the registry).
_EXTRA_DEPS: dict[str, tuple[str, ...]] = {
    "backend": ("stg_evses", "stg_sites"),
    "ems": ("stg_sites",),
}


def _staging_asset(source: str) -> dg.AssetsDefinition:
    tables = SOURCE_STAGING[source]
    specs = [
        dg.AssetSpec(
            _asset_key(t),
            group_name=STAGING_GROUP,
            kinds={"duckdb"},
            deps=[f"raw_{source}", *_EXTRA_DEPS.get(source, ())],
            description=f"{t}: typed from raw, contract {MODELS[t].__name__} enforced (docs/warehouse.md).",
        )
        for t in tables
    ]

    @dg.multi_asset(name=f"stg_{source}", specs=specs)
    def _asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource, landing: LandingResource):
        options = landing.settings().options
        with duckdb.get_connection() as conn:
            results = stage_source(conn, source, options)
        for table in tables:
            r = results[table]
            context.log.info(f"{table}: {r.staged} rows staged, {r.rejected} rejected")
            yield dg.MaterializeResult(asset_key=_asset_key(table), metadata=_metadata(r))

    return _asset


def _registry_assets() -> list[dg.AssetsDefinition]:
    """Sites and EVSEs as two assets: EVSEs check their site against staged sites."""

    @dg.asset(name="stg_sites", group_name=STAGING_GROUP, kinds={"duckdb"}, deps=["raw_registry"],
              description="staging.sites: registry sites, contract StgSites enforced.")
    def stg_sites(duckdb: WarehouseResource, landing: LandingResource):
        with duckdb.get_connection() as conn:
            ensure_tables(conn)
            r = stage_table(conn, "staging.sites", "registry", staging_params(landing.settings().options))
        return dg.MaterializeResult(metadata=_metadata(r))

    @dg.asset(name="stg_evses", group_name=STAGING_GROUP, kinds={"duckdb"}, deps=["raw_registry", "stg_sites"],
              description="staging.evses: OCPP connector <-> OCPI EVSE, contract StgEvses enforced.")
    def stg_evses(duckdb: WarehouseResource, landing: LandingResource):
        with duckdb.get_connection() as conn:
            ensure_tables(conn)
            r = stage_table(conn, "staging.evses", "registry", staging_params(landing.settings().options))
            update_file_accounting(conn, "registry")
        return dg.MaterializeResult(metadata=_metadata(r))

    return [stg_sites, stg_evses]


staging_assets = [*_registry_assets(), *(_staging_asset(s) for s in SOURCE_STAGING if s != "registry")]
