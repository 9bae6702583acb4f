"""CSMS billing-backend session exports: CSV, Parquet, and one partner's own headers.

With noise on, the exports carry what real backends put into them (``pipeline.generate.
noise``): times cut to seconds or minutes, energy from the billing meter, rounded; an
``exported_at`` column; and some daily files re-sent days later with corrected rows
(``<day>_resent_<exported_at>``: the same name plus a suffix, so it also sorts after it).
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.generate.clock import iso_s, local_iso
from pipeline.generate.noise import RESEND_LAG_DAYS, RESEND_ROW_P, SiteNoise

COLUMNS = ["session_id", "charge_point_id", "connector_id", "transaction_id", "id_tag", "started_at",
           "stopped_at", "energy_kwh", "ocpi_session_id", "cdr_id", "status", "amount", "currency"]
# The depot operator's export (folder ``backend/partner_depotnet/``): its own header
# names, local wall-clock times without offset, energy in Wh. Map with configuration.
PARTNER_HEADERS = {
    "SessionRef": "session_id", "StationID": "charge_point_id", "Port": "connector_id",
    "TxnNo": "transaction_id", "CardUID": "id_tag", "StartLocal": "started_at",
    "EndLocal": "stopped_at", "EnergyWh": "energy_wh", "RoamingSessionID": "ocpi_session_id",
    "CdrRef": "cdr_id", "State": "status", "AmountExVat": "amount", "Cur": "currency",
}


def backend_row(s, started_at: float, amount: float | None, cdr_id: str, stopped_at: float | None = None,
                energy_wh: float | None = None) -> dict:
    """The backend's view of one session (times on the CSMS clock; noisy values if given)."""
    return {
        "session_id": s.backend_id, "charge_point_id": s.evse.charge_point_id,
        "connector_id": s.evse.connector_id, "transaction_id": s.tx_id, "id_tag": s.token[0],
        "started_at": started_at,
        "stopped_at": (s.stop_at if stopped_at is None else stopped_at) if s.completed else None,
        "energy_wh": (s.energy_wh if energy_wh is None else energy_wh) if s.completed else None,
        "ocpi_session_id": s.ocpi_session_id, "cdr_id": cdr_id,
        "status": "COMPLETED" if s.completed else "ACTIVE",
        "amount": amount, "currency": "EUR" if amount is not None else "",
    }


def _fmt_kwh(wh: float, res_kwh: float) -> str:
    decimals = max(3, round(-math.log10(res_kwh))) if res_kwh < 0.001 else round(-math.log10(res_kwh))
    return f"{wh / 1000:.{decimals}f}"


def write_backend(rows_by_day: dict[str, list[dict]], site_id: str, mode: str, tz: ZoneInfo,
                  landing: Path, malformed: dict, noise: SiteNoise | None = None,
                  day_ends: dict[str, float] | None = None) -> None:
    """Write one file per local day; ``mode`` is ``csv``, ``parquet`` or ``partner``.

    A row may carry ``prelim`` (energy_wh, amount): what the first export said before the
    backend's correction; such rows are exported again in the day's re-sent file.
    """
    rng = random.Random(f"backend-files:{site_id}")
    noise = noise or SiteNoise()
    base = landing / "backend" / ("partner_depotnet" if mode == "partner" else site_id)
    base.mkdir(parents=True, exist_ok=True)
    for day, rows in sorted(rows_by_day.items()):
        exported = None
        if noise.on:
            exported = float(int((day_ends or {}).get(day, 0.0) + rng.uniform(3600, 4 * 3600)))
        resend = [r for r in rows if r.get("prelim")]
        first = [dict(r, **r["prelim"]) if r.get("prelim") else r for r in rows]
        _write_file(first, base, day, site_id, mode, tz, malformed, noise, exported, rng, landing)
        if resend:
            later = exported + rng.randint(*RESEND_LAG_DAYS) * 86400 + rng.uniform(0, 3600)
            _write_file(resend, base, day, site_id, mode, tz, {}, noise, float(int(later)), rng, landing,
                        suffix=f"_resent_{iso_s(later).replace('-', '').replace(':', '')}")


