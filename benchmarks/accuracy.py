"""Accuracy: every check against planted faults on many noisy generated networks.

Usage: ``python benchmarks/accuracy.py [--only NAME,NAME] [--jobs 1]``.

Each network of ``NETWORKS`` is generated (with the generator's default field noise) into
``benchmarks/data/accuracy/<name>``, reconciled in a child process into its own warehouse,
and scored against ``truth/faults.csv`` (``tests/support/evaluate.py``). ``CLEAN`` networks
carry the same noise but no planted faults: every finding there is a false one, and an
``error`` is a defect. Results: ``benchmarks/results/accuracy.md`` (per check and network
TP/FP/FN, pooled precision and recall, the worst network per check) and ``accuracy.json``.

The bar (issue 14): on at least ten noisy networks every check reaches precision and recall
>= 0.95 pooled over the networks, and the clean ones raise no ``error`` finding. The table
keeps every network's figures, not only the best ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "accuracy"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

# name -> generate arguments. Seeds, sizes, fault rates and both DST weeks of 2026
# (Europe: summer time starts 29 March, ends 25 October) and one older year.
NETWORKS: dict[str, list[str]] = {
    "s1-200x2-5pct": ["--evses", "200", "--days", "2", "--seed", "1", "--fault-rate", "0.05"],
    "s2-200x2-5pct": ["--evses", "200", "--days", "2", "--seed", "2", "--fault-rate", "0.05"],
    "s3-200x2-2pct": ["--evses", "200", "--days", "2", "--seed", "3", "--fault-rate", "0.02"],
    "s4-300x2-10pct": ["--evses", "300", "--days", "2", "--seed", "4", "--fault-rate", "0.1"],
    "s5-100x4-5pct": ["--evses", "100", "--days", "4", "--seed", "5", "--fault-rate", "0.05"],
    "s6-500x1-5pct": ["--evses", "500", "--days", "1", "--seed", "6", "--fault-rate", "0.05"],
    "s7-200x1-20pct": ["--evses", "200", "--days", "1", "--seed", "7", "--fault-rate", "0.2"],
    "dst-spring": ["--evses", "200", "--days", "3", "--seed", "8", "--fault-rate", "0.05",
                   "--start", "2026-03-28"],
    "dst-autumn": ["--evses", "200", "--days", "3", "--seed", "9", "--fault-rate", "0.05",
                   "--start", "2026-10-24"],
    "y2019-200x2": ["--evses", "200", "--days", "2", "--seed", "10", "--fault-rate", "0.05",
                    "--start", "2019-06-03"],
    "s11-1000x1-3pct": ["--evses", "1000", "--days", "1", "--seed", "11", "--fault-rate", "0.03"],
}
CLEAN: dict[str, list[str]] = {
    "clean-200x2": ["--evses", "200", "--days", "2", "--seed", "21", "--clean"],
    "clean-dst-autumn": ["--evses", "150", "--days", "3", "--seed", "22", "--clean",
                         "--start", "2026-10-24"],
}
BAR = 0.95


def _generator_hash() -> str:
    """Cached networks are reused only while the generator's code is the same."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "pipeline" / "generate").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def generate(name: str, args: list[str]) -> Path:
    out = DATA / name
    stamp = out / "args.json"
    key = {"args": args, "generator": _generator_hash()}
    if stamp.exists() and json.loads(stamp.read_text()) == key and (out / "truth").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pipeline.cli", "generate", "--out", str(out), "--quiet", *args],
                   check=True, cwd=ROOT)
    stamp.write_text(json.dumps(key))
    return out


def child(out: Path) -> None:
    """Reconcile one network into a fresh warehouse and print its scores as JSON."""
    import gc

    from pipeline.config import Settings
    from pipeline.runner import run_pipeline
    from pipeline.warehouse import connect
    from tests.support.evaluate import evaluate

    warehouse = out / "w.duckdb"
    for p in (warehouse, out / "w.duckdb.wal"):
        p.unlink(missing_ok=True)
    settings = Settings.resolve(landing=out / "landing", warehouse=warehouse)
    result = run_pipeline(settings, raise_on_error=False)
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    del result
    gc.collect()
    with connect(warehouse, read_only=True) as conn:
        report = evaluate(conn, out / "truth")
        severities = conn.execute(
            'select "check", severity, count(*) from recon.flags group by all order by all').fetchall()
    print(json.dumps({"failed_steps": failed, "scores": report.to_dict()["checks"],
                      "severities": [list(r) for r in severities]}))


