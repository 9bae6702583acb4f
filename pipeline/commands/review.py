"""``chargeline review``: the settlement queue (list, show, set, export).

KEY is a session key, review key (``flag:<id>`` for charger and site findings), CDR id,
backend session id, OCPI session id or ``charger:transaction``. Reading commands open the
warehouse read-only; ``set`` records one decision and its audit row in the decision store
(``pipeline.decisions``) and shows it in the warehouse at once. While a night holds the
warehouse, every action works on the store's copy of the queue (as of the last run, with
every decision since), and a decision reaches the warehouse with the next run.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path

from pipeline.commands.run import add_location_args
from pipeline.config import Settings


def register(sub) -> None:
    p = sub.add_parser("review", help="the settlement review queue: list, show, set, export")
    actions = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")

    ls = actions.add_parser("list", help="the queue, most money at risk first")
    add_location_args(ls)
    ls.add_argument("--status", choices=("open", "confirmed", "dismissed", "resolved"))
    ls.add_argument("--check", help="only items with a finding of this check")
    ls.add_argument("--site", help="site id")
    ls.add_argument("--site-type", dest="site_type", choices=("public", "fleet", "microgrid"))
    ls.add_argument("--severity", choices=("info", "warn", "error"), help="at least this severe")
    ls.add_argument("--from", dest="day_from", help="first session day (YYYY-MM-DD, UTC)")
    ls.add_argument("--to", dest="day_to", help="last session day (YYYY-MM-DD, UTC)")
    ls.add_argument("--limit", type=int, help="at most this many rows")
    ls.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ls.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one item: findings, evidence, decisions, lineage")
    add_location_args(show)
    show.add_argument("key")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(func=run_show)

    st = actions.add_parser("set", help="record a decision on one item")
    add_location_args(st)
    st.add_argument("key")
    st.add_argument("--status", required=True, choices=("open", "confirmed", "dismissed", "resolved"))
    st.add_argument("--note")
    st.add_argument("--reviewer", help="default $CHARGELINE_REVIEWER or the login name")
    st.set_defaults(func=run_set)

    ex = actions.add_parser("export", help="write the whole queue to .csv or .parquet")
    add_location_args(ex)
    ex.add_argument("--out", required=True)
    ex.set_defaults(func=run_export)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.resolve(warehouse=args.warehouse, config=args.config)


def _store(args: argparse.Namespace):
    from pipeline.decisions import DecisionStore, store_path

    settings = _settings(args)
    return DecisionStore(store_path(settings.warehouse, settings.options))


def _open(args: argparse.Namespace, read_only: bool):
    """The published warehouse with the store's decisions over its queue (``read_only`` is
    kept for callers: the analysts' file is never written, decisions go to the store)."""
    from pipeline.review import review_connection

    settings = _settings(args)
    store = _store(args)
    if not settings.warehouse.exists() and not store.items():
        print(f"warehouse not found: {settings.warehouse} (run `chargeline run` first)", file=sys.stderr)
        return None
    return review_connection(settings.warehouse if settings.warehouse.exists() else None, store)


