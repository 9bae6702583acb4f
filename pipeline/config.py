"""Where things are and how strict to be: one place for paths and tolerances.

Paths resolve in this order: explicit argument (CLI flag), environment variable, default.
Tolerances and severities live in ``pipeline/defaults.toml`` (documented in docs/checks.md);
a user file named by ``CHARGELINE_CONFIG`` overrides any of its keys. A key the defaults do
not have is an error (a misspelt tolerance would otherwise be ignored silently), except
inside the open tables of ``OPEN_TABLES``, whose keys are the user's own names.
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

# Tables whose keys users name: "*" matches any one key. Partner header maps name the
# partner's columns; severities name site types, which a network may add to.
OPEN_TABLES: tuple[tuple[str, ...], ...] = (
    # per-source reading settings: entry names are the user's, their keys are checked
    # by pipeline.ingest.formats.unknown_source_keys
    ("ingest", "sources"),
    ("checks", "*", "severity"),
)


class ConfigError(ValueError):
    """A user configuration that names keys chargeline does not have."""


def _is_open(path: tuple[str, ...]) -> bool:
    return any(len(p) <= len(path) and all(a in ("*", b) for a, b in zip(p, path, strict=False))
               for p in OPEN_TABLES)


def unknown_keys(base: dict[str, Any], over: dict[str, Any], path: tuple[str, ...] = ()) -> list[str]:
    """Dotted names of keys in ``over`` that ``base`` lacks, outside the open tables."""
    out: list[str] = []
    for key, value in over.items():
        here = (*path, key)
        if _is_open(here):
            continue
        if key not in base:
            out.append(".".join(here))
        elif isinstance(value, dict) and isinstance(base[key], dict):
            out.extend(unknown_keys(base[key], value, here))
    return out


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
            over = tomllib.load(fh)
        from pipeline.ingest.formats import unknown_source_keys

        unknown = unknown_keys(options, over) + unknown_source_keys(over)
        if unknown:
            raise ConfigError(f"{user}: unknown configuration keys {', '.join(unknown)} "
                              f"(every key is listed in {_DEFAULTS_FILE.name})")
        options = _merge(options, over)
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
