"""CLI sub-commands, one module each.

Every module here exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit
code. Keeping one command per module lets commands be added without touching
``pipeline/cli.py``.
"""
