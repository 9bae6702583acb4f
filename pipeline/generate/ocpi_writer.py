"""OCPI 2.2.1 CDRs, tariff re-publications and Location snapshots, in the shapes partners send."""

from __future__ import annotations

import bisect
import gzip
import io
import itertools
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
                      tariff_ids: dict[str, str], evse_updated: dict[str, float] | None = None) -> dict:
    """One OCPI Location object as published at ``t`` (``evse_updated``: each EVSE's last change)."""
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
            "last_updated": iso_s((evse_updated or {}).get(e.evse_uid, t)),
        })
    return {
        "country_code": CPO_COUNTRY, "party_id": CPO_PARTY, "id": site.location_id, "publish": True,
        "name": site.name, "address": geo["address"], "city": site.city, "postal_code": geo["postal_code"],
        "country": site.country3, "coordinates": geo["coordinates"], "time_zone": site.time_zone,
        "evses": evses, "last_updated": iso_s(t),
    }


# --- Location status publication: push-on-change, nightly pull, lost pushes ------------------
# How a CPO's map reaches an eMSP: each OCPI status change (from the StatusNotifications its
# CSMS received) is pushed after a publication lag, as the whole Location or as an EVSE PATCH;
# the eMSP also pulls every Location nightly. A push lost on the way leaves the eMSP's map on
# the previous status until the next push of that Location (or EVSE) or the pull.

# Publication lag: batching and queueing in the CPO's OCPI module, long-tailed (median
# ~15 s, one in a hundred over three minutes), never more than a few minutes.
PUBLISH_LAG_MEDIAN_S = 15.0
PUBLISH_LAG_SIGMA = 1.1
PUBLISH_LAG_MAX_S = 360.0
# Share of pushes lost on the way (partner timeouts and 5xx answers that are not retried).
NOISE_LOST_PUSH = 0.03
# Share of sites that push EVSE PATCHes instead of whole Locations.
PATCH_SITE_SHARE = 0.3
# The nightly pull: this local hour, spread over the following minutes.
PULL_LOCAL_H = 3.0
PULL_SPREAD_S = 1200.0
# A disagreement a person reading map and charger log side by side would call wrong: 20 min
# (a driver arriving on the map's word finds the charger taken). Shorter than 10 min is
# propagation. Lost pushes whose disagreement would fall in between are delivered instead,
# so no truth row depends on where exactly the line is drawn.
STATUS_VISIBLE_S = 1200.0
STATUS_PROPAGATION_S = 600.0
# Planted stuck map status (the CPO's OCPI state never took the change): 22 min to 4 h.
STUCK_MIN_S = 1320.0
STUCK_MAX_S = 4 * 3600.0

# The CPO's own mapping of what its CSMS received to the OCPI status it publishes.
_OCPI = {"Available": "AVAILABLE", "Preparing": "CHARGING", "Charging": "CHARGING", "SuspendedEV": "CHARGING",
         "SuspendedEVSE": "CHARGING", "Finishing": "CHARGING", "Occupied": "CHARGING", "Reserved": "RESERVED",
         "Unavailable": "INOPERATIVE", "Faulted": "OUTOFORDER"}
# Statuses a map may show either way: a car plugged but not charging yet, or done and not unplugged.
_EITHER = {"Preparing", "Finishing"}


@dataclass
class StatusEpisode:
    """A stretch where the eMSP's map showed another status than the charger reported."""

    evse_uid: str
    start: float
    end: float
    map_status: str
    ocpp_status: str
    cause: str


@dataclass
class _Push:
    at: float
    evse_uid: str
    status: str
    lost: bool = False
    protected: bool = False


def status_events(lines: list[tuple[float, int, str]], v201: bool) -> dict[int, list[tuple[float, str]]]:
    """StatusNotifications the CSMS received, per connector: (received, status), in order."""
    out: dict[int, list[tuple[float, str]]] = {}
    for received, _n, line in sorted(lines):
        if "StatusNotification" not in line:
            continue
        if line.startswith("{"):
            frame = json.loads(line)["frame"]
            if isinstance(frame, str):
                frame = json.loads(frame)
        else:
            frame = json.loads(line.split(": receive message ", 1)[1]) if ": receive message " in line else None
        if not frame or frame[0] != 2 or frame[2] != "StatusNotification":
            continue
        payload = frame[3]
        connector = payload.get("evseId") if v201 else payload.get("connectorId")
        st = payload.get("connectorStatus") if v201 else payload.get("status")
        if connector:
            out.setdefault(int(connector), []).append((received, st))
    return out


