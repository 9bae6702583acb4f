"""Micro-benchmark: the joint attribution test on one site-day of 2,000 sessions.

Issue 17 asks for a site-day of 2,000 sessions judged in under a second. This times
``pipeline.attribution.judge`` (what ``recon_attribution_judgement`` runs per night) on a
synthetic site-day: 2,000 unsampled sessions of 1-10 h over 96 EMS intervals, the EMS
consistent with one layout of their energy, then the same site-day with two 2-hour EMS
dropouts that no layout explains, to time the conflict search.
Run by ``make bench`` (``benchmarks/run.py``) or alone: ``python benchmarks/attribution.py``.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.attribution import judge  # noqa: E402

T0 = datetime(2026, 11, 20, tzinfo=UTC)
N_INTERVALS = 96


def site_day(n_sessions: int = 2000, seed: int = 7, faults: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    cap = 11.0 * 1.25 / 4  # kWh per 15 minutes at the power limit
    starts = rng.integers(0, N_INTERVALS - 4, n_sessions)
    lengths = rng.integers(4, 41, n_sessions)
    ems = np.zeros(N_INTERVALS)
    rows = []
    for k in range(n_sessions):
        ivs = np.arange(starts[k], min(starts[k] + lengths[k], N_INTERVALS))
        charged = ivs[: max(1, len(ivs) // 3)]  # charges first, then idles plugged in
        energy = cap * 0.8 * len(charged)
        ems[charged] += cap * 0.8
        for i in ivs:
            rows.append((f"s{k}", T0 + timedelta(minutes=15 * int(i)), 0.0, cap, energy, energy))
    edges = pl.DataFrame(rows, schema=["session_key", "site_interval_at", "least_kwh", "most_kwh",
                                       "session_least_kwh", "session_most_kwh"], orient="row")
    edges = edges.with_columns(pl.lit("S1").alias("site_id"),
                               pl.col("site_interval_at").cast(pl.Datetime("us", "UTC")))
    for j in range(faults):
        # the site meter drops out for two hours: sessions plugged in only then cannot place
        # their energy anywhere else
        ems[20 + 40 * j: 28 + 40 * j] = 0.0
    tol = np.maximum(0.2, 0.03 * ems)
    bands = pl.DataFrame({
        "site_id": ["S1"] * N_INTERVALS,
        "interval_start_at": [T0 + timedelta(minutes=15 * i) for i in range(N_INTERVALS)],
        "ems_ev_energy_kwh": ems, "sessions_energy_kwh": ems,
        "admit_lo_kwh": np.maximum(ems - tol, 0), "admit_hi_kwh": ems + tol, "tolerance_kwh": tol,
        "outside_band": [False] * N_INTERVALS,
    }).with_columns(pl.col("interval_start_at").cast(pl.Datetime("us", "UTC")))
    return bands, edges


def bench(repeat: int = 3) -> dict:
    out = {}
    for name, faults in (("feasible", 0), ("with_conflicts", 2)):
        bands, edges = site_day(faults=faults)
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            res = judge(bands, edges)
            best = min(best, time.perf_counter() - t)
        out[name] = {"sessions": 2000, "edges": len(edges), "seconds": round(best, 3),
                     "conflicts": int(res["is_conflict_culprit"].sum())}
    return out


def main() -> dict:
    result = bench()
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "attribution.json").write_text(json.dumps(result, indent=2))
    for name, r in result.items():
        print(f"attribution judge, site-day of {r['sessions']} sessions ({r['edges']} session x interval "
              f"pairs), {name}: {r['seconds']} s, {r['conflicts']} conflict(s)")
    return result


if __name__ == "__main__":
    main()
