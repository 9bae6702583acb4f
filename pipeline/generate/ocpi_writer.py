"""OCPI 2.2.1 CDRs and Location snapshots, in the file shapes partners really send."""

from __future__ import annotations

import gzip
import io
import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.generate import pricing
from pipeline.generate.clock import iso_s, local_dt
from pipeline.generate.network import CPO_COUNTRY, CPO_PARTY, Site
from pipeline.generate.sessions import STEP_S, Session

# Per-site CDR file shapes, chosen by site number so every shape appears in a demo.
CDR_SHAPES = ("array", "envelope", "jsonl", "envelope_gz", "jsonl_gz")


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
        hours = round(dur / 3600.0, 6)
        if edges[j] >= s.charge_end_at:
            vols = {"PARKING_TIME": hours}
        else:
            vols = {"ENERGY": energy[j] / 1000.0, "TIME": hours}
        out.append(pricing.Period(local_dt(edges[j], tz), vols, tariff["id"]))
    return out


def build_cdr(site: Site, s: Session, tariff: dict, periods: list[pricing.Period],
              fields: dict, cdr_id: str, last_updated: float) -> dict:
    """One OCPI 2.2.1 CDR object."""
    geo = site_geo(site)
    uid, cc, party, contract = s.token
    standard = "IEC_62196_T2_COMBO" if s.evse.power_type == "DC" else "IEC_62196_T2"
    cdr = {
        "country_code": CPO_COUNTRY, "party_id": CPO_PARTY, "id": cdr_id,
        "start_date_time": iso_s(s.start_at), "end_date_time": iso_s(s.stop_at),
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
            {"start_date_time": iso_s(p.start.timestamp()),
             "dimensions": [{"type": k, "volume": v} for k, v in p.volumes.items()],
             "tariff_id": p.tariff_id}
            for p in periods
        ],
    }
    cdr.update(fields)
    cdr["last_updated"] = iso_s(last_updated)
    return cdr


def write_cdrs(cdrs_by_day: dict[str, list[dict]], site: Site, landing: Path, malformed: dict) -> int:
    """Write a site's CDRs per local day in the site's file shape."""
    shape = CDR_SHAPES[(site.site_no - 1) % len(CDR_SHAPES)]
    d = landing / "cdrs" / site.site_id
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"cdr-files:{site.site_id}")
    n = 0
    for day, cdrs in sorted(cdrs_by_day.items()):
        n += len(cdrs)
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
