"""The ``chargeline`` command: discovers sub-commands in ``pipeline.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import pipeline.commands
from pipeline.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chargeline",
        description="Nightly lineage and reconciliation for EV charging networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(pipeline.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"pipeline.commands.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except ConfigError as exc:  # the user's file, not a crash: say which keys, no traceback
        print(f"chargeline: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
