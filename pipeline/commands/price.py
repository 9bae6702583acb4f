"""``chargeline price --cdr FILE [--tariff FILE]``: re-price one CDR under one tariff (contract §4).

Without ``--tariff`` the CDR is priced with its own embedded ``tariffs`` (OCPI 2.2.1 ``CDR.tariffs``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.tariffs.engine import price
from pipeline.tariffs.history import in_force, tariff_key
from pipeline.tariffs.model import (
    COST_FIELDS,
    VOLUME_FIELDS,
    Cdr,
    Price,
    Tariff,
    cdr_from_ocpi,
    tariff_from_ocpi,
)


def register(subparsers: Any) -> None:
    """Add the ``price`` sub-command."""
    p = subparsers.add_parser(
        "price",
        help="re-price one OCPI CDR under one tariff and compare with the CDR's own totals",
        description=(
            "Re-price an OCPI CDR with the OCPI 2.2.1 rules and print the computed breakdown "
            "beside the CDR's figures as JSON: {computed, cdr, difference, periods, warnings}."
        ),
    )
    p.add_argument("--tariff", type=Path, help="OCPI Tariff JSON (object, array or envelope); "
                   "default: the tariff embedded in the CDR")
    p.add_argument("--cdr", type=Path, required=True, help="OCPI CDR JSON (object, array, envelope or .jsonl)")
    p.add_argument("--time-zone", default="UTC",
                   help="IANA time zone of the location (CDRs carry none; default UTC)")
    p.add_argument("--reservation-expired", choices=("auto", "yes", "no"), default="auto",
                   help="whether a reservation in the CDR expired without charging (default: infer)")
    p.set_defaults(func=run)


def load_objects(path: Path) -> list[Any]:
    """JSON objects in a file: one object, an array, an OCPI envelope, or JSON lines."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        data = [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    if isinstance(data, Mapping) and "data" in data and (
        "status_code" in data or isinstance(data["data"], list | Mapping)
    ):
        data = data["data"]
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list):
        return list(data)
    raise ValueError(f"{path}: neither a JSON object nor an array")


def choose_tariff(tariffs: list[Tariff], cdr: Cdr) -> tuple[Tariff | None, list[str]]:
    """The tariff that applies to the CDR, in the version in force at its start.

    OCPI 2.2.1 (mod_cdrs, ChargingPeriod.tariff_id): a period names the tariff relevant to it;
    ``CDR.tariffs`` lists the relevant tariffs. So: the tariff the periods name, else one the
    CDR lists by id, else any; of several versions of it, the one in force at the CDR's start.
    Where that still leaves a choice (periods naming several tariffs, several tariffs and no
    reference, two versions with the same ``last_updated``), the first is used and a note
    says so: the engine prices a session under one tariff version.
    """
    notes: list[str] = []
    if not tariffs:
        return None, notes
    period_ids = list(dict.fromkeys(p.tariff_id for p in cdr.charging_periods if p.tariff_id))
    known = [i for i in period_ids if any(t.id == i for t in tariffs)]
    if len(known) > 1:
        notes.append(f"charging periods refer to tariffs {', '.join(known)}; priced every period under "
                     f"{known[0]!r} (one tariff per session)")
    wanted_ids = known[:1] or [i for i in cdr.tariff_ids if any(t.id == i for t in tariffs)]
    if cdr.tariff_ids and not wanted_ids:
        notes.append(f"no tariff with id {', '.join(dict.fromkeys(cdr.tariff_ids))} among the tariffs given; "
                     f"used {tariffs[0].id!r}")
    pool = [t for t in tariffs if t.id in wanted_ids] if wanted_ids else list(tariffs)
    ids = list(dict.fromkeys(t.id for t in pool))
    if len(ids) > 1:
        notes.append(f"{len(ids)} tariffs could apply ({', '.join(ids)}) and the CDR names none of them "
                     f"for its periods; priced under the first, {ids[0]!r}")
        pool = [t for t in pool if t.id == ids[0]]
    chosen = pool[0]
    if len(pool) > 1 and cdr.start_date_time is not None:
        found = in_force(pool, cdr.start_date_time, tariff_id=chosen.id)
        if found is None:
            notes.append("no tariff version in force at the CDR's start; used the first one")
        else:
            chosen = found
    twins = [t for t in pool if tariff_key(t) == tariff_key(chosen) and t.last_updated == chosen.last_updated]
    if len(twins) > 1:
        chosen = twins[0]
        notes.append(f"{len(twins)} versions of tariff {chosen.id!r} share last_updated "
                     f"{chosen.last_updated.isoformat() if chosen.last_updated else 'none'}; priced under the first")
    return chosen, notes


