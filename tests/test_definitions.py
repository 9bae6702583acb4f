"""The Definitions load as Dagster loads them, and every layer is present."""

import dagster as dg

from pipeline.definitions import defs


def test_definitions_validate_loadable():
    dg.Definitions.validate_loadable(defs)


def test_raw_assets_cover_every_source():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for source in ("registry", "ocpp", "backend", "cdrs", "tariffs", "ems", "locations", "tokens"):
        assert f"raw_{source}" in keys
