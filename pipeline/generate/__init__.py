"""``chargeline generate``: a synthetic charging network with planted, labelled faults.

Layout and truth files are fixed in ``docs/design.md`` ("Generator output"); the
planted anomalies, their rates and magnitudes, and the field noise (on by default,
``GenConfig.noise = "none"`` for exact data; ``pipeline.generate.noise``) are described
in ``data/README.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from pipeline.generate.faults import ALL_CHECKS, FAULT_COLUMNS, REJECT_COLUMNS, SESSION_COLUMNS
from pipeline.generate.network import (
    build_network,
    build_tariffs,
    build_tokens,
    write_registry,
    write_tariffs,
    write_tokens,
)
from pipeline.generate.ocpi_writer import write_tariff_republications
from pipeline.generate.site import GenConfig, SiteResult, generate_site

__all__ = ["GenConfig", "generate"]

_STATE: dict = {}


def _work(i: int) -> SiteResult:
    st = _STATE
    return generate_site(st["sites"][i], st["cfg"], st["tariffs"], st["tokens"])


def generate(cfg: GenConfig, progress: bool = False) -> dict:
    """Write the landing folder and truth files for ``cfg``; return the manifest.

    Sites are generated independently (optionally in ``cfg.workers`` forked processes)
    and their truth rows appended in site order, so output is byte-identical for a
    seed whatever the worker count; memory stays bounded by one site per worker.
    """
    t_start = time.perf_counter()
    out = cfg.out
    if cfg.landing.exists():
        shutil.rmtree(cfg.landing)
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    sites = build_network(cfg.evses, cfg.seed)
    tariffs = build_tariffs(sites, cfg.start, cfg.days)
    tokens = build_tokens(cfg.evses, cfg.seed)
    write_registry(sites, cfg.landing)
    n_tariffs = write_tariffs(tariffs, cfg.landing)
    # Re-publications with unchanged prices: field noise, never a stale or changed tariff.
    end = dt.datetime.combine(cfg.start + dt.timedelta(days=cfg.days + 1), dt.time(), dt.UTC).timestamp()
    n_tariffs += write_tariff_republications(tariffs, cfg.landing, cfg.seed, end,
                                             getattr(cfg, "noise", "field") != "none")
    write_tokens(tokens, cfg.landing, cfg.start)
    _STATE.update(sites=sites, cfg=cfg, tariffs=tariffs, tokens=tokens)

    totals = Counter()
    by_check: Counter = Counter()
    rejects = 0
    with open(truth / "sessions.csv", "w", newline="", encoding="utf-8") as fs, \
            open(truth / "faults.csv", "w", newline="", encoding="utf-8") as ff, \
            open(truth / "rejects.csv", "w", newline="", encoding="utf-8") as fr:
        ws, wf, wr = (csv.writer(f, lineterminator="\n") for f in (fs, ff, fr))
        ws.writerow(SESSION_COLUMNS)
        wf.writerow(FAULT_COLUMNS)
        wr.writerow(REJECT_COLUMNS)
        idx = range(len(sites))
        pool = None
        if cfg.workers > 1 and len(sites) > 4:
            pool = mp.get_context("fork").Pool(cfg.workers)
            results = pool.imap(_work, idx, chunksize=2)
        else:
            results = map(_work, idx)
        last = 0.0
        try:
            for done, res in enumerate(results, start=1):
                ws.writerows(res.session_rows)
                wf.writerows(res.fault_rows)
                wr.writerows(res.reject_rows)
                totals.update(sessions=res.sessions, frames=res.frames, cdrs=res.cdrs)
                by_check.update(r[0] for r in res.fault_rows)
                rejects += sum(r[2] for r in res.reject_rows)
                now = time.perf_counter()
                if progress and (now - last > 1.0 or done == len(sites)):
                    last = now
                    print(f"\rgenerate: sites {done}/{len(sites)}  sessions {totals['sessions']:,}  "
                          f"frames {totals['frames']:,}  {now - t_start:.0f} s", end="", file=sys.stderr,
                          flush=True)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    if progress:
        print(file=sys.stderr)
    _STATE.clear()

    sizes: dict[str, dict[str, int]] = {}
    for root, _dirs, files in os.walk(cfg.landing):
        src = Path(root).relative_to(cfg.landing).parts[:1]
        if not src:
            continue
        agg = sizes.setdefault(src[0], {"files": 0, "bytes": 0})
        for f in files:
            agg["files"] += 1
            agg["bytes"] += os.path.getsize(os.path.join(root, f))
    manifest = {
        "generator": "chargeline generate",
        "seed": cfg.seed, "start": cfg.start.isoformat(), "days": cfg.days, "evses": cfg.evses,
        "sites": len(sites), "chargers": sum(len(s.chargers) for s in sites),
        "site_types": dict(sorted(Counter(s.site_type for s in sites).items())),
        "clean": cfg.clean, "noise": cfg.noise, "fault_rate": 0.0 if cfg.clean else cfg.fault_rate,
        "fault_rate_units": {
            "per session": ["timestamp_drift", "stale_tariff", "cost_mismatch", "energy_mismatch",
                            "missing_cdr", "missing_backend_session", "duplicate_cdr", "meter_anomaly",
                            "incomplete_session", "token_invalid", "orphan_cdr",
                            "tariff_changed_during_session"],
            "per charger": ["charger_clock_skew", "auth_latency"],
            "per published EVSE": ["status_mismatch", "capability_mismatch"],
            "per site interval with EV energy": ["energy_attribution_mismatch"],
        },
        "counts": {"sessions": totals["sessions"], "ocpp_frames": totals["frames"], "cdrs": totals["cdrs"],
                   "tariff_versions": n_tariffs, "expected_rejects": rejects},
        "faults": {c: by_check.get(c, 0) for c in ALL_CHECKS},
        "sizes": dict(sorted(sizes.items())),
        # Wall-clock fields: the only ones that differ between runs of one seed.
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
