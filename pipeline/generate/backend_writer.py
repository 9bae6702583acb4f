"""CSMS billing-backend session exports: CSV, Parquet, and one partner's own headers."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.generate.clock import iso_s, local_iso

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


def backend_row(s, started_at: float, amount: float | None, cdr_id: str) -> dict:
    """The backend's view of one session (times on the CSMS clock)."""
    return {
        "session_id": s.backend_id, "charge_point_id": s.evse.charge_point_id,
        "connector_id": s.evse.connector_id, "transaction_id": s.tx_id, "id_tag": s.token[0],
        "started_at": started_at, "stopped_at": s.stop_at if s.completed else None,
        "energy_wh": s.energy_wh if s.completed else None,
        "ocpi_session_id": s.ocpi_session_id, "cdr_id": cdr_id,
        "status": "COMPLETED" if s.completed else "ACTIVE",
        "amount": amount, "currency": "EUR" if amount is not None else "",
    }


def write_backend(rows_by_day: dict[str, list[dict]], site_id: str, mode: str, tz: ZoneInfo,
                  landing: Path, malformed: dict) -> None:
    """Write one file per local day; ``mode`` is ``csv``, ``parquet`` or ``partner``."""
    rng = random.Random(f"backend-files:{site_id}")
    base = landing / "backend" / ("partner_depotnet" if mode == "partner" else site_id)
    base.mkdir(parents=True, exist_ok=True)
    for day, rows in sorted(rows_by_day.items()):
        if mode == "parquet":
            table = pa.table({
                "session_id": [r["session_id"] for r in rows],
                "charge_point_id": [r["charge_point_id"] for r in rows],
                "connector_id": pa.array([r["connector_id"] for r in rows], pa.int32()),
                "transaction_id": [r["transaction_id"] for r in rows],
                "id_tag": [r["id_tag"] for r in rows],
                "started_at": pa.array([int(r["started_at"] * 1e6) for r in rows], pa.timestamp("us", "UTC")),
                "stopped_at": pa.array([int(r["stopped_at"] * 1e6) if r["stopped_at"] else None for r in rows],
                                       pa.timestamp("us", "UTC")),
                "energy_kwh": pa.array([r["energy_wh"] / 1000 if r["energy_wh"] is not None else None
                                        for r in rows], pa.float64()),
                "ocpi_session_id": [r["ocpi_session_id"] for r in rows],
                "cdr_id": [r["cdr_id"] or None for r in rows],
                "status": [r["status"] for r in rows],
                "amount": pa.array([r["amount"] for r in rows], pa.float64()),
                "currency": [r["currency"] or None for r in rows],
            })
            pq.write_table(table, base / f"{day}.parquet", compression="zstd")
            continue
        name = f"{site_id}_{day}.csv" if mode == "partner" else f"{day}.csv"
        out = []
        for r in rows:
            if mode == "partner":
                out.append([r["session_id"], r["charge_point_id"], r["connector_id"], r["transaction_id"],
                            r["id_tag"], local_iso(r["started_at"], tz, False),
                            local_iso(r["stopped_at"], tz, False) if r["stopped_at"] else "",
                            r["energy_wh"] if r["energy_wh"] is not None else "", r["ocpi_session_id"],
                            r["cdr_id"], r["status"], "" if r["amount"] is None else f"{r['amount']:.2f}",
                            r["currency"]])
            else:
                out.append([r["session_id"], r["charge_point_id"], r["connector_id"], r["transaction_id"],
                            r["id_tag"], iso_s(r["started_at"]),
                            iso_s(r["stopped_at"]) if r["stopped_at"] else "",
                            "" if r["energy_wh"] is None else f"{r['energy_wh'] / 1000:.3f}",
                            r["ocpi_session_id"], r["cdr_id"], r["status"],
                            "" if r["amount"] is None else f"{r['amount']:.2f}", r["currency"]])
        if mode == "csv" and malformed.get("rate") and rng.random() < malformed["rate"]:
            bad = [["BROKEN-" + rows[0]["session_id"], rows[0]["charge_point_id"], "one", "", "",
                    "yesterday-ish", "", "12,5 kWh", "", "", "COMPLETED", "EUR 3", "EUR"]]
            out.insert(rng.randrange(len(out) + 1), bad[0])
            malformed.setdefault("files", {})[f"backend/{site_id}/{name}"] = 1
        with open(base / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(list(PARTNER_HEADERS) if mode == "partner" else COLUMNS)
            w.writerows(out)
