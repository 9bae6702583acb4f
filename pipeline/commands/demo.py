"""``chargeline demo``: a sample network with known faults, reconciled end to end."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

from pipeline.config import Settings


def register(sub) -> None:
    p = sub.add_parser("demo", help="generate a sample network, run the pipeline, print the summary")
    p.add_argument("--dir", default="data", help="where the demo's landing folder, truth and warehouse go")
    p.add_argument("--evses", type=int, default=40, help="size of the sample network")
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.commands.run import execute
    from pipeline.generate import GenConfig, generate

    root = Path(args.dir)
    warehouse = root / "warehouse.duckdb"
    # The demo always starts from scratch so that it shows the same thing every time.
    for sub in ("landing", "truth", "reports"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for leftover in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        leftover.unlink(missing_ok=True)
    manifest = generate(
        GenConfig(out=root, evses=args.evses, days=args.days, seed=args.seed,
                  start=dt.date(2026, 11, 16), fault_rate=0.02, clean=False, workers=1),
        progress=False,
    )
    c = manifest["counts"]
    print(f"sample network: {manifest['sites']} sites, {manifest['chargers']} chargers, "
          f"{c['sessions']} sessions, {c['ocpp_frames']} OCPP frames, "
          f"{sum(manifest['faults'].values())} planted faults (truth in {root / 'truth'})")
    return execute(Settings.resolve(landing=root / "landing", warehouse=warehouse, reports=root / "reports"))
