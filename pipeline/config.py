"""Where things are and how strict to be: one place for paths and tolerances.

Paths resolve in this order: explicit argument (CLI flag), environment variable, default.
Tolerances and severities live in ``pipeline/defaults.toml`` (documented in docs/checks.md);
a user file named by ``CHARGELINE_CONFIG`` overrides any of its keys.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LANDING = Path("data/landing")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
_DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_options(path: str | Path | None = None) -> dict[str, Any]:
    """Defaults merged with the user's TOML file (``CHARGELINE_CONFIG`` when not given)."""
    with _DEFAULTS_FILE.open("rb") as fh:
        options = tomllib.load(fh)
    user = path or os.environ.get("CHARGELINE_CONFIG")
    if user:
        with Path(user).open("rb") as fh:
            options = _merge(options, tomllib.load(fh))
    return options


@dataclass(frozen=True)
class Settings:
    landing: Path = DEFAULT_LANDING
    warehouse: Path = DEFAULT_WAREHOUSE
    reports: Path = DEFAULT_WAREHOUSE.parent / "reports"
    options: dict[str, Any] = field(default_factory=load_options)

    @classmethod
    def resolve(
        cls,
        landing: str | Path | None = None,
        warehouse: str | Path | None = None,
        reports: str | Path | None = None,
        config: str | Path | None = None,
    ) -> Settings:
        env = os.environ
        return cls(
            landing=Path(landing or env.get("CHARGELINE_LANDING") or DEFAULT_LANDING),
            warehouse=Path(warehouse or env.get("CHARGELINE_WAREHOUSE") or DEFAULT_WAREHOUSE),
            # reports sit beside the warehouse unless told otherwise: data/reports for the demo
            reports=Path(reports or env.get("CHARGELINE_REPORTS")
                         or Path(warehouse or env.get("CHARGELINE_WAREHOUSE") or DEFAULT_WAREHOUSE).parent / "reports"),
            options=load_options(config),
        )

    def option(self, *keys: str, default: Any = None) -> Any:
        node: Any = self.options
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node