def score(name: str, args: list[str]) -> dict:
    t0 = time.perf_counter()
    out = generate(name, args)
    proc = subprocess.run([sys.executable, __file__, "--child", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"name": name, "error": proc.stderr[-4000:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(name=name, args=args, seconds=round(time.perf_counter() - t0, 1))
    return res


def pooled(results: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in results:
        for s in r.get("scores", []):
            p = out.setdefault(s["check"], {"flags": 0, "fp": 0, "truth": 0, "tp": 0, "worst": None})
            p["flags"] += s["flags"]
            p["fp"] += s["fp"]
            p["truth"] += s["truth"]
            p["tp"] += s["tp"]
            worst = min(s["precision"], s["recall"])
            if p["worst"] is None or worst < p["worst"][0]:
                p["worst"] = (worst, r["name"])
    for p in out.values():
        p["precision"] = (p["flags"] - p["fp"]) / p["flags"] if p["flags"] else 1.0
        p["recall"] = p["tp"] / p["truth"] if p["truth"] else 1.0
    return out


def render(faulty: list[dict], clean: list[dict]) -> str:
    names = [r["name"] for r in faulty]
    checks = sorted({s["check"] for r in faulty for s in r.get("scores", [])})
    cells = {(r["name"], s["check"]): s for r in faulty for s in r.get("scores", [])}
    pool = pooled(faulty)
    lines = ["# Accuracy on noisy generated networks", "",
             "Cells TP/FP/FN per network; pooled precision (P) and recall (R) over all networks; "
             "the worst network's min(P, R). Generated with the generator's default noise.", "",
             "| check | P | R | worst | " + " | ".join(names) + " |",
             "|---|---|---|---|" + "---|" * len(names)]
    for c in checks:
        p = pool[c]
        row = [f"`{c}`", f"{p['precision']:.3f}", f"{p['recall']:.3f}",
               f"{p['worst'][0]:.2f} ({p['worst'][1]})" if p["worst"] else "-"]
        for n in names:
            s = cells.get((n, c))
            row.append(f"{s['tp']}/{s['fp']}/{s['fn']}" if s else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Networks: " + "; ".join(f"{r['name']} = `{' '.join(r.get('args', []))}` "
                                          f"({r.get('seconds', '?')} s)" for r in faulty), ""]
    lines += ["## Clean networks (same noise, no planted faults)", "",
              "| network | findings by check and severity | errors |", "|---|---|---|"]
    for r in clean:
        sev = r.get("severities", [])
        errors = sum(n for _, s, n in sev if s == "error")
        lines.append(f"| {r['name']} | " + (", ".join(f"{c} {s} {n}" for c, s, n in sev) or "none")
                     + f" | {errors} |")
    bad = [r["name"] for r in faulty + clean if r.get("error") or r.get("failed_steps")]
    if bad:
        lines += ["", f"Networks whose run failed: {', '.join(bad)}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="", help="comma-separated network names")
    ap.add_argument("--jobs", type=int, default=1, help="networks scored side by side")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return 0
    only = set(filter(None, a.only.split(",")))
    faulty_nets = {k: v for k, v in NETWORKS.items() if not only or k in only}
    clean_nets = {k: v for k, v in CLEAN.items() if not only or k in only}
    DATA.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        faulty = list(pool.map(lambda kv: score(*kv), faulty_nets.items()))
        clean = list(pool.map(lambda kv: score(*kv), clean_nets.items()))
    for r in faulty + clean:
        if r.get("error"):
            print(f"{r['name']}: run failed\n{r['error']}", file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = render(faulty, clean)
    (RESULTS / "accuracy.md").write_text(md)
    (RESULTS / "accuracy.json").write_text(json.dumps({"faulty": faulty, "clean": clean}, indent=1, default=str))
    print(md)
    pool_ = pooled(faulty)
    below = [c for c, p in pool_.items() if p["precision"] < BAR or p["recall"] < BAR]
    clean_errors = sum(n for r in clean for _, s, n in r.get("severities", []) if s == "error")
    print(f"checks below {BAR}: {below or 'none'}; error findings on clean networks: {clean_errors}")
    return 1 if below or clean_errors else 0


if __name__ == "__main__":
    sys.exit(main())
