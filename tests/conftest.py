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
