"""``chargeline run``: ingest what is new and reconcile the days it touches."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from pipeline.config import Settings


def add_location_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", help="landing folder (default $CHARGELINE_LANDING or data/landing)")
    p.add_argument("--warehouse", help="DuckDB file (default $CHARGELINE_WAREHOUSE or data/warehouse.duckdb)")
    p.add_argument("--config", help="TOML file overriding tolerances and mappings ($CHARGELINE_CONFIG)")


def register(sub) -> None:
    p = sub.add_parser("run", help="ingest new files and reconcile the days they touch")
    add_location_args(p)
    p.add_argument("--from", dest="day_from",
                   help="first day to re-reconcile (YYYY-MM-DD, UTC), besides the days new files touch")
    p.add_argument("--to", dest="day_to", help="last day to re-reconcile (YYYY-MM-DD; default: --from)")
    p.add_argument("--only", action="store_true",
                   help="reconcile only --from..--to; other queued days wait (one process of a parallel backfill)")
    p.set_defaults(func=run)


def execute(settings: Settings, days: tuple[date, date] | None = None, only: bool = False) -> int:
    """Run the night and print its summary; the exit code.

    0 whenever the night ran, whatever the data and the integrity checks say (those are
    results: rows in ``recon.flags`` and ``meta.integrity_results``, printed below). 1 only
    when a step crashed (a defect: its days stay queued for the next run; the other day
    ranges were still reconciled and are summarized).
    """
    from pipeline.runner import run_pipeline
    from pipeline.summary import render_summary
    from pipeline.warehouse import connect

    result = run_pipeline(settings, raise_on_error=False, days=days, only=only and days is not None)
    for name in result.failed_runs:
        run = dict(result.runs)[name]
        failed = [e.step_key for e in run.all_events if e.is_step_failure]
        print(f"run {name} failed in: {', '.join(failed) or 'unknown step'}", file=sys.stderr)
    if result.days:
        print(f"reconciled days: {result.days[0]} .. {result.days[-1]} ({len(result.days)} days, "
              f"{len(result.runs) - 1} runs)", file=sys.stderr)
    if settings.warehouse.exists():
        with connect(settings.warehouse, read_only=True) as conn:
            print(render_summary(conn, result.run_ids))
    print(f"\nwarehouse: {settings.warehouse}  (duckdb -readonly {settings.warehouse})")
    report = settings.reports / "review_report.html"
    if report.exists():
        print(f"review report: {report}")
    return 1 if result.failed_runs else 0


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.resolve(landing=args.landing, warehouse=args.warehouse, config=args.config)
    except (OSError, ValueError) as exc:  # missing, unreadable or not TOML
        print(f"config: {exc}", file=sys.stderr)
        return 2
    if not settings.landing.is_dir():
        print(f"landing folder not found: {settings.landing}", file=sys.stderr)
        return 2
    try:
        first = date.fromisoformat(args.day_from) if args.day_from else None
        last = date.fromisoformat(args.day_to) if args.day_to else None
    except ValueError as exc:
        print(f"--from/--to: {exc}", file=sys.stderr)
        return 2
    days = None
    if first or last:
        # one bound given: that day alone
        first, last = first or last, last or first
        if last < first:
            print("--to is before --from", file=sys.stderr)
            return 2
        days = (first, last)
    return execute(settings, days, only=args.only)
