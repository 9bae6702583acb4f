"""Sites, chargers, EVSEs, tariffs and tokens of a synthetic charging network.

Everything here is small (one object per EVSE at most) and built in the parent
process; the heavy per-session work happens per site in ``pipeline.generate.site``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.generate.clock import STYLES, iso_s

CPO_COUNTRY, CPO_PARTY = "NL", "CLN"

# (alpha-2, alpha-3, IANA zone, standard VAT %, city). Eurozone only: one currency
# keeps money comparable across the demo; zones span UTC+0 to UTC+2.
COUNTRIES = (
    ("NL", "NLD", "Europe/Amsterdam", 21.0, "Utrecht"),
    ("DE", "DEU", "Europe/Berlin", 19.0, "Köln"),
    ("BE", "BEL", "Europe/Brussels", 21.0, "Gent"),
    ("FR", "FRA", "Europe/Paris", 20.0, "Lille"),
    ("AT", "AUT", "Europe/Vienna", 20.0, "Linz"),
    ("FI", "FIN", "Europe/Helsinki", 25.5, "Tampere"),
    ("IE", "IRL", "Europe/Dublin", 23.0, "Cork"),
)
SITE_TYPES = ("public", "fleet", "microgrid")
EMSPS = (("NL", "EMS"), ("DE", "CHG"), ("BE", "PLG"))
FLEET_EMSP = ("NL", "FLT")


@dataclass
class Evse:
    """One OCPP connector (1.6) or EVSE (2.0.1) and its OCPI EVSE."""

    charge_point_id: str
    connector_id: int
    evse_uid: str
    evse_id: str
    max_power_kw: float
    power_type: str  # OCPI: AC_3_PHASE or DC
    registry_power_known: bool = True


@dataclass
class Charger:
    """A charge point and the quirks of how its traffic reaches the landing folder."""

    charge_point_id: str
    ocpp_version: str  # "1.6" or "2.0.1"
    kind: str  # "AC" or "DC"
    vendor: str
    model: str
    evses: list[Evse] = field(default_factory=list)
    file_format: str = "jsonl"  # jsonl | log
    frame_as_string: bool = False
    tag_version: bool = False
    ts_style: str = "ms_z"
    register_mode: str = "cumulative"  # cumulative | per_transaction
    register_wh: int = 0
    stop_with_txdata: bool = True
    boot_1970: bool = False
    reboot_midday: bool = False


@dataclass
class Site:
    """A site of one contract type, in one country and IANA zone."""

    site_no: int
    site_id: str
    site_type: str
    country: str
    country3: str
    time_zone: str
    vat: float
    city: str
    name: str
    location_id: str
    chargers: list[Charger] = field(default_factory=list)

    @property
    def evses(self) -> list[Evse]:
        return [e for c in self.chargers for e in c.evses]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def published(self) -> bool:
        """Fleet depots are private: not published over OCPI Locations."""
        return self.site_type != "fleet"


def site_sizes(n_evses: int, rng: random.Random) -> list[int]:
    """Split ``n_evses`` into sites of roughly 10-20 EVSEs (at least three sites when possible)."""
    n_sites = max(min(3, n_evses // 4), round(n_evses / 15), 1)
    weights = [rng.uniform(0.7, 1.3) for _ in range(n_sites)]
    total = sum(weights)
    sizes = [max(1, int(n_evses * w / total)) for w in weights]
    i = 0
    while sum(sizes) < n_evses:
        sizes[i % n_sites] += 1
        i += 1
    while sum(sizes) > n_evses:
        j = max(range(n_sites), key=lambda k: sizes[k])
        sizes[j] -= 1
    return sizes


def _charger_plan(site_type: str, n: int, rng: random.Random) -> list[tuple[str, float, int]]:
    """(kind, kW per EVSE, EVSEs on the charger) until ``n`` EVSEs are placed."""
    plan: list[tuple[str, float, int]] = []
    left = n
    while left > 0:
        if site_type == "fleet":
            kind, kw, k = "AC", rng.choice((7.4, 11.0, 11.0)), 2
        elif site_type == "public":
            kind, kw, k = ("DC", rng.choice((150.0, 300.0)), 2) if rng.random() < 0.35 else ("AC", 11.0, 2)
        else:
            kind, kw, k = ("DC", 50.0, 1) if rng.random() < 0.25 else ("AC", 22.0, 2)
        k = min(k, left)
        plan.append((kind, kw, k))
        left -= k
    return plan


def build_network(n_evses: int, seed: int) -> list[Site]:
    """Deterministic sites, chargers and EVSEs for ``n_evses`` EVSEs."""
    rng = random.Random(f"network:{seed}")
    sites: list[Site] = []
    for i, size in enumerate(site_sizes(n_evses, rng)):
        no = i + 1
        cc, cc3, tz, vat, city = COUNTRIES[0] if i == 0 else rng.choice(COUNTRIES)
        site_type = SITE_TYPES[i % 3]
        label = {"public": "Plaza", "fleet": "Depot", "microgrid": "Solar Hub"}[site_type]
        site = Site(
            site_no=no, site_id=f"SITE-{no:05d}", site_type=site_type, country=cc,
            country3=cc3, time_zone=tz, vat=vat, city=city, name=f"{city} {label} {no}",
            location_id=f"LOC-{no:05d}",
        )
        for k, (kind, kw, n_conn) in enumerate(_charger_plan(site_type, size, rng), start=1):
            cp_id = f"CP-{no:05d}-{k:02d}"
            v201 = rng.random() < 0.25
            vendor, model = rng.choice(
                (("Alfen", "Eve Double"), ("ABB", "Terra AC"), ("Kempower", "S-Series"))
                if kind == "AC" else (("ABB", "Terra 184"), ("Kempower", "C-Series"), ("Alpitronic", "HYC300"))
            )
            ch = Charger(
                charge_point_id=cp_id, ocpp_version="2.0.1" if v201 else "1.6", kind=kind,
                vendor=vendor, model=model,
            )
            if not v201:
                # Some CSMS front-ends only kept their ocpp library logs for 1.6 chargers.
                ch.file_format = "log" if rng.random() < 0.12 else "jsonl"
                ch.frame_as_string = ch.file_format == "jsonl" and rng.random() < 0.15
                ch.tag_version = rng.random() < 0.5
                ch.stop_with_txdata = rng.random() < 0.7
            else:
                ch.tag_version = True
            ch.ts_style = rng.choice(STYLES)
            ch.register_mode = "per_transaction" if rng.random() < 0.2 else "cumulative"
            ch.register_wh = 0 if ch.register_mode == "per_transaction" else rng.randrange(50_000, 40_000_000)
            ch.boot_1970 = rng.random() < 0.08
            ch.reboot_midday = rng.random() < 0.05
            for c in range(1, n_conn + 1):
                ch.evses.append(Evse(
                    charge_point_id=cp_id, connector_id=c, evse_uid=f"{cp_id}-{c}",
                    evse_id=f"{cc}*{CPO_PARTY}*E{no:05d}{k:02d}{c}", max_power_kw=kw,
                    power_type="DC" if kind == "DC" else "AC_3_PHASE",
                    registry_power_known=rng.random() > 0.03,
                ))
            site.chargers.append(ch)
        sites.append(site)
    return sites


def write_registry(sites: list[Site], landing: Path) -> None:
    """``registry/sites.csv`` and ``registry/evses.csv`` (contract §2)."""
    reg = landing / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    with open(reg / "sites.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["site_id", "site_type", "time_zone", "name", "country"])
        for s in sites:
            w.writerow([s.site_id, s.site_type, s.time_zone, s.name, s.country])
    with open(reg / "evses.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["charge_point_id", "connector_id", "site_id", "location_id", "evse_uid",
                    "evse_id", "max_power_kw"])
        for s in sites:
            for e in s.evses:
                w.writerow([e.charge_point_id, e.connector_id, s.site_id, s.location_id,
                            e.evse_uid, e.evse_id, e.max_power_kw if e.registry_power_known else ""])


# --- tariffs -----------------------------------------------------------------

PRODUCTS = {"public": ("AC", "DC"), "fleet": ("FLEET",), "microgrid": ("MG", "DC")}


def tariff_product(site: Site, charger: Charger) -> str:
    """Which tariff product an EVSE is sold under."""
    if site.site_type == "fleet":
        return "FLEET"
    if charger.kind == "DC":
        return "DC"
    return "MG" if site.site_type == "microgrid" else "AC"


def _pc(kind: str, price: float, vat: float, step: int) -> dict:
    return {"type": kind, "price": round(price, 4), "vat": vat, "step_size": step}


def tariff_elements(product: str, vat: float, factor: float) -> list[dict]:
    """Price elements of one product; ``factor`` scales a version's prices."""
    p = lambda x: round(x * factor, 2)  # noqa: E731
    if product == "AC":
        return [
            {"price_components": [_pc("ENERGY", p(0.39), vat, 1)]},
            {"price_components": [_pc("PARKING_TIME", p(1.20), vat, 300)],
             "restrictions": {"start_time": "08:00", "end_time": "20:00",
                              "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"]}},
        ]
    if product == "DC":
        return [
            {"price_components": [_pc("FLAT", p(0.35), vat, 1)]},
            {"price_components": [_pc("ENERGY", p(0.69), vat, 1)],
             "restrictions": {"start_time": "17:00", "end_time": "21:00"}},
            {"price_components": [_pc("ENERGY", p(0.59), vat, 1), _pc("PARKING_TIME", p(6.00), vat, 60)]},
        ]
    if product == "FLEET":
        return [
            {"price_components": [_pc("ENERGY", p(0.19), vat, 1)],
             "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
            {"price_components": [_pc("ENERGY", p(0.24), vat, 1)]},
        ]
    return [  # MG: cheap solar hours, plus a charging-time fee to free the bays
        {"price_components": [_pc("ENERGY", p(0.29), vat, 1)],
         "restrictions": {"start_time": "10:00", "end_time": "16:00"}},
        {"price_components": [_pc("ENERGY", p(0.42), vat, 1), _pc("TIME", p(0.60), vat, 60)]},
    ]


@dataclass
class TariffVersion:
    """One OCPI tariff version and the instant it comes into force."""

    tariff_id: str
    version: int
    valid_from: float
    obj: dict


def tariff_change_at(start: dt.date, days: int, tz: ZoneInfo) -> float:
    """The known mid-period instant when version 2 comes into force (local noon)."""
    d = start + dt.timedelta(days=days // 2)
    return dt.datetime(d.year, d.month, d.day, 12, tzinfo=tz).timestamp()


def build_tariffs(sites: list[Site], start: dt.date, days: int) -> dict[str, list[TariffVersion]]:
    """Two versions per (country, product) in use; version 2 starts mid-period."""
    out: dict[str, list[TariffVersion]] = {}
    for s in sites:
        for ch in s.chargers:
            tid = f"{s.country}-{tariff_product(s, ch)}"
            if tid in out:
                continue
            product = tariff_product(s, ch)
            t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()
            change = tariff_change_at(start, days, s.tz)
            versions = []
            for v, (factor, last_updated, valid_from) in enumerate(
                ((1.0, t0 - 40 * 86400, t0 - 40 * 86400), (1.08, change - 7 * 86400, change)), start=1
            ):
                obj = {
                    "country_code": CPO_COUNTRY, "party_id": CPO_PARTY, "id": tid, "currency": "EUR",
                    "type": "REGULAR",
                    "tariff_alt_text": [{"language": "en", "text": f"{product} tariff v{v}"}],
                    "elements": tariff_elements(product, s.vat, factor),
                    "last_updated": iso_s(last_updated),
                }
                if v > 1:
                    obj["start_date_time"] = iso_s(valid_from)
                versions.append(TariffVersion(tid, v, valid_from, obj))
            out[tid] = versions
    return out


def write_tariffs(tariffs: dict[str, list[TariffVersion]], landing: Path) -> int:
    """One file per version; every third as an OCPI envelope, the rest bare objects."""
    d = landing / "tariffs"
    d.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, tid in enumerate(sorted(tariffs)):
        for tv in tariffs[tid]:
            body = tv.obj
            if i % 3 == 2:
                body = {"data": [tv.obj], "status_code": 1000, "status_message": "Success",
                        "timestamp": tv.obj["last_updated"]}
            (d / f"{tid}_v{tv.version}.json").write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
            n += 1
    return n


def tariff_in_force(versions: list[TariffVersion], t: float) -> TariffVersion:
    """The version in force at ``t`` (OCPI: the tariff valid at session start)."""
    best = versions[0]
    for tv in versions:
        if tv.valid_from <= t:
            best = tv
    return best


# --- tokens ------------------------------------------------------------------

@dataclass
class TokenPool:
    """Valid tokens to draw from, and the revoked ones kept for planting."""

    public: list[tuple[str, str, str, str]]  # (uid, country, party, contract_id)
    fleet: list[tuple[str, str, str, str]]
    revoked: list[tuple[str, str, str, str]]


def build_tokens(n_evses: int, seed: int) -> TokenPool:
    """A token population sized to the network; 3 % of it revoked before the period."""
    rng = random.Random(f"tokens:{seed}")
    n = max(60, int(n_evses * 1.5))
    pub, fleet, revoked = [], [], []
    for i in range(n):
        is_fleet = i % 4 == 0
        cc, party = FLEET_EMSP if is_fleet else EMSPS[i % len(EMSPS)]
        uid = f"{rng.getrandbits(56):014X}"
        tok = (uid, cc, party, f"{cc}-{party}-C{i:08d}-{rng.randrange(10)}")
        if rng.random() < 0.03:
            revoked.append(tok)
        elif is_fleet:
            fleet.append(tok)
        else:
            pub.append(tok)
    if not revoked:
        revoked.append(pub.pop())
    return TokenPool(pub, fleet, revoked)


def write_tokens(pool: TokenPool, landing: Path, start: dt.date) -> None:
    """One OCPI Token snapshot (envelope) taken just before the period."""
    d = landing / "tokens"
    d.mkdir(parents=True, exist_ok=True)
    t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()
    data = []
    for group, valid in ((pool.public, True), (pool.fleet, True), (pool.revoked, False)):
        for j, (uid, cc, party, contract) in enumerate(group):
            data.append({
                "country_code": cc, "party_id": party, "uid": uid, "type": "RFID",
                "contract_id": contract, "issuer": f"{party} Mobility", "valid": valid,
                "whitelist": "ALLOWED" if valid else "NEVER",
                "last_updated": iso_s(t0 - 86400 * (3 + j % 200)),
            })
    data.sort(key=lambda r: (r["country_code"], r["party_id"], r["uid"]))
    body = {"data": data, "status_code": 1000, "status_message": "Success", "timestamp": iso_s(t0 - 3600)}
    (d / f"tokens_{start.isoformat()}.json").write_text(
        json.dumps(body, separators=(",", ":")) + "\n", encoding="utf-8")


def expected_sessions_per_evse_day(site_type: str, kind: str) -> float:
    """Rough mean, used to turn a per-session rate into a per-EVSE probability."""
    if kind == "DC":
        return 4.5
    return {"public": 2.0, "fleet": 1.3, "microgrid": 1.6}[site_type]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b) if b else 0

