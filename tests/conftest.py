"""Shared fixtures: a temporary warehouse and landing folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Dagster wants a home for its instance; keep tests from touching the user's.
os.environ.setdefault("DAGSTER_HOME", str(Path(__file__).resolve().parent.parent / ".dagster_home"))
Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path

# Property tests explore new examples on every developer run, but CI runs a fixed set, so
# a submission never fails on an example nobody has seen (CI=true is set by the CI runner).
if os.environ.get("CI"):
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
    _hypothesis_settings.load_profile("ci")
