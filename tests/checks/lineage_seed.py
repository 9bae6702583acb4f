"""Hand-made lineage and staging tables for check and attribution tests.

Only the columns the energy / gap / meter / completeness / attribution rules read, typed as
the lineage and staging SQL types them; every ``add_*`` fills the rest with a plausible
clean session so that a test states only what it is about.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

DDL = {
    "lineage.sessions": """
        session_key varchar, anchor_kind varchar, site_id varchar, site_type varchar, charge_point_id varchar,
        connector_id integer, evse_uid varchar, ocpp_transaction_id varchar, ocpp_transaction_ref varchar,
        backend_session_id varchar, ocpi_session_id varchar, cdr_id varchar, cdr_ref varchar,
        ocpp_started_at timestamptz, ocpp_stopped_at timestamptz, ocpp_energy_kwh double,
        backend_started_at timestamptz, backend_stopped_at timestamptz, backend_energy_kwh double,
        cdr_started_at timestamptz, cdr_stopped_at timestamptz, cdr_energy_kwh double,
        backend_status varchar, backend_amount double, currency varchar,
        cdr_total_cost_excl_vat double,
        cdr_ids varchar[], n_live_cdrs bigint, cdr_is_credit boolean, cdr_is_credited boolean,
        has_ocpp boolean, has_backend boolean, has_cdr boolean""",
    # the missing-record rules price a session from here first (recon_session_prices)
    "recon.session_prices": """
        session_key varchar, price_in_force_excl_vat double, price_in_force_incl_vat double,
        in_force_version_id varchar""",
    "lineage.transactions": """
        charge_point_id varchar, connector_id integer, ocpp_version varchar, transaction_id varchar,
        transaction_ids varchar[], started_at timestamptz, stopped_at timestamptz,
        start_received_at timestamptz, stop_received_at timestamptz, meter_start_kwh double,
        meter_stop_kwh double, energy_kwh double, energy_as_labelled_kwh double, stop_reason varchar,
        has_start boolean, has_stop boolean, stop_from_offline_queue boolean, anomalies varchar[]""",
    "lineage.match_cdrs": """
        cdr_ref varchar, cdr_id varchar, start_at timestamptz, total_cost_excl_vat double,
        total_energy_kwh double, currency varchar, last_updated_at timestamptz, is_live boolean""",
    "staging.evses": """
        charge_point_id varchar, connector_id integer, site_id varchar, evse_uid varchar, max_power_kw double""",
    "staging.sites": "site_id varchar, site_type varchar",
    "staging.backend_sessions": "session_id varchar, energy_kwh double, source_file varchar",
    "staging.ocpp_meter_values": """
        charge_point_id varchar, connector_id integer, transaction_id varchar, sampled_at timestamptz,
        received_at timestamptz, measurand varchar, phase varchar, value double, origin varchar, context varchar""",
    "staging.location_evse_status": "evse_uid varchar, snapshot_at timestamptz, status varchar, connectors json",
    "staging.ocpp_status": "charge_point_id varchar, connector_id integer, status varchar, status_at timestamptz",
    "staging.ocpp_boots": "charge_point_id varchar, action varchar, requested_at timestamptz",
    "staging.ocpp_frames": "charge_point_id varchar, received_at timestamptz",
    "staging.ems_intervals": """
        site_id varchar, charge_point_id varchar, interval_start_at timestamptz, interval_end_at timestamptz,
        ev_energy_kwh double, grid_import_kwh double, pv_kwh double, battery_discharge_kwh double,
        battery_charge_kwh double, ev_setpoint_kw double""",
}


def create_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for table, cols in DDL.items():
        conn.execute(f"create or replace table {table} ({cols})")


def insert(conn: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    cols = list(row)
    conn.execute(
        f"insert into {table} ({', '.join(cols)}) values ({', '.join('$' + c for c in cols)})", row
    )


def add_site(conn, site_id: str = "S1", site_type: str = "public", cp: str = "CP1", connectors: int = 2,
             max_power_kw: float | None = 22.0) -> None:
    insert(conn, "staging.sites", {"site_id": site_id, "site_type": site_type})
    for c in range(1, connectors + 1):
        insert(conn, "staging.evses", {"charge_point_id": cp, "connector_id": c, "site_id": site_id,
                                        "evse_uid": f"{cp}-{c}", "max_power_kw": max_power_kw})


def add_session(conn, key: str, *, site_id: str = "S1", site_type: str = "public", cp: str = "CP1",
                connector: int = 1, tx: str | None = None, start: dt.datetime = T0, minutes: float = 60,
                energy: float = 10.0, ocpp: bool = True, backend: bool = True, cdr: bool = True,
                price: float = 0.40, tx_overrides: dict | None = None, backend_file: str = "backend/S1.csv",
                **overrides: Any) -> dict:
    """One session in lineage.sessions (+ its transaction and CDR when present)."""
    stop = start + dt.timedelta(minutes=minutes)
    tx = tx or key.upper()
    cdr_id = f"CDR-{key}"
    cdr_ref = f"NL:CLN:{cdr_id}"
    row: dict[str, Any] = {
        "session_key": key, "anchor_kind": "ocpp" if ocpp else ("backend" if backend else "cdr"),
        "site_id": site_id, "site_type": site_type, "charge_point_id": cp, "connector_id": connector,
        "evse_uid": f"{cp}-{connector}",
        "ocpp_transaction_id": tx if ocpp else None, "ocpp_transaction_ref": f"{cp}:{tx}" if ocpp else None,
        "backend_session_id": f"B-{key}" if backend else None,
        "cdr_id": cdr_id if cdr else None, "cdr_ref": cdr_ref if cdr else None,
        "ocpp_started_at": start if ocpp else None, "ocpp_stopped_at": stop if ocpp else None,
        "ocpp_energy_kwh": energy if ocpp else None,
        "backend_started_at": start if backend else None, "backend_stopped_at": stop if backend else None,
        "backend_energy_kwh": energy if backend else None, "backend_status": "completed" if backend else None,
        "backend_amount": round(energy * price, 2) if backend else None,
        "cdr_started_at": start if cdr else None, "cdr_stopped_at": stop if cdr else None,
        "cdr_energy_kwh": energy if cdr else None, "currency": "EUR",
        "cdr_total_cost_excl_vat": round(energy * price, 2) if cdr else None,
        "cdr_ids": [cdr_id] if cdr else [], "n_live_cdrs": 1 if cdr else 0,
        "cdr_is_credit": False, "cdr_is_credited": False,
        "has_ocpp": ocpp, "has_backend": backend, "has_cdr": cdr,
    }
    row.update(overrides)
    insert(conn, "lineage.sessions", row)
    if backend:
        insert(conn, "staging.backend_sessions", {"session_id": row["backend_session_id"],
                                                  "energy_kwh": row["backend_energy_kwh"], "source_file": backend_file})
    if ocpp:
        t = {
            "charge_point_id": cp, "connector_id": connector, "ocpp_version": "1.6", "transaction_id": tx,
            "transaction_ids": [tx], "started_at": start, "stopped_at": stop,
            "start_received_at": start, "stop_received_at": stop,
            "meter_start_kwh": 1000.0, "meter_stop_kwh": 1000.0 + energy, "energy_kwh": energy,
            "energy_as_labelled_kwh": energy, "stop_reason": "EVDisconnected", "has_start": True,
            "has_stop": True, "stop_from_offline_queue": False, "anomalies": [],
        }
        t.update(tx_overrides or {})
        insert(conn, "lineage.transactions", t)
    if cdr:
        add_cdr(conn, cdr_id, start=start, energy=row["cdr_energy_kwh"], total=row["cdr_total_cost_excl_vat"])
    return row


def add_cdr(conn, cdr_id: str, *, start: dt.datetime = T0, energy: float = 10.0, total: float = 4.0,
            live: bool = True, updated: dt.datetime | None = None) -> None:
    insert(conn, "lineage.match_cdrs", {
        "cdr_ref": f"NL:CLN:{cdr_id}", "cdr_id": cdr_id, "start_at": start, "total_cost_excl_vat": total,
        "total_energy_kwh": energy, "currency": "EUR", "last_updated_at": updated or start + dt.timedelta(hours=2),
        "is_live": live,
    })


def add_samples(conn, cp: str, tx: str, points: list[tuple[dt.datetime, float]], received_offset_s: float = 1.0,
                connector: int = 1) -> None:
    for at, kwh in points:
        insert(conn, "staging.ocpp_meter_values", {
            "charge_point_id": cp, "connector_id": connector, "transaction_id": tx, "sampled_at": at,
            "received_at": at + dt.timedelta(seconds=received_offset_s),
            "measurand": "Energy.Active.Import.Register", "phase": None, "value": kwh, "origin": "MeterValues",
        })


def add_ems(conn, site_id: str, start: dt.datetime, ev_kwh: float, minutes: int = 15, **extra: float) -> None:
    insert(conn, "staging.ems_intervals", {
        "site_id": site_id, "charge_point_id": None, "interval_start_at": start,
        "interval_end_at": start + dt.timedelta(minutes=minutes), "ev_energy_kwh": ev_kwh, **extra,
    })


def findings(conn, check: str) -> list[dict]:
    cur = conn.execute(
        'select * from recon.flags where "check" = $c order by session_key nulls first, interval_start, cdr_id',
        {"c": check},
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