def _open_queue(args: argparse.Namespace, read_only: bool):
    """The warehouse connection when it holds a review queue, else (None, exit code)."""
    from pipeline.sql import table_exists

    conn = _open(args, read_only=read_only)
    if conn is None:
        return None, 2
    if not table_exists(conn, "recon.review"):
        print("no review queue yet (run `chargeline run`)", file=sys.stderr)
        conn.close()
        return None, 1
    return conn, 0


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def run_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from pipeline.review import flatten_lists, queue

    conn = _open(args, read_only=True)
    if conn is None:
        return 2
    with conn:
        frame = queue(conn, status=args.status, check=args.check, site=args.site,
                      site_type=args.site_type, severity=args.severity, day_from=args.day_from,
                      day_to=args.day_to, limit=args.limit)
    if args.format == "json":
        print(json.dumps(frame.to_dicts(), default=_json_default, indent=1))
    elif args.format == "csv":
        sys.stdout.write(flatten_lists(frame).write_csv())
    else:
        cols = ["review_key", "status", "max_severity", "money_at_risk", "currency", "checks",
                "site_id", "charge_point_id", "started_at", "finding_present", "reviewer"]
        shown = flatten_lists(frame.select(cols)) if frame.height else frame.select(cols)
        rows = [[*r[:3], f"{r[3]:.2f}" if r[3] is not None else "", *r[4:8],
                 r[8].strftime("%Y-%m-%d %H:%M") if r[8] else "", "yes" if r[9] else "gone", r[10] or ""]
                for r in shown.iter_rows()]
        headers = ["key", "status", "severity", "at risk", "cur", "checks", "site", "charger",
                   "started (UTC)", "finding", "reviewer"]
        print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
        print(f"\n{frame.height} item(s), {sum(frame['money_at_risk'].fill_null(0)):.2f} at risk")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from pipeline.review import AmbiguousKey, KeyNotFound, item, resolve_key

    conn, code = _open_queue(args, read_only=True)
    if conn is None:
        return code
    with conn:
        try:
            detail = item(conn, resolve_key(conn, args.key))
        except (KeyNotFound, AmbiguousKey) as exc:
            print(exc.args[0], file=sys.stderr)
            return 1
    if args.format == "json":
        print(json.dumps({"item": detail["item"], "findings": detail["findings"].to_dicts(),
                          "log": detail["log"].to_dicts(), "lineage": detail["lineage"]},
                         default=_json_default, indent=1))
        return 0
    it = detail["item"]
    print(f"{it['review_key']}  status={it['status']}  severity={it['max_severity']}  "
          f"at risk={it['money_at_risk']:.2f} {it['currency'] or ''}"
          f"{'' if it['finding_present'] else '  (finding no longer present)'}")
    for name in ("session_key", "site_id", "site_type", "charge_point_id", "evse_uid",
                 "ocpp_transaction_id", "backend_session_id", "cdr_id", "started_at",
                 "reviewer", "decided_at", "note", "first_flagged_at", "last_seen_at"):
        if it.get(name) is not None:
            print(f"  {name:20} {it[name]}")
    print("\nFindings")
    for f in detail["findings"].iter_rows(named=True):
        money = f"{f['money_at_risk']:.2f} {f['currency'] or ''}" if f["money_at_risk"] is not None else "-"
        print(f"- {f['check']} [{f['severity']}] {money}  (flag {f['flag_id']})")
        print(f"  {f['explanation']}")
        print(f"  evidence: {f['evidence']}")
    if detail["log"].height:
        print("\nDecisions")
        print(tabulate(detail["log"].rows(), headers=detail["log"].columns, tablefmt="github"))
    if detail["lineage"]:
        print("\nLineage")
        for k, v in detail["lineage"].items():
            if v is not None:
                print(f"  {k:28} {v}")
    return 0


def run_set(args: argparse.Namespace) -> int:
    from pipeline.review import AmbiguousKey, KeyNotFound, set_status

    conn, code = _open_queue(args, read_only=False)
    if conn is None:
        return code
    with conn:
        try:
            d = set_status(conn, args.key, args.status, note=args.note, reviewer=args.reviewer,
                           store=_store(args))
        except (KeyNotFound, AmbiguousKey) as exc:
            print(exc.args[0], file=sys.stderr)
            return 1
    print(f"{d.review_key}: {d.old_status} -> {d.new_status} by {d.reviewer}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pipeline.review import export_queue

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        print(f"--out must end in .csv or .parquet: {out}", file=sys.stderr)
        return 2
    conn = _open(args, read_only=True)
    if conn is None:
        return 2
    with conn:
        rows = export_queue(conn, out)
    print(f"{rows} item(s) written to {out}")
    return 0
