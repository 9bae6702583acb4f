"""A tiny hand-written network: two chargers, three sessions, every source once.

It is the walking skeleton's demo data and a fixture for tests that need every file
format without the generator. ``chargeline generate`` makes realistic networks.
"""

from __future__ import annotations

import json
from pathlib import Path

TARIFF = {
    "country_code": "NL", "party_id": "CLN", "id": "T-AC", "currency": "EUR", "type": "REGULAR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1}]}],
    "last_updated": "2026-11-01T00:00:00Z",
}


def _session(cp: str, conn: int, tx: int, tag: str, start: str, stop: str, wh0: int, wh1: int):
    """The OCPP frames, backend row and CDR of one session, all consistent."""
    frames = [
        {"received_at": start, "charge_point_id": cp, "direction": "in",
         "frame": [2, f"s{tx}", "StartTransaction", {"connectorId": conn, "idTag": tag, "meterStart": wh0, "timestamp": start}]},
        {"received_at": start, "charge_point_id": cp, "direction": "out",
         "frame": [3, f"s{tx}", {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}]},
        {"received_at": stop, "charge_point_id": cp, "direction": "in",
         "frame": [2, f"e{tx}", "StopTransaction", {"transactionId": tx, "meterStop": wh1, "timestamp": stop}]},
        {"received_at": stop, "charge_point_id": cp, "direction": "out",
         "frame": [3, f"e{tx}", {"idTagInfo": {"status": "Accepted"}}]},
    ]
    kwh = (wh1 - wh0) / 1000
    backend = f"B-{tx},{cp},{conn},{tx},{tag},{start},{stop},{kwh:.3f},S-{tx},CDR-{tx},COMPLETED"
    cdr = {
        "country_code": "NL", "party_id": "CLN", "id": f"CDR-{tx}", "start_date_time": start,
        "end_date_time": stop, "session_id": f"S-{tx}", "currency": "EUR",
        "cdr_token": {"uid": tag, "type": "RFID", "contract_id": f"NL-CLN-{tag}"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": "LOC-1", "evse_uid": f"{cp}-{conn}", "evse_id": f"NL*CLN*E{cp[-1]}{conn}",
                         "connector_id": str(conn), "country": "NLD", "address": "Demo 1", "city": "Utrecht",
                         "coordinates": {"latitude": "52.09", "longitude": "5.12"},
                         "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
        "tariffs": [TARIFF],
        "charging_periods": [{"start_date_time": start, "dimensions": [{"type": "ENERGY", "volume": kwh}], "tariff_id": "T-AC"}],
        "total_cost": {"excl_vat": round(kwh * 0.30, 2), "incl_vat": round(kwh * 0.30 * 1.21, 2)},
        "total_energy": kwh, "total_time": 1.0, "last_updated": stop,
    }
    return frames, backend, cdr


def write_sample(landing: Path) -> Path:
    """Write the tiny network into ``landing`` (created) and return it."""
    for sub in ("registry", "ocpp", "backend", "cdrs", "tariffs", "ems"):
        (landing / sub).mkdir(parents=True, exist_ok=True)
    (landing / "registry/sites.csv").write_text(
        "site_id,site_type,time_zone,name,country\nSITE-1,public,Europe/Amsterdam,Demo plaza,NL\n")
    (landing / "registry/evses.csv").write_text(
        "charge_point_id,connector_id,site_id,location_id,evse_uid,evse_id,max_power_kw\n"
        "CP-1,1,SITE-1,LOC-1,CP-1-1,NL*CLN*E11,22\nCP-2,1,SITE-1,LOC-1,CP-2-1,NL*CLN*E21,22\n")
    sessions = [
        _session("CP-1", 1, 101, "TAG1", "2026-11-20T08:00:00Z", "2026-11-20T09:00:00Z", 1000, 12000),
        _session("CP-2", 1, 102, "TAG2", "2026-11-20T08:10:00Z", "2026-11-20T08:40:00Z", 500, 6500),
        _session("CP-1", 1, 103, "TAG3", "2026-11-20T10:00:00Z", "2026-11-20T10:30:00Z", 12000, 17000),
    ]
    with (landing / "ocpp/2026-11-20.jsonl").open("w") as fh:
        for frames, _, _ in sessions:
            for fr in frames:
                fh.write(json.dumps(fr) + "\n")
    (landing / "backend/sessions-2026-11-20.csv").write_text(
        "session_id,charge_point_id,connector_id,transaction_id,id_tag,started_at,stopped_at,energy_kwh,"
        "ocpi_session_id,cdr_id,status\n" + "\n".join(b for _, b, _ in sessions) + "\n")
    (landing / "cdrs/cdrs-2026-11-20.json").write_text(json.dumps([c for _, _, c in sessions], indent=1))
    (landing / "tariffs/T-AC.json").write_text(json.dumps(TARIFF, indent=1))
    ems = ["site_id,interval_start,interval_minutes,ev_energy_kwh"]
    ems += [f"SITE-1,2026-11-20T{h:02d}:{m:02d}:00Z,15,0" for h in range(8, 11) for m in (0, 15, 30, 45)]
    (landing / "ems/SITE-1-2026-11-20.csv").write_text("\n".join(ems) + "\n")
    return landing
