"""OCPI 2.2.1 CDRs, tariff re-publications and Location snapshots, in the shapes partners send."""

from __future__ import annotations

import gzip
import io
import json
import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.generate import pricing
from pipeline.generate.clock import iso_s, local_dt
from pipeline.generate.network import CPO_COUNTRY, CPO_PARTY, Site, TariffVersion
from pipeline.generate.sessions import STEP_S, Session

# Per-site CDR file shapes, chosen by site number so every shape appears in a demo.
CDR_SHAPES = ("array", "envelope", "jsonl", "envelope_gz", "jsonl_gz")

# How the back office that issues a site's CDRs writes them (field practice, not a check's
# tolerance). Times: most systems cut to whole seconds, some to minutes (billing systems
# that keep minute resolution). Money: most round each cost field to cents and add them;
# some round only the total of the exact costs, so the fields need not add up to it.
# Durations go out as hours with 4 decimals (0.36 s), as most CPOs send them.
CDR_TIME_RES = (("s", 0.7), ("min", 0.3))
CDR_COST_ROUNDING = (("component", 0.6), ("total", 0.4))
CDR_HOURS_DP = 4
# Tariffs are re-published with a new last_updated and unchanged content: a nightly full
# PUT, a re-sync after a platform migration, an edited alt text. 0-2 times per version.
TARIFF_REPUBLISH_TIMES = ((0, 0.3), (1, 0.4), (2, 0.3))
MONEY_FIELDS = ("total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost",
                "total_parking_cost", "total_reservation_cost")


def _weighted(rng: random.Random, options: tuple) -> object:
    r, acc = rng.random(), 0.0
    for value, p in options:
        acc += p
        if r < acc:
            return value
    return options[-1][0]


@dataclass(frozen=True)
class CdrPartner:
    """How one CPO back office writes CDRs: time resolution and cost rounding."""

    time_res: str = "s"            # "s" or "min": times cut (floored) to it
    cost_rounding: str = "component"  # "component": fields to cents, total their sum; "total"
    hours_dp: int = 6


EXACT_PARTNER = CdrPartner()  # --noise none: whole seconds, per-field cents, 6-dp hours


def cdr_partner(site: Site, noise: bool = True) -> CdrPartner:
    """The back-office practice of the CDRs of one site (seeded by the site, so repeatable)."""
    if not noise:
        return EXACT_PARTNER
    rng = random.Random(f"cdr-partner:{site.site_id}")
    return CdrPartner(str(_weighted(rng, CDR_TIME_RES)), str(_weighted(rng, CDR_COST_ROUNDING)), CDR_HOURS_DP)


def _cut(t: float, res: str) -> float:
    return float(math.floor(t / 60.0) * 60) if res == "min" else float(math.floor(t))


