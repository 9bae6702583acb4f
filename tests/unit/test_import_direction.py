"""Imports go downward only: ``assets/`` and ``checks/`` use ``pipeline/``, never the reverse.

Read from the source with ``ast`` (nothing is imported), so a lazy import inside a function
counts as much as one at the top of a module.

- no module under ``pipeline/`` imports ``assets`` or ``checks``. The one exception is
  ``pipeline/definitions.py``: it is the single Dagster ``Definitions`` wiring, which has to
  collect the asset and check modules, and nothing in ``pipeline`` imports it in turn;
- no module under ``assets/`` imports another ``assets`` module: shared code belongs in
  ``pipeline/`` and assets depend on each other by asset key, not by import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIRING = {"pipeline/definitions.py"}


def imported(source: str) -> set[str]:
    """Absolute module names a module's source imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            # ``from assets import staging`` imports the module ``assets.staging``
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def upward_imports(root: Path) -> list[str]:
    """``path: module`` for every import that breaks the direction rule under ``root``."""
    bad = []
    for path in sorted((root / "pipeline").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in WIRING:
            continue
        bad += [f"{rel}: {m}" for m in sorted(imported(path.read_text(encoding="utf-8")))
                if _top(m) in ("assets", "checks")]
    for path in sorted((root / "assets").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        # ``from assets import x`` names the package as well; only a sibling module counts
        bad += [f"{rel}: {m}" for m in sorted(imported(path.read_text(encoding="utf-8")))
                if _top(m) == "assets" and m != "assets"]
    return bad


def test_imports_go_downward_only():
    assert upward_imports(ROOT) == []


@pytest.mark.parametrize("rel, source, module", [
    ("pipeline/flags.py", "def f():\n    import checks\n", "checks"),
    ("pipeline/quarantine.py", "from checks.contracts import MODELS\n", "checks.contracts"),
    ("pipeline/ingest/run.py", "import importlib\nm = importlib.import_module('assets.raw')\n", "assets.raw"),
    ("assets/lineage_transactions.py", "from assets.staging_ocpp import ocpp_params\n", "assets.staging_ocpp"),
    ("assets/review.py", "from assets import marts\n", "assets.marts"),
])
def test_each_kind_of_upward_import_is_caught(tmp_path, rel, source, module):
    for d in ("pipeline/ingest", "assets"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_text(source, encoding="utf-8")
    assert f"{rel}: {module}" in upward_imports(tmp_path)


def test_an_asset_may_import_pipeline_and_checks(tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets/recon.py").write_text(
        "from checks import collect_rules\nfrom pipeline.flags import build_flags\nimport assets\n",
        encoding="utf-8")
    assert upward_imports(tmp_path) == []


def test_ingest_reads_no_sql_from_assets():
    """The loader's SQL lives with it (``pipeline/ingest/sql``), not in the asset layer."""
    bad = [f"{p.relative_to(ROOT)}: {n.value}" for p in sorted((ROOT / "pipeline/ingest").rglob("*.py"))
           for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
           if isinstance(n, ast.Constant) and isinstance(n.value, str) and "assets/sql" in n.value]
    assert bad == []


def test_the_wiring_module_is_the_only_exception(tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "assets").mkdir()
    (tmp_path / "pipeline/definitions.py").write_text("import assets\nimport checks\n", encoding="utf-8")
    assert upward_imports(tmp_path) == []