def mark_corrections(rows: list[dict], rng: random.Random, noise: SiteNoise, p_file: float) -> None:
    """Give some of a day's completed rows a preliminary first export (noise only)."""
    if not noise.on or rng.random() >= p_file:
        return
    done = [r for r in rows if r["energy_wh"] is not None]
    if not done:
        return
    picked = [r for r in done if rng.random() < RESEND_ROW_P] or [rng.choice(done)]
    for r in picked:
        r["prelim"] = {"energy_wh": r["prelim_energy_wh"], "amount": None,
                       "currency": ""}


def _write_file(rows: list[dict], base: Path, day: str, site_id: str, mode: str, tz: ZoneInfo,
                malformed: dict, noise: SiteNoise, exported: float | None, rng: random.Random,
                landing: Path, suffix: str = "") -> None:
    res = noise.energy_res_kwh if noise.on else 0.001
    if mode == "parquet":
        cols = {
            "session_id": [r["session_id"] for r in rows],
            "charge_point_id": [r["charge_point_id"] for r in rows],
            "connector_id": pa.array([r["connector_id"] for r in rows], pa.int32()),
            "transaction_id": [r["transaction_id"] for r in rows],
            "id_tag": [r["id_tag"] for r in rows],
            "started_at": pa.array([int(r["started_at"] * 1e6) for r in rows], pa.timestamp("us", "UTC")),
            "stopped_at": pa.array([int(r["stopped_at"] * 1e6) if r["stopped_at"] else None for r in rows],
                                   pa.timestamp("us", "UTC")),
            "energy_kwh": pa.array([float(_fmt_kwh(r["energy_wh"], res)) if r["energy_wh"] is not None else None
                                    for r in rows], pa.float64()),
            "ocpi_session_id": [r["ocpi_session_id"] for r in rows],
            "cdr_id": [r["cdr_id"] or None for r in rows],
            "status": [r["status"] for r in rows],
            "amount": pa.array([r["amount"] for r in rows], pa.float64()),
            "currency": [r["currency"] or None for r in rows],
        }
        if exported is not None:
            cols["exported_at"] = pa.array([int(exported * 1e6)] * len(rows), pa.timestamp("us", "UTC"))
        pq.write_table(pa.table(cols), base / f"{day}{suffix}.parquet", compression="zstd")
        return
    name = f"{site_id}_{day}{suffix}.csv" if mode == "partner" else f"{day}{suffix}.csv"
    out = []
    for r in rows:
        if mode == "partner":
            wh = r["energy_wh"]
            if wh is not None:
                wh = int(math.floor(wh / noise.partner_res_wh + 0.5) * noise.partner_res_wh)
            row = [r["session_id"], r["charge_point_id"], r["connector_id"], r["transaction_id"],
                   r["id_tag"], local_iso(r["started_at"], tz, False),
                   local_iso(r["stopped_at"], tz, False) if r["stopped_at"] else "",
                   wh if wh is not None else "", r["ocpi_session_id"],
                   r["cdr_id"], r["status"], "" if r["amount"] is None else f"{r['amount']:.2f}",
                   r["currency"]]
            if exported is not None:
                row.append(local_iso(exported, tz, False))
        else:
            row = [r["session_id"], r["charge_point_id"], r["connector_id"], r["transaction_id"],
                   r["id_tag"], iso_s(r["started_at"]),
                   iso_s(r["stopped_at"]) if r["stopped_at"] else "",
                   "" if r["energy_wh"] is None else _fmt_kwh(r["energy_wh"], res),
                   r["ocpi_session_id"], r["cdr_id"], r["status"],
                   "" if r["amount"] is None else f"{r['amount']:.2f}", r["currency"]]
            if exported is not None:
                row.append(iso_s(exported))
        out.append(row)
    header = list(PARTNER_HEADERS) if mode == "partner" else list(COLUMNS)
    if exported is not None:
        header.append("ExportedAt" if mode == "partner" else "exported_at")
    if mode == "csv" and malformed.get("rate") and rng.random() < malformed["rate"]:
        bad = ["BROKEN-" + rows[0]["session_id"], rows[0]["charge_point_id"], "one", "", "",
               "yesterday-ish", "", "12,5 kWh", "", "", "COMPLETED", "EUR 3", "EUR"]
        if exported is not None:
            bad.append(iso_s(exported))
        out.insert(rng.randrange(len(out) + 1), bad)
        malformed.setdefault("files", {})[f"backend/{site_id}/{name}"] = 1
    with open(base / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(out)
