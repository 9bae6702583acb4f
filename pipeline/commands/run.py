"""``chargeline run``: ingest what is new and reconcile the days it touches."""

from __future__ import annotations

import argparse
import sys

from pipeline.config import Settings


def add_location_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", help="landing folder (default $CHARGELINE_LANDING or data/landing)")
    p.add_argument("--warehouse", help="DuckDB file (default $CHARGELINE_WAREHOUSE or data/warehouse.duckdb)")
    p.add_argument("--config", help="TOML file overriding tolerances and mappings ($CHARGELINE_CONFIG)")


def register(sub) -> None:
    p = sub.add_parser("run", help="ingest new files and reconcile the days they touch")
    add_location_args(p)
    p.add_argument("--from", dest="day_from", help="first day to reconcile (YYYY-MM-DD)")
    p.add_argument("--to", dest="day_to", help="last day to reconcile (YYYY-MM-DD)")
    p.set_defaults(func=run)


def execute(settings: Settings) -> int:
    from pipeline.runner import run_pipeline
    from pipeline.summary import render_summary
    from pipeline.warehouse import connect

    result = run_pipeline(settings, raise_on_error=False)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"pipeline failed in: {', '.join(failed) or 'unknown step'}", file=sys.stderr)
        return 1
    with connect(settings.warehouse, read_only=True) as conn:
        print(render_summary(conn))
    print(f"\nwarehouse: {settings.warehouse}")
    return 0


def run(args: argparse.Namespace) -> int:
    settings = Settings.resolve(landing=args.landing, warehouse=args.warehouse, config=args.config)
    if not settings.landing.is_dir():
        print(f"landing folder not found: {settings.landing}", file=sys.stderr)
        return 2
    return execute(settings)
