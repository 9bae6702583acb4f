"""``chargeline trace KEY``: one session's lineage as a timeline across every source."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands.run import add_location_args
from pipeline.config import Settings


def register(sub) -> None:
    p = sub.add_parser("trace", help="one session as a timeline across every source")
    p.add_argument("key", metavar="KEY",
                   help="session key, CDR id, backend session id, or charger:transaction id")
    add_location_args(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.trace import build_trace
    from pipeline.warehouse import connect

    settings = Settings.resolve(landing=args.landing, warehouse=args.warehouse, config=args.config)
    if not settings.warehouse.is_file():
        print(f"warehouse not found: {settings.warehouse} (run `chargeline run` first)", file=sys.stderr)
        return 2
    with connect(settings.warehouse, read_only=True) as conn:
        trace = build_trace(conn, args.key)
    if trace is None:
        print(f"no session found for {args.key!r}", file=sys.stderr)
        return 1
    print(json.dumps(trace.to_dict(), indent=1, default=str) if args.format == "json" else trace.render())
    return 0
