"""Multi-night benchmark: one more day of files per night, into the same warehouse.

Usage: ``python benchmarks/nights.py [--evses 1000] [--nights 10] [--seed 7]``.

A network of ``--nights`` days is generated once (cached under ``benchmarks/data/``). Night k
lays the files of day k into one landing folder (hard links; files without a day in their
name, such as the registry and tariffs, arrive on night 1) and runs ``chargeline run`` in a
child process against the same warehouse, as the nightly batch does. Per night: wall time,
the child's peak RSS, and the files it saw. A night should cost the new day, not the
history: the last night's time over the first's is the figure to watch (issue 15: <= 1.25),
and peak RSS should not grow with the nights.

Results: ``benchmarks/results/nights.md`` and ``nights.json``, one line per run appended to
``nights-history.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
START = date(2026, 11, 2)
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


def ensure_network(evses: int, days: int, seed: int) -> Path:
    out = DATA / f"nights-{evses}x{days}-s{seed}"
    if (out / "truth" / "manifest.json").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pipeline.cli", "generate", "--out", str(out), "--evses", str(evses),
                    "--days", str(days), "--seed", str(seed), "--start", START.isoformat(), "--quiet"],
                   check=True, cwd=ROOT)
    return out


def file_day(path: Path) -> date | None:
    """The day a landing file belongs to, from its name (None: it arrives on the first night)."""
    m = _DAY.search(path.name)
    return date.fromisoformat(m.group(1)) if m else None


def lay_night(source: Path, landing: Path, upto: date, first: bool) -> int:
    """Hard-link every file of ``upto`` (and, on the first night, the undated ones)."""
    n = 0
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        d = file_day(f)
        if (d is None and first) or d == upto or (first and d is not None and d < upto):
            target = landing / f.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(f, target)
                n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--evses", type=int, default=1000)
    ap.add_argument("--nights", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    net = ensure_network(a.evses, a.nights, a.seed)
    work = DATA / f"nights-run-{a.evses}x{a.nights}-s{a.seed}"
    shutil.rmtree(work, ignore_errors=True)
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    rows = []
    for k in range(a.nights):
        day = START + timedelta(days=k)
        files = lay_night(net / "landing", landing, day, first=k == 0)
        r = _measure(landing, warehouse)
        r.update(night=k + 1, day=day.isoformat(), new_files=files)
        rows.append(r)
        print(f"night {k + 1} ({day}): {r['seconds']} s, peak RSS {r['peak_rss_mb']} MB, "
              f"{files} new files, exit {r['exit']}", flush=True)
    ratio = rows[-1]["seconds"] / rows[0]["seconds"] if rows and rows[0]["seconds"] else None
    result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
              "cpus": os.cpu_count(), "evses": a.evses, "nights": rows,
              "last_over_first": round(ratio, 2) if ratio else None}
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [f"# Multi-night benchmark: {a.evses} EVSEs, one more day per night, one warehouse", "",
             f"Measured {result['at']} on {result['cpus']} cores. Last night / first night: "
             f"{result['last_over_first']}.", "",
             "| night | day | new files | wall s | peak RSS MB | exit |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['night']} | {r['day']} | {r['new_files']} | {r['seconds']} | {r['peak_rss_mb']} | {r['exit']} |"
              for r in rows]
    (RESULTS / "nights.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "nights.json").write_text(json.dumps(result, indent=1))
    with (RESULTS / "nights-history.jsonl").open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    print("\n".join(lines))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


def _measure(landing: Path, warehouse: Path) -> dict:
    """Run one night in a child and read that child's own peak RSS (wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--landing", str(landing),
                             "--warehouse", str(warehouse)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return {"seconds": round(time.perf_counter() - t0, 1), "exit": os.waitstatus_to_exitcode(status),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "stderr_tail": err.strip().splitlines()[-3:]}


if __name__ == "__main__":
    sys.exit(main())
