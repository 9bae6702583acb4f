"""Benchmark: generate a network, run the whole pipeline cold, report per stage.

Usage: ``python benchmarks/run.py [--sizes 1000,5000,20000] [--days 1] [--seed 7]``.
Generated data is cached under ``benchmarks/data/<evses>x<days>-s<seed>`` and reused.
Each size runs in a fresh subprocess (so peak RSS is that run's alone) into a fresh
warehouse. Results: ``benchmarks/results/latest.json``, ``latest.md`` and one line per run
appended to ``history.jsonl`` so regressions show.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"

# Dagster step (asset) name -> benchmark stage, by prefix; first match wins.
STAGE_OF = (
    ("raw_", "ingest"),
    ("stg_", "ingest"),
    ("lineage_transactions", "transactions"),
    ("lineage_", "lineage"),
    ("recon_session_prices", "pricing"),
    ("review_report", "report"),
    ("recon_review", "report"),
    ("marts_", "marts"),
    ("meta_file_days", "ingest"),
    ("meta_", "checks"),
    ("recon_", "checks"),
)
STAGES = ("ingest", "transactions", "lineage", "pricing", "checks", "marts", "report")


def stage_of(step: str) -> str:
    name = step.split(".")[0]
    for prefix, stage in STAGE_OF:
        if name.startswith(prefix):
            return stage
    return "checks"


def ensure_data(evses: int, days: int, seed: int) -> Path:
    out = DATA / f"{evses}x{days}-s{seed}"
    if (out / "truth" / "manifest.json").exists():
        return out
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "generate", "--out", str(out), "--evses", str(evses),
         "--days", str(days), "--seed", str(seed)],
        check=True, cwd=ROOT,
    )
    print(f"generated {out.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return out


def raw_read_lower_bound(landing: Path) -> dict:
    """The time DuckDB takes just to read every OCPP file once: the floor for ingest."""
    import duckdb

    files = [str(p) for p in sorted((landing / "ocpp").rglob("*")) if p.is_file()]
    con = duckdb.connect()
    t0 = time.perf_counter()
    n = con.execute(
        "select count(*) from read_csv($f, columns={'line': 'VARCHAR'}, delim=chr(1), quote='', "
        "escape='', header=false, auto_detect=false, strict_mode=false)",
        {"f": files},
    ).fetchone()[0]
    return {"seconds": round(time.perf_counter() - t0, 3), "lines": n,
            "bytes": sum(Path(f).stat().st_size for f in files)}


def child(landing: Path, warehouse: Path) -> None:
    """Run the pipeline in this process and print step timings as JSON."""
    import dagster as dg

    from pipeline.config import Settings
    from pipeline.runner import run_pipeline

    settings = Settings.resolve(landing=landing, warehouse=warehouse, reports=warehouse.parent / "reports")
    instance = dg.DagsterInstance.ephemeral()
    t0 = time.perf_counter()
    result = run_pipeline(settings, raise_on_error=False, instance=instance)
    wall = time.perf_counter() - t0
    starts, steps = {}, {}
    # a night is an ingest run then reconcile runs: add each step's time over all of them
    for _, run in result.runs:
        for rec in instance.all_logs(run.run_id):
            ev = rec.dagster_event
            if ev is None or ev.step_key is None:
                continue
            if ev.event_type_value == "STEP_START":
                starts[ev.step_key] = rec.timestamp
            elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and ev.step_key in starts:
                steps[ev.step_key] = steps.get(ev.step_key, 0.0) + rec.timestamp - starts.pop(ev.step_key)
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    rows = {}
    for table in ("raw.ocpp_frames", "staging.ocpp_frames", "staging.ocpp_meter_values",
                  "lineage.transactions", "lineage.sessions", "recon.flags"):
        try:
            rows[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
        except duckdb.Error:
            rows[table] = None
    print(json.dumps({"success": result.success, "wall_s": wall, "steps": steps, "rows": rows}))


def run_size(evses: int, days: int, seed: int) -> dict:
    data = ensure_data(evses, days, seed)
    landing = data / "landing"
    warehouse = data / "bench.duckdb"
    for p in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        p.unlink(missing_ok=True)
    lower = raw_read_lower_bound(landing)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(landing), str(warehouse)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DAGSTER_HOME": str(ROOT / ".dagster_home")},
    )
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    # wait4 via communicate has reaped it; ru_maxrss of children is the max over reaped
    # children, and sizes run in ascending order, so it is this run's peak.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        print(stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"pipeline failed for {evses} EVSEs")
    proc_stdout = stdout
    out = json.loads(proc_stdout.strip().splitlines()[-1])
    stages = dict.fromkeys(STAGES, 0.0)
    for step, secs in out["steps"].items():
        stages[stage_of(step)] += secs
    return {
        "evses": evses, "days": days, "seed": seed, "success": out["success"],
        "wall_s": round(wall, 2), "pipeline_s": round(out["wall_s"], 2),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "rows": out["rows"], "peak_rss_mb": round(peak_kb / 1024),
        "slowest_steps_s": {k: round(v, 2) for k, v in sorted(out["steps"].items(), key=lambda kv: -kv[1])[:12]},
        "raw_read_lower_bound": lower,
        "ratio_to_lower_bound": round(out["wall_s"] / max(lower["seconds"], 1e-6), 1),
    }


def render(results: list[dict]) -> str:
    head = "| EVSEs | frames | sessions | wall s | " + " | ".join(STAGES) + " | raw read s | x lower bound | peak RSS MB |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r['evses']} | {r['rows'].get('raw.ocpp_frames')} | {r['rows'].get('lineage.sessions')} | "
            f"{r['pipeline_s']} | " + " | ".join(str(r["stages_s"][s]) for s in STAGES)
            + f" | {r['raw_read_lower_bound']['seconds']} | {r['ratio_to_lower_bound']} | {r['peak_rss_mb']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", nargs=2, metavar=("LANDING", "WAREHOUSE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(Path(args.child[0]), Path(args.child[1]))
        return
    # The joint attribution test on a 2,000-session site-day (issue 17: under a second).
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "attribution.py")], check=True, cwd=ROOT)
    results = [run_size(int(n), args.days, args.seed) for n in args.sizes.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {"at": stamp, "machine": f"{platform.machine()} {os.cpu_count()} cpus", "python": platform.python_version()}
    (RESULTS / "latest.json").write_text(json.dumps({**meta, "results": results}, indent=2))
    table = render(results)
    (RESULTS / "latest.md").write_text(f"# Benchmark {stamp}\n\n{table}\n")
    with (RESULTS / "history.jsonl").open("a") as fh:
        for r in results:
            fh.write(json.dumps({**meta, **r}) + "\n")
    print(table)


if __name__ == "__main__":
    main()
