"""``chargeline generate``: a synthetic network in the landing layout plus its ground truth."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from pipeline.generate import GenConfig, generate
from pipeline.generate.noise import NOISE_LEVELS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` sub-command."""
    p = subparsers.add_parser(
        "generate",
        help="write a synthetic charging network with planted, labelled faults",
        description="Writes DIR/landing/<source>/... (contract §2) and DIR/truth/ "
                    "(sessions.csv, faults.csv, rejects.csv, manifest.json).",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--evses", type=int, default=40, help="number of EVSEs (sites of ~10-20 each)")
    p.add_argument("--days", type=int, default=2, help="number of local days")
    p.add_argument("--seed", type=int, default=42, help="random seed; same seed, same bytes")
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 11, 16),
                   help="first day, YYYY-MM-DD")
    p.add_argument("--fault-rate", type=float, default=0.02,
                   help="probability per unit (session, charger, EVSE, interval) for each check")
    p.add_argument("--clean", action="store_true", help="plant no faults and no malformed records")
    p.add_argument("--noise", choices=NOISE_LEVELS, default="field",
                   help="field (default): every compared value carries field noise (data/README.md); "
                        "none: exact values, for tests that need equalities")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes (output does not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate and print a one-line summary."""
    if args.evses < 1 or args.days < 1 or not 0.0 <= args.fault_rate <= 1.0:
        print("generate: --evses and --days must be >= 1 and --fault-rate in [0, 1]")
        return 2
    cfg = GenConfig(out=args.out, evses=args.evses, days=args.days, seed=args.seed, start=args.start,
                    fault_rate=args.fault_rate, clean=args.clean, workers=max(1, args.workers),
                    noise=args.noise)
    m = generate(cfg, progress=not args.quiet)
    mb = sum(v["bytes"] for v in m["sizes"].values()) / 1e6
    c = m["counts"]
    print(f"generated {m['sites']} sites, {m['chargers']} chargers, {c['sessions']} sessions, "
          f"{c['ocpp_frames']} OCPP frames, {c['cdrs']} CDRs, {sum(m['faults'].values())} planted faults, "
          f"{mb:.1f} MB in {m['elapsed_s']} s -> {args.out}")
    return 0
