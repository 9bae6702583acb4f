"""User configuration: overrides merge over the defaults; an unknown key is an error."""

import pytest

from pipeline.cli import main as chargeline
from pipeline.config import ConfigError, load_options


def test_override_merges_over_defaults(tmp_path):
    user = tmp_path / "c.toml"
    user.write_text("[checks.cost_mismatch]\ntolerance = 0.05\n[ingest.sources.mine]\nglob = 'backend/mine/*'\n"
                    "[ingest.sources.mine.columns]\nmyheader = 'session_id'\n")
    opts = load_options(user)
    assert opts["checks"]["cost_mismatch"]["tolerance"] == 0.05
    assert opts["ingest"]["sources"]["mine"]["columns"]["myheader"] == "session_id"
    assert "partner_depotnet" in opts["ingest"]["sources"]  # the defaults' entries stay
    assert opts["checks"]["timestamp_drift"]["tolerance_s"] == load_options()["checks"]["timestamp_drift"]["tolerance_s"]


def test_unknown_key_is_an_error(tmp_path):
    user = tmp_path / "c.toml"
    user.write_text("[checks.cost_mismatch]\ntolerence = 0.05\n[checks.no_such_check]\nx = 1\n")
    with pytest.raises(ConfigError) as exc:
        load_options(user)
    assert "checks.cost_mismatch.tolerence" in str(exc.value)
    assert "checks.no_such_check" in str(exc.value)


def test_site_types_are_open(tmp_path):
    user = tmp_path / "c.toml"
    user.write_text("[checks.cost_mismatch.severity]\ncampus = 'info'\n")
    assert load_options(user)["checks"]["cost_mismatch"]["severity"]["campus"] == "info"


def test_cli_reports_unknown_keys_without_traceback(tmp_path, monkeypatch, capsys):
    user = tmp_path / "c.toml"
    user.write_text("[ocpp]\nofline_queue_s = 5\n")
    monkeypatch.setenv("CHARGELINE_CONFIG", str(user))
    assert chargeline(["run", "--landing", str(tmp_path / "none"), "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    assert "ocpp.ofline_queue_s" in capsys.readouterr().err


def test_source_entry_keys_are_checked_and_the_old_global_map_is_gone(tmp_path):
    user = tmp_path / "c.toml"
    user.write_text("[ingest.sources.oslo]\nglob = 'backend/oslo/*'\ndelimter = ';'\n"
                    "[ingest.backend_columns]\nx = 'session_id'\n")
    with pytest.raises(ConfigError) as exc:
        load_options(user)
    assert "ingest.sources.oslo.delimter" in str(exc.value)
    # one map for every backend file misread other partners: maps are per source now
    assert "ingest.backend_columns" in str(exc.value)