def _cents(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def site_geo(site: Site) -> dict:
    """Deterministic address and coordinates of a site."""
    rng = random.Random(f"geo:{site.site_id}")
    return {
        "address": f"{rng.choice(('Stationsplein', 'Hauptstrasse', 'Rue du Port', 'Industrieweg'))} {rng.randint(1, 200)}",
        "postal_code": f"{rng.randint(1000, 9999)}",
        "coordinates": {"latitude": f"{rng.uniform(47, 60):.6f}", "longitude": f"{rng.uniform(-8, 25):.6f}"},
    }


def cdr_periods(s: Session, tariff: dict, tz: ZoneInfo, steps_wh: list[int] | None = None
                ) -> list[pricing.Period]:
    """Charging periods split at tariff restriction edges and at the charging → parking edge."""
    steps = s.steps_wh if steps_wh is None else steps_wh
    cuts = pricing.boundaries(tariff, s.start_at, s.stop_at, tz)
    if s.start_at < s.charge_end_at < s.stop_at:
        cuts.append(s.charge_end_at)
    edges = [s.start_at, *sorted(set(cuts)), s.stop_at]
    energy = [0] * (len(edges) - 1)
    k = 0
    for i, wh in enumerate(steps):
        if not wh:
            continue
        t0 = s.start_at + i * STEP_S
        t1 = min(t0 + STEP_S, s.stop_at)
        while k + 1 < len(edges) - 1 and edges[k + 1] <= t0:
            k += 1
        if k + 1 < len(edges) - 1 and edges[k + 1] < t1:
            first = int(wh * (edges[k + 1] - t0) / (t1 - t0))
            energy[k] += first
            energy[k + 1] += wh - first
        else:
            energy[k] += wh
    out = []
    for j in range(len(edges) - 1):
        dur = edges[j + 1] - edges[j]
        if dur <= 0:
            continue
        hours = round(dur / 3600.0, 6)  # the issuer's own figure; build_cdr rounds what is sent
        if edges[j] >= s.charge_end_at:
            vols = {"PARKING_TIME": hours}
        else:
            vols = {"ENERGY": energy[j] / 1000.0, "TIME": hours}
        out.append(pricing.Period(local_dt(edges[j], tz), vols, tariff["id"]))
    return out


def build_cdr(site: Site, s: Session, tariff: dict, periods: list[pricing.Period],
              fields: dict, cdr_id: str, last_updated: float, partner: CdrPartner | None = None) -> dict:
    """One OCPI 2.2.1 CDR object, written as the site's back office writes it.

    ``partner`` defaults to the site's (``cdr_partner``); ``EXACT_PARTNER`` for exact output.
    Costs come from the issuer's own pricing (``fields``), on its exact volumes; the CDR
    carries the volumes as sent (hours to ``hours_dp`` decimals).
    """
    partner = partner or cdr_partner(site)
    geo = site_geo(site)
    uid, cc, party, contract = s.token
    standard = "IEC_62196_T2_COMBO" if s.evse.power_type == "DC" else "IEC_62196_T2"
    cdr = {
        "country_code": CPO_COUNTRY, "party_id": CPO_PARTY, "id": cdr_id,
        "start_date_time": iso_s(_cut(s.start_at, partner.time_res)),
        "end_date_time": iso_s(_cut(s.stop_at, partner.time_res)),
        "session_id": s.ocpi_session_id,
        "cdr_token": {"country_code": cc, "party_id": party, "uid": uid, "type": "RFID", "contract_id": contract},
        "auth_method": "AUTH_REQUEST" if s.auth_at is not None else "WHITELIST",
        "cdr_location": {
            "id": site.location_id, "name": site.name, "address": geo["address"], "city": site.city,
            "postal_code": geo["postal_code"], "country": site.country3, "coordinates": geo["coordinates"],
            "evse_uid": s.evse.evse_uid, "evse_id": s.evse.evse_id, "connector_id": "1",
            "connector_standard": standard, "connector_format": "CABLE" if s.evse.power_type == "DC" else "SOCKET",
            "connector_power_type": s.evse.power_type,
        },
        "currency": tariff["currency"],
        "tariffs": [tariff],
        "charging_periods": [
            {"start_date_time": iso_s(_cut(p.start.timestamp(), partner.time_res)),
             "dimensions": [{"type": k, "volume": v if k == "ENERGY" else round(v, partner.hours_dp)}
                            for k, v in p.volumes.items()],
             "tariff_id": p.tariff_id}
            for p in periods
        ],
    }
    cdr.update(fields)
    exact = getattr(fields, "exact_total", None)
    if partner.cost_rounding == "total" and exact is not None:
        cdr["total_cost"] = {"excl_vat": _cents(exact[0]), "incl_vat": _cents(exact[1])}
    if "total_time" in cdr:
        cdr["total_time"] = round(cdr["total_time"], partner.hours_dp)
    cdr["last_updated"] = iso_s(last_updated)
    return cdr


def as_sent(cdr: dict) -> dict:
    """A CDR as it goes out: a credit carries the negated amounts of what it credits.

    OCPI 2.2.1 mod_cdrs, Credit CDRs: the credit holds the original's data with its costs
    negative; volumes stay as they were.
    """
    if not cdr.get("credit"):
        return cdr
    out = dict(cdr)
    for name in MONEY_FIELDS:
        price = out.get(name)
        if isinstance(price, dict):
            out[name] = {k: (-abs(v) if isinstance(v, int | float) else v) for k, v in price.items()}
    return out


def republications(tariffs: dict[str, list[TariffVersion]], seed: int, period_end: float) -> list[dict]:
    """Tariff objects published again with a new ``last_updated`` and the same content.

    Each version may be re-sent while it is the one in force (never after its successor
    starts, which would put the old prices back in force); the re-sent object has no
    ``start_date_time``, so it is in force from its ``last_updated``, and its alt text may
    say so: nothing a driver pays changes.
    """
    out: list[dict] = []
    for tid in sorted(tariffs):
        versions = sorted(tariffs[tid], key=lambda v: v.valid_from)
        rng = random.Random(f"tariff-republish:{seed}:{tid}")
        for k, tv in enumerate(versions):
            since = float(int(tv.valid_from)) + 3600
            until = versions[k + 1].valid_from - 3600 if k + 1 < len(versions) else period_end
            if until <= since:
                continue
            for t in sorted(rng.uniform(since, until) for _ in range(int(_weighted(rng, TARIFF_REPUBLISH_TIMES)))):
                obj = json.loads(json.dumps(tv.obj))
                obj.pop("start_date_time", None)
                obj["last_updated"] = iso_s(t)
                if rng.random() < 0.5 and obj.get("tariff_alt_text"):
                    text = obj["tariff_alt_text"][0]["text"]
                    obj["tariff_alt_text"] = [{"language": "en", "text": f"{text} (re-published)"}]
                out.append(obj)
    return out


def write_tariff_republications(tariffs: dict[str, list[TariffVersion]], landing: Path, seed: int,
                                period_end: float, noise: bool = True) -> int:
    """Write ``republications`` beside the original versions; how many files."""
    if not noise:
        return 0
    d = landing / "tariffs"
    d.mkdir(parents=True, exist_ok=True)
    objs = republications(tariffs, seed, period_end)
    for obj in objs:
        stamp = obj["last_updated"].replace(":", "").replace("-", "")
        (d / f"{obj['id']}_republished_{stamp}.json").write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    return len(objs)


def write_cdrs(cdrs_by_day: dict[str, list[dict]], site: Site, landing: Path, malformed: dict) -> int:
    """Write a site's CDRs per local day in the site's file shape."""
    shape = CDR_SHAPES[(site.site_no - 1) % len(CDR_SHAPES)]
    d = landing / "cdrs" / site.site_id
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"cdr-files:{site.site_id}")
    n = 0
    for day, cdrs in sorted(cdrs_by_day.items()):
        n += len(cdrs)
        cdrs = [as_sent(c) for c in cdrs]
        if shape.startswith("jsonl"):
            lines = [json.dumps(c, separators=(",", ":")) for c in cdrs]
            name = f"{day}.jsonl"
            if shape == "jsonl" and malformed.get("rate") and rng.random() < malformed["rate"] * 2:
                pos = rng.randrange(len(lines) + 1)
                lines.insert(pos, lines[0][: len(lines[0]) // 3])
                malformed.setdefault("files", {})[f"cdrs/{site.site_id}/{name}"] = 1
            text = "\n".join(lines) + "\n"
        else:
            body: object = cdrs
            if shape.startswith("envelope"):
                body = {"data": cdrs, "status_code": 1000, "status_message": "Success",
                        "timestamp": cdrs[-1]["last_updated"]}
            text = json.dumps(body, separators=(",", ":")) + "\n"
            name = f"{day}.json"
        raw = text.encode("utf-8")
        if shape.endswith("_gz"):
            buf = io.BytesIO()
            # mtime=0 and no file name keep gzip output byte-identical across runs.
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
                gz.write(raw)
            (d / f"{name}.gz").write_bytes(buf.getvalue())
        else:
            (d / name).write_bytes(raw)
    return n


def location_snapshot(site: Site, t: float, status: dict[str, str], power_w: dict[str, int],
                      tariff_ids: dict[str, str]) -> dict:
    """One OCPI Location object as published at ``t``."""
    geo = site_geo(site)
    evses = []
    for e in site.evses:
        dc = e.power_type == "DC"
        evses.append({
            "uid": e.evse_uid, "evse_id": e.evse_id, "status": status[e.evse_uid],
            "connectors": [{
                "id": "1", "standard": "IEC_62196_T2_COMBO" if dc else "IEC_62196_T2",
                "format": "CABLE" if dc else "SOCKET", "power_type": e.power_type,
                "max_voltage": 920 if dc else 230,
                "max_amperage": int(power_w[e.evse_uid] / 920) if dc else round(power_w[e.evse_uid] / 690),
                "max_electric_power": power_w[e.evse_uid], "tariff_ids": [tariff_ids[e.evse_uid]],
                "last_updated": iso_s(t - 86400 * 30),
            }],
            "last_updated": iso_s(t),
        })
    return {
        "country_code": CPO_COUNTRY, "party_id": CPO_PARTY, "id": site.location_id, "publish": True,
        "name": site.name, "address": geo["address"], "city": site.city, "postal_code": geo["postal_code"],
        "country": site.country3, "coordinates": geo["coordinates"], "time_zone": site.time_zone,
        "evses": evses, "last_updated": iso_s(t),
    }
