"""Reconciliation checks, one module per failure class, and the asset checks on staging.

Each rule module declares a module-level ``RULES`` list of ``pipeline.flags.FlagRule``;
``collect_rules`` gathers them for the ``recon_flags`` asset. The row models staging
enforces live in ``pipeline.models.staging``.
"""

from __future__ import annotations

import importlib
import pkgutil

from pipeline.flags import FlagRule


def collect_rules() -> list[FlagRule]:
    """Every ``RULES`` entry of every module in this package, in name order."""
    rules: list[FlagRule] = []
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        rules.extend(getattr(module, "RULES", ()))
    names = [r.check for r in rules]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"check declared twice: {sorted(dupes)}")
    return rules
