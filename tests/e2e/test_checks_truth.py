"""Every check against the generator's planted faults, and a clean network without errors.

Issue 7's done-when: on a generated network with planted faults every check in the
registry reaches precision and recall >= 0.95 against ``truth/faults.csv``; a ``--clean``
network yields no ``error`` findings. The per-check table is printed (``pytest -s``) so a
failing run shows where it stands.
"""

import gc

import pytest

from pipeline.cli import main as chargeline
from pipeline.config import Settings
from pipeline.evaluate import evaluate
from pipeline.flags import collect_rules
from pipeline.runner import run_pipeline
from pipeline.warehouse import connect

pytestmark = pytest.mark.slow
MIN_PRECISION = MIN_RECALL = 0.95
# Big enough for ~15-25 planted faults per session check at this rate, small enough for
# the whole file to stay near a minute and a half on 2 cores.
FAULTY = ["--evses", "200", "--days", "1", "--seed", "20261116", "--fault-rate", "0.05"]
CLEAN = ["--evses", "60", "--days", "1", "--seed", "7", "--clean"]


def _run(tmp_path_factory, name: str, args: list[str]):
    out = tmp_path_factory.mktemp(name)
    assert chargeline(["generate", "--out", str(out), "--quiet", *args]) == 0
    settings = Settings.resolve(landing=out / "landing", warehouse=out / "w.duckdb")
    result = run_pipeline(settings, raise_on_error=False)
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    del result
    gc.collect()  # Dagster's connections must be gone before we open the file ourselves
    return out, failed


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    return _run(tmp_path_factory, "faulty", FAULTY)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return _run(tmp_path_factory, "clean", CLEAN)


def test_every_check_finds_the_planted_faults(faulty):
    out, failed = faulty
    assert failed == [], f"pipeline steps failed: {failed}"
    with connect(out / "w.duckdb") as conn:
        report = evaluate(conn, out / "truth")
    print("\n" + report.render())
    registry = sorted({r.check for r in collect_rules()})
    below = report.failing(registry, MIN_PRECISION, MIN_RECALL)
    detail = "\n".join(
        f"{s.check}: precision {s.precision:.3f} recall {s.recall:.3f}; "
        f"FP e.g. {list(s.fp_samples[:2])}; FN e.g. {list(s.fn_samples[:2])}"
        for s in below
    )
    assert not below, "checks below the bar:\n" + detail
    planted = {s.check for s in report.scores if s.truth}
    assert planted & set(registry), "no planted fault of any registered check: the evaluation saw nothing"


def test_clean_network_has_no_error_findings(clean):
    out, failed = clean
    assert failed == [], f"pipeline steps failed: {failed}"
    with connect(out / "w.duckdb") as conn:
        errors = conn.execute(
            """select "check", count(*), any_value(explanation) from recon.flags
               where severity = 'error' group by 1 order by 2 desc"""
        ).fetchall()
        sessions = conn.execute("select count(*) from lineage.sessions").fetchall()[0][0]
    assert sessions > 0
    assert errors == [], f"error findings on a clean network: {errors}"
