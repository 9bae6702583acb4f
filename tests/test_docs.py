"""The docs name every warehouse relation and every contract check, and agree with the code.

- docs/warehouse.md lists every relation a generated warehouse holds ("Every relation at a
  glance"), and each example query there runs;
- docs/checks.md has a section, a row in "At a glance" whose tolerances and severities are
  those of ``pipeline/defaults.toml``, and a runnable example query for each of the 17
  contract checks;
- README.md links every page in docs/.
"""

import re
import tomllib
from pathlib import Path

import pytest

from checks import collect_rules
from pipeline.warehouse import connect
from tests.fixtures.generated import generated_network, relations

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONTRACT_CHECKS = {
    "timestamp_drift", "charger_clock_skew", "stale_tariff", "tariff_changed_during_session",
    "cost_mismatch", "energy_mismatch", "energy_attribution_mismatch", "missing_cdr", "orphan_cdr",
    "missing_backend_session", "duplicate_cdr", "meter_anomaly", "incomplete_session",
    "token_invalid", "status_mismatch", "capability_mismatch", "auth_latency",
}
# Present only while a partitioned run rewrites a table (pipeline/day_queue.py).
TRANSIENT = re.compile(r"^meta\.stash__")


def undocumented(names, text: str) -> list[str]:
    """Names that do not appear in ``text`` as a code span (`name`)."""
    return sorted(n for n in names if f"`{n}`" not in text)


def markdown_table(text: str, heading: str) -> list[list[str]]:
    """Body rows of the first table under ``heading``, cells stripped (``\\|`` kept whole)."""
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows[1:]


def catalog_queries(text: str) -> dict[str, str]:
    rows = markdown_table(text, "## Every relation at a glance")
    return {re.search(r"`([^`]+)`", r[0]).group(1): r[-1].strip("`") for r in rows}


def check_queries(text: str) -> dict[str, str]:
    block = text.split("## One example query per check", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    parts = re.split(r"^-- check: (\w+)\s*$", block, flags=re.M)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def test_undocumented_finds_what_is_missing():
    text = "| `staging.cdrs` | CDR |\n`recon.flags`"
    assert undocumented(["staging.cdrs", "recon.flags", "staging.cdr"], text) == ["staging.cdr"]
    assert undocumented(["staging.cdrs"], "staging.cdrs without backticks") == ["staging.cdrs"]


@pytest.fixture(scope="module")
def warehouse():
    with connect(generated_network() / "w.duckdb") as conn:
        yield conn


@pytest.mark.slow
def test_every_relation_is_documented(warehouse):
    built = [r for r in relations(warehouse) if not TRANSIENT.match(r)]
    assert len(built) > 40
    catalog = catalog_queries((DOCS / "warehouse.md").read_text())
    assert sorted(set(built) - set(catalog)) == [], "relations missing from docs/warehouse.md"
    assert undocumented(built, (DOCS / "warehouse.md").read_text()) == []


@pytest.mark.slow
def test_every_example_query_runs(warehouse):
    queries = catalog_queries((DOCS / "warehouse.md").read_text())
    queries |= {f"check {k}": v for k, v in check_queries((DOCS / "checks.md").read_text()).items()}
    present = set(relations(warehouse))
    failed = {}
    for name, sql in queries.items():
        if not name.startswith("check ") and name.split(" ")[0] not in present:
            continue  # a relation only some runs build (e.g. a stash table)
        try:
            warehouse.execute(sql).fetchall()
        except Exception as exc:  # every failing query is reported at once
            failed[name] = str(exc).splitlines()[0]
    assert failed == {}


def test_every_contract_check_is_documented():
    text = (DOCS / "checks.md").read_text()
    registered = {r.check for r in collect_rules()}
    assert registered == CONTRACT_CHECKS
    assert [c for c in sorted(CONTRACT_CHECKS) if f"## {c} (" not in text] == [], "a section per check"
    assert set(check_queries(text)) == CONTRACT_CHECKS, "an example query per check"
    glance = {r[0].strip("`"): r for r in markdown_table(text, "## At a glance")}
    assert set(glance) == CONTRACT_CHECKS


def test_glance_table_agrees_with_defaults():
    defaults = tomllib.loads((ROOT / "pipeline" / "defaults.toml").read_text())["checks"]
    glance = {r[0].strip("`"): r for r in markdown_table((DOCS / "checks.md").read_text(), "## At a glance")}
    wrong = []
    for check, row in glance.items():
        section = defaults.get(check, {})
        for key, value in section.items():
            if key == "severity":
                continue
            shown = f"`{key} = {value!r}`".replace("'", '"')
            if shown not in row[3]:
                wrong.append(f"{check}: {shown} not in tolerance column")
        sev = section["severity"]
        expected = " / ".join(sev.get(t, sev["default"]) for t in ("public", "fleet", "microgrid", "default"))
        if row[4] != expected:
            wrong.append(f"{check}: severity {row[4]!r}, defaults.toml says {expected!r}")
    assert wrong == []


def test_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    docs_list = readme.split("## Docs", 1)[1]
    assert [p.name for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in docs_list] == []