def embedded_tariffs(cdr_object: Mapping[str, Any], cdr: Cdr) -> tuple[list[Tariff], str | None]:
    """The CDR's own priceable ``tariffs``, or why there are none (a sentence)."""
    raw = cdr_object.get("tariffs")
    if raw is None:
        return [], "the CDR has no 'tariffs' field"
    if not isinstance(raw, list) or not raw:
        return [], "the CDR's 'tariffs' is empty"
    usable = [t for t in cdr.tariffs if t.elements]
    if not usable:
        return [], "the CDR's 'tariffs' name tariffs but carry no elements to price with"
    return usable, None


def _money(value: Price | None) -> dict[str, float | None] | None:
    if value is None:
        return None
    return {
        "excl_vat": None if value.excl_vat is None else float(value.excl_vat),
        "incl_vat": None if value.incl_vat is None else float(value.incl_vat),
    }


def cdr_figures(cdr: Cdr) -> dict[str, Any]:
    """The CDR's own total_* fields in the output shape (None where the CDR has none)."""
    out: dict[str, Any] = {name: _money(cdr.totals.get(name)) for name in COST_FIELDS}
    for name in VOLUME_FIELDS:
        value = cdr.volumes.get(name)
        out[name] = None if value is None else float(value)
    return out


def _minus(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return float((Decimal(str(a)) - Decimal(str(b))).quantize(Decimal("0.0001")))


def difference(computed: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """computed - cdr per field; an absent CDR cost field counts as 0, absent VAT as unknown."""
    out: dict[str, Any] = {}
    for name in COST_FIELDS:
        mine = computed[name]
        theirs = reported.get(name) or {"excl_vat": 0.0, "incl_vat": 0.0}
        out[name] = {k: _minus(mine[k], theirs[k]) for k in ("excl_vat", "incl_vat")}
    for name in VOLUME_FIELDS:
        out[name] = _minus(computed[name], reported.get(name))
    return out


def run(args: argparse.Namespace) -> int:
    """Price the CDR and print the comparison; 0 when priced, 2 when the input is unusable."""
    try:
        cdr_objects = load_objects(args.cdr)
        if not cdr_objects:
            raise ValueError(f"{args.cdr}: no CDR in the file")
        cdr = cdr_from_ocpi(cdr_objects[0])
        tariffs = [tariff_from_ocpi(o) for o in load_objects(args.tariff)] if args.tariff else []
    except (OSError, ValueError) as exc:
        print(f"chargeline price: {exc}", file=sys.stderr)
        return 2
    notes = list(cdr.warnings)
    if len(cdr_objects) > 1:
        notes.append(f"{len(cdr_objects)} CDRs in the file; priced the first")
    if args.tariff:
        if not tariffs:
            print(f"chargeline price: no tariff in {args.tariff}", file=sys.stderr)
            return 2
        source = "file"
    else:
        tariffs, why = embedded_tariffs(cdr_objects[0], cdr)
        if not tariffs:
            print(f"chargeline price: no --tariff given and nothing to price with: {why}; "
                  "give the tariff with --tariff FILE", file=sys.stderr)
            return 2
        source = "embedded"
    tariff, chosen_notes = choose_tariff(tariffs, cdr)
    notes.extend(chosen_notes)
    if tariff is None:
        print("chargeline price: no tariff to price with", file=sys.stderr)
        return 2
    expired = {"auto": None, "yes": True, "no": False}[args.reservation_expired]
    breakdown = price(
        cdr.charging_periods,
        tariff,
        args.time_zone,
        session_end=cdr.end_date_time,
        reservation_expired=expired,
    )
    if cdr.currency and tariff.currency and cdr.currency != tariff.currency:
        notes.append(f"CDR currency {cdr.currency} differs from tariff currency {tariff.currency}")
    computed = breakdown.cdr_fields()
    reported = cdr_figures(cdr)
    full = breakdown.to_dict()
    result = {
        "computed": computed,
        "cdr": reported,
        "difference": difference(computed, reported),
        "periods": full["periods"],
        "tariff": {
            "id": tariff.id,
            "country_code": tariff.country_code,
            "party_id": tariff.party_id,
            "last_updated": None if tariff.last_updated is None else tariff.last_updated.isoformat(),
            "source": source,
        },
        "currency": tariff.currency,
        "price_limit_applied": breakdown.price_limit_applied,
        "warnings": notes + list(breakdown.warnings),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