def _lag(rng: random.Random) -> float:
    return min(PUBLISH_LAG_MAX_S, 1.0 + rng.lognormvariate(math.log(PUBLISH_LAG_MEDIAN_S), PUBLISH_LAG_SIGMA))


def _at(changes: list[tuple[float, str]], t: float, default: str | None = None) -> str | None:
    i = bisect.bisect_right([c[0] for c in changes], t)
    return changes[i - 1][1] if i else default


def publish_locations(site: Site, landing: Path, t0: float, midnights: list[float], period_end: float,
                      events: dict[str, list[tuple[float, str]]], sessions: dict[str, list[Session]],
                      stuck: dict[str, tuple[float, float]], power_w: dict[str, int], tariff_ids: dict[str, str],
                      rng: random.Random, allow_visible: bool) -> list[StatusEpisode]:
    """Write the site's Location pushes and pulls; the disagreements a person could see.

    ``events``: per EVSE, the OCPP statuses the CSMS received. ``stuck``: per EVSE, a window
    whose changes the CPO's OCPI state never took (a planted fault). ``allow_visible``: False
    on a clean network, where no lost push may leave the map visibly wrong.
    """
    uids = [e.evse_uid for e in site.evses]
    v201 = {e.evse_uid: ch.ocpp_version == "2.0.1" for ch in site.chargers for e in ch.evses}
    patch_mode = rng.random() < PATCH_SITE_SHARE
    pulls = [t0] + [m + PULL_LOCAL_H * 3600 + rng.uniform(0, PULL_SPREAD_S) for m in midnights]
    pulls = [p for p in pulls if p < period_end]
    # The CPO's OCPI state per EVSE: each OCPI status change of what its CSMS received, unless stuck.
    pushes: list[_Push] = []
    for uid in uids:
        cur = "AVAILABLE"
        w = stuck.get(uid)
        for t, st in events.get(uid, []):
            s = _OCPI.get(st, "UNKNOWN")
            if s == cur or (w and w[0] <= t < w[1]):
                continue
            cur = s
            pushes.append(_Push(t + _lag(rng), uid, s))
    pushes.sort(key=lambda p: (p.at, p.evse_uid))
    last = -math.inf
    for p in pushes:  # the CPO's queue publishes in order
        p.at = max(p.at, last + 0.5)
        last = p.at
    state: dict[str, list[tuple[float, str]]] = {uid: [(-math.inf, "AVAILABLE")] for uid in uids}
    for p in pushes:
        state[p.evse_uid].append((p.at, p.status))
    # Sessions whose status the CSMS could not know (no stop, or a stop from the offline queue):
    # status_mismatch does not judge them, so the map is kept right there (no push lost).
    unknown: dict[str, list[tuple[float, float]]] = {}
    for uid in uids:
        ss = sessions.get(uid, [])
        for i, s in enumerate(ss):
            if s.has("incomplete_session"):
                no_stop = s.forms.get("incomplete_session") == "no_stop"
                end = ss[i + 1].plug_at if no_stop and i + 1 < len(ss) else (
                    period_end if no_stop else s.stop_at + s.extra.get("late_s", 0.0) + 120)
                unknown.setdefault(uid, []).append((s.plug_at, end))
    for p in pushes:
        # The last hour is kept too: where the data ends, how long a stale map lasted is cut
        # short by whichever frame came last.
        p.protected = p.at > period_end - 3600 or any(
            a - PUBLISH_LAG_MAX_S - 60 <= p.at <= b + PUBLISH_LAG_MAX_S + 60 for w in unknown.values() for a, b in w)
        p.lost = not p.protected and rng.random() < NOISE_LOST_PUSH

    def simulate() -> list[StatusEpisode]:
        seen: dict[str, list[tuple[float, str]]] = {uid: [] for uid in uids}
        for t in pulls:
            for uid in uids:
                seen[uid].append((t, _at(state[uid], t)))
        for p in pushes:
            if p.lost:
                continue
            for uid in (uids if not patch_mode else [p.evse_uid]):
                seen[uid].append((p.at, _at(state[uid], p.at)))
        eps: list[StatusEpisode] = []
        for uid in uids:
            eps += _episodes(uid, sorted(seen[uid]), events.get(uid, []), sessions.get(uid, []),
                             unknown.get(uid, []), v201[uid], period_end, stuck.get(uid))
        return eps

    for _ in range(6):
        eps = simulate()
        doubtful = [ep for ep in eps if ep.cause == "lost push" and (
            ep.end - ep.start >= STATUS_PROPAGATION_S if not allow_visible
            else STATUS_PROPAGATION_S <= ep.end - ep.start < STATUS_VISIBLE_S)]
        if not doubtful:
            break
        for ep in doubtful:
            # the EVSE's last push before the episode (its change may have been a transitional
            # status that only later disagreed) and every push that could have ended it
            own = [p for p in pushes if p.evse_uid == ep.evse_uid and p.at <= ep.start]
            for p in own[-1:] + [p for p in pushes if ep.start - 1 <= p.at <= ep.end + 1]:
                p.lost = False
    _write_publication(site, landing, t0, pushes, pulls, state, patch_mode, power_w, tariff_ids)
    return [ep for ep in eps if ep.end - ep.start >= STATUS_VISIBLE_S]


