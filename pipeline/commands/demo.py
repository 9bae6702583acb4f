"""``chargeline demo``: a sample network with known faults, reconciled end to end."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pipeline.config import Settings


def register(sub) -> None:
    p = sub.add_parser("demo", help="generate a sample network, run the pipeline, print the summary")
    p.add_argument("--dir", default="data", help="where the demo's landing folder and warehouse go")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.commands.run import execute
    from pipeline.sample import write_sample

    root = Path(args.dir)
    landing = root / "landing"
    warehouse = root / "warehouse.duckdb"
    # The demo always starts from scratch so that it shows the same thing every time.
    shutil.rmtree(landing, ignore_errors=True)
    for leftover in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        leftover.unlink(missing_ok=True)
    write_sample(landing)
    print(f"sample network written to {landing}")
    return execute(Settings.resolve(landing=landing, warehouse=warehouse, reports=root / "reports"))