def _episodes(uid: str, seen: list[tuple[float, str]], events: list[tuple[float, str]], sessions: list[Session],
              unknown: list[tuple[float, float]], v201: bool, end: float,
              stuck: tuple[float, float] | None) -> list[StatusEpisode]:
    """Where the map (``seen``) and the charger disagree as a person would judge it."""
    cuts = sorted({t for t, _ in seen} | {t for t, _ in events} | {s.start_at for s in sessions}
                  | {s.stop_at for s in sessions} | {x for w in unknown for x in w})
    cuts = [t for t in cuts if t < end] + [end]
    out: list[StatusEpisode] = []
    cur: StatusEpisode | None = None
    for a, b in itertools.pairwise(cuts):
        shown = _at(seen, a)
        raw = _at(events, a)
        wrong = False
        ocpi = None
        if shown is not None and raw is not None:
            ocpi = _OCPI.get(raw, "UNKNOWN")
            # whether the car still charges is what the CSMS cannot know there; a fault it can
            if ocpi == "CHARGING" and any(x <= a < y for x, y in unknown):
                ocpi = "UNKNOWN"
            running = any(s.start_at <= a < s.stop_at for s in sessions)
            either = raw in _EITHER or (v201 and raw == "Occupied" and not running)
            wrong = ocpi != "UNKNOWN" and shown != ocpi and not (either and shown in ("AVAILABLE", "CHARGING"))
        if wrong and cur is not None and cur.end == a and (cur.map_status, cur.ocpp_status) == (shown, ocpi):
            cur.end = b
            continue
        if cur is not None:
            out.append(cur)
            cur = None
        if wrong:
            cause = "stuck" if stuck and stuck[0] - 5 <= a < stuck[1] + 5 else "lost push"
            cur = StatusEpisode(uid, a, b, shown, ocpi, cause)
    if cur is not None:
        out.append(cur)
    return out


def _write_publication(site: Site, landing: Path, start: float, pushes: list[_Push], pulls: list[float],
                       state: dict[str, list[tuple[float, str]]], patch_mode: bool,
                       power_w: dict[str, int], tariff_ids: dict[str, str]) -> None:
    """Delivered pushes per local day (whole Locations or flat EVSE PATCHes), pulls as envelopes."""
    d = landing / "locations" / site.site_id
    d.mkdir(parents=True, exist_ok=True)

    def snapshot(t: float) -> dict:
        status = {uid: _at(ch, t) for uid, ch in state.items()}
        # an EVSE unchanged since the data began: stamped with its start (older would be as real,
        # but would tie the snapshot to days outside the period)
        updated = {uid: max(max(c[0] for c in ch if c[0] <= t), start) for uid, ch in state.items()}
        return location_snapshot(site, t, status, power_w, tariff_ids, updated)

    by_day: dict[str, list[dict]] = {}
    for p in pushes:
        if p.lost:
            continue
        if patch_mode:
            rec = {"country_code": CPO_COUNTRY, "party_id": CPO_PARTY, "location_id": site.location_id,
                   "evse_uid": p.evse_uid, "status": p.status, "last_updated": iso_s(p.at)}
        else:
            rec = snapshot(p.at)
        by_day.setdefault(local_dt(p.at, site.tz).date().isoformat(), []).append(rec)
    for day, recs in sorted(by_day.items()):
        (d / f"{day}.json").write_text(json.dumps(recs, separators=(",", ":")) + "\n", encoding="utf-8")
    for t in pulls:
        body = {"data": [snapshot(t)], "status_code": 1000, "status_message": "Success", "timestamp": iso_s(t)}
        stamp = local_dt(t, site.tz).strftime("%Y-%m-%dT%H%M")
        (d / f"pull-{stamp}.json").write_text(json.dumps(body, separators=(",", ":")) + "\n", encoding="utf-8")
