"""One session as a timeline across every source (``chargeline trace KEY``).

Belongs here: resolving a user's key to one ``lineage.sessions`` row and collecting what
each source recorded around it into time-ordered events, rendered for a terminal. Every
source table is optional: a table that does not exist (yet) is named as skipped, never
an error. Token UIDs are not printed, only whether a token was present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from pipeline.sql import table_exists

#: Frames this far before the first and after the last recorded time still belong to the
#: session's story (Authorize before start, late StopTransaction answers).
MARGIN = timedelta(minutes=10)
#: Beyond this many OCPP frames the timeline keeps the first and last ones.
MAX_FRAMES = 200


@dataclass(frozen=True)
class Event:
    at: datetime | None
    source: str
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat() if self.at else None, "source": self.source, "what": self.what}


@dataclass(frozen=True)
class Trace:
    """A session's header (its ``lineage.sessions`` row) and its events."""

    key: str
    session: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "session": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.session.items()},
            "events": [e.to_dict() for e in self.events],
            "skipped": list(self.skipped),
        }

    def render(self) -> str:
        s = self.session
        lines = [
            f"session {s['session_key']}  (anchor {s.get('anchor')})",
            f"  site {s.get('site_id') or '-'} ({s.get('site_type') or '-'})  charger {s.get('charge_point_id') or '-'}"
            f" connector {s.get('connector_id') if s.get('connector_id') is not None else '-'}"
            f"  evse {s.get('evse_uid') or '-'}",
            f"  ocpp tx {s.get('ocpp_transaction_id') or '-'}  backend {s.get('backend_session_id') or '-'}"
            f" [{_link(s, 'backend')}]  cdr {s.get('cdr_id') or '-'} [{_link(s, 'cdr')}]"
            f"  ocpi session {s.get('ocpi_session_id') or '-'}",
        ]
        if (s.get("cdr_ids") and len(s["cdr_ids"]) > 1) or s.get("credit_cdr_ids"):
            lines.append(f"  cdrs {', '.join(s.get('cdr_ids') or [])}  live {s.get('n_live_cdrs')}"
                         f"  credits {', '.join(s.get('credit_cdr_ids') or []) or '-'}")
        lines.append(
            f"  energy kWh: ocpp {_num(s.get('ocpp_energy_kwh'))}  backend {_num(s.get('backend_energy_kwh'))}"
            f"  cdr {_num(s.get('cdr_energy_kwh'))}   cost excl. VAT: cdr {_num(s.get('cdr_total_cost_excl_vat'))}"
            f"  recomputed {_num(s.get('recomputed_cost_excl_vat'))} {s.get('currency') or ''}".rstrip()
        )
        lines.append("")
        width = max((len(e.source) for e in self.events), default=6)
        for e in self.events:
            lines.append(f"{_ts(e.at)}  {e.source:<{width}}  {e.what}")
        if not self.events:
            lines.append("(no events)")
        if self.skipped:
            lines.append("")
            lines.append("skipped: " + "; ".join(self.skipped))
        return "\n".join(lines)


def _link(s: dict[str, Any], which: str) -> str:
    rule = s.get(f"{which}_link_rule")
    if not rule:
        return "unlinked"
    return f"{rule} {s.get(f'{which}_link_confidence'):.2f}"


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _ts(at: datetime | None) -> str:
    if at is None:
        return " " * 19 + "?" + " " * 4
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def find_session(conn: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any] | None:
    """The ``lineage.sessions`` row a key names, or None.

    Parameters
    ----------
    key : str
        A session key, a CDR id (also one of a session's duplicate or credit CDRs, or
        ``country:party:id``), a backend session id, or ``charge_point_id:transaction_id``.
    """
    rows = _rows(conn, """
        select *,
            case
                when session_key = $1 then 0
                when cdr_id = $1 or cdr_ref = $1 then 1
                when backend_session_id = $1 then 2
                when ocpp_transaction_ref = $1 then 3
                when charge_point_id || ':' || ocpp_transaction_id = $1 then 3
                else 4
            end as _rank
        from lineage.sessions
        where session_key = $1 or cdr_id = $1 or cdr_ref = $1 or backend_session_id = $1
            or ocpp_transaction_ref = $1 or charge_point_id || ':' || ocpp_transaction_id = $1
            or list_contains(cdr_ids, $1) or list_contains(credit_cdr_ids, $1)
        order by _rank, session_key
        limit 1
    """, [key])
    if not rows:
        return None
    row = rows[0]
    row.pop("_rank")
    # the cost recomputed under the tariff in force is recon_session_prices' own table
    row["recomputed_cost_excl_vat"] = None
    if table_exists(conn, "recon.session_prices"):
        price = conn.execute("select price_in_force_excl_vat from recon.session_prices where session_key = ?",
                             [row["session_key"]]).fetchall()
        row["recomputed_cost_excl_vat"] = price[0][0] if price else None
    return row


def _frame_text(action: str | None, msg_type: int, direction: str, payload: Any) -> str:
    try:
        body = json.loads(payload) if isinstance(payload, str) else (payload or {})
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    arrow = "charger->CSMS" if direction == "in" else "CSMS->charger"
    if msg_type == 2:
        shown = {k: v for k, v in body.items() if k not in {"idTag", "idToken", "meterValue", "transactionData"}}
        if "idTag" in body or "idToken" in body:
            shown["token"] = "present"
        if body.get("meterValue") or body.get("transactionData"):
            shown["samples"] = len(body.get("meterValue") or body.get("transactionData") or [])
        return f"{action} {arrow} {json.dumps(shown, default=str, separators=(',', ':'))}"
    if msg_type == 3:
        shown = {k: v for k, v in body.items() if k not in {"idTagInfo", "idTokenInfo"}}
        status = (body.get("idTagInfo") or body.get("idTokenInfo") or {}).get("status")
        if status:
            shown["auth"] = status
        return f"result {arrow} {json.dumps(shown, default=str, separators=(',', ':'))}"
    return f"error {arrow} {json.dumps(body, default=str, separators=(',', ':'))[:200]}"


def _ocpp_events(conn, s, lo, hi) -> list[Event]:
    tx = s.get("ocpp_transaction_id")
    conn_id = s.get("connector_id")
    rows = _rows(conn, """
        -- $1 charger, $2..$3 time range, $4 transaction id, $5 connector
        with calls as (
            select *
            from staging.ocpp_frames
            where charge_point_id = $1 and received_at between $2 and $3
        ),
        mine as (
            select msg_id
            from calls
            where msg_type = 2 and (
                coalesce(payload->>'transactionId', payload->'transactionInfo'->>'transactionId') = $4
                or try_cast(coalesce(payload->>'connectorId', payload->'evse'->>'id') as integer) = $5
                or action in ('Authorize', 'BootNotification')
            )
        )
        select received_at, direction, msg_type, msg_id, action, cast(payload as varchar) as payload
        from calls
        where msg_id in (select msg_id from mine)
        order by received_at, msg_type
    """, [s["charge_point_id"], lo, hi, tx, conn_id])
    events = [Event(r["received_at"], "ocpp", _frame_text(r["action"], r["msg_type"], r["direction"], r["payload"]))
              for r in rows]
    if len(events) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        cut = len(events) - MAX_FRAMES
        events = [*events[:half], Event(events[half].at, "ocpp", f"... {cut} more frames ..."), *events[-half:]]
    return events


def build_trace(conn: duckdb.DuckDBPyConnection, key: str) -> Trace | None:
    """Collect the timeline of the session ``key`` names (None when none does)."""
    if not table_exists(conn, "lineage.sessions"):
        return None
    s = find_session(conn, key)
    if s is None:
        return None
    events: list[Event] = []
    skipped: list[str] = []
    times = [s.get(c) for c in ("ocpp_started_at", "ocpp_stopped_at", "backend_started_at", "backend_stopped_at",
                                "cdr_started_at", "cdr_stopped_at")]
    times = [t for t in times if t is not None]
    lo = min(times) - MARGIN if times else None
    hi = max(times) + MARGIN if times else None

    def section(table: str, fn) -> None:
        if not table_exists(conn, table):
            skipped.append(f"{table} (not in the warehouse)")
            return
        try:
            events.extend(fn())
        except duckdb.Error as exc:
            skipped.append(f"{table} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")

    if s.get("charge_point_id") and lo is not None:
        section("staging.ocpp_frames", lambda: _ocpp_events(conn, s, lo, hi))
    if s.get("ocpp_transaction_id") is not None:
        events.append(Event(s.get("ocpp_started_at"), "ocpp", f"transaction {s['ocpp_transaction_id']} started "
                            "(charger clock)"))
        if s.get("ocpp_stopped_at"):
            events.append(Event(s["ocpp_stopped_at"], "ocpp", f"transaction {s['ocpp_transaction_id']} stopped, "
                                f"{_num(s.get('ocpp_energy_kwh'))} kWh (charger clock)"))
    if s.get("backend_session_id"):
        events.append(Event(s.get("backend_started_at"), "backend",
                            f"session {s['backend_session_id']} started (status {s.get('backend_status') or '-'})"))
        if s.get("backend_stopped_at"):
            events.append(Event(s["backend_stopped_at"], "backend", f"session {s['backend_session_id']} stopped, "
                                f"{_num(s.get('backend_energy_kwh'))} kWh, amount {_num(s.get('backend_amount'))} "
                                f"{s.get('backend_currency') or ''}".rstrip()))
    cdr_ids = list(dict.fromkeys([*(s.get("cdr_ids") or []), *(s.get("credit_cdr_ids") or [])]))
    if cdr_ids:
        section("staging.cdrs", lambda: _cdr_events(conn, s, cdr_ids))
        section("staging.cdr_charging_periods", lambda: _period_events(conn, s, cdr_ids))
    if s.get("cdr_tariff_id"):
        section("staging.tariff_versions", lambda: _tariff_events(conn, s, lo, hi))
    if s.get("site_id") and lo is not None:
        section("staging.ems_intervals", lambda: _ems_events(conn, s))
    section("recon.flags", lambda: _flag_events(conn, s))
    events.sort(key=lambda e: (e.at is None, e.at or datetime.min))
    return Trace(key=key, session=s, events=events, skipped=skipped)


def _cdr_events(conn, s, cdr_ids) -> list[Event]:
    rows = _rows(conn, """
        select cdr_id, start_at, end_at, total_energy_kwh, total_cost_excl_vat, currency, credit,
            credit_reference_id, tariff_ids, ocpi_session_id, cast(cdr_json->'tariffs' as varchar) as tariffs
        from staging.cdrs
        where cdr_id in (select unnest($1::varchar[]))
            and country_code is not distinct from $2 and party_id is not distinct from $3
        order by start_at, cdr_id
    """, [cdr_ids, s.get("cdr_country_code"), s.get("cdr_party_id")])
    events = []
    for r in rows:
        role = "credit of " + str(r["credit_reference_id"]) if r["credit"] else (
            "primary" if r["cdr_id"] == s.get("cdr_id") else "extra")
        events.append(Event(r["start_at"], "cdr", f"CDR {r['cdr_id']} ({role}) start, session {r['ocpi_session_id']}"))
        used = ""
        try:
            tariffs = json.loads(r["tariffs"]) if r["tariffs"] else []
            used = ", ".join(f"{t.get('id')} v{t.get('last_updated')}" for t in tariffs if isinstance(t, dict))
        except ValueError:
            pass
        events.append(Event(r["end_at"], "cdr", f"CDR {r['cdr_id']} end: {_num(r['total_energy_kwh'])} kWh, "
                            f"{_num(r['total_cost_excl_vat'])} {r['currency']} excl. VAT, "
                            f"tariff {used or ', '.join(r['tariff_ids'] or []) or '-'}"))
    return events


def _period_events(conn, s, cdr_ids) -> list[Event]:
    rows = _rows(conn, """
        select cdr_id, period_no, min(start_at) as start_at, any_value(tariff_id) as tariff_id,
            string_agg(dimension || ' ' || cast(round(volume, 4) as varchar), ', ' order by dimension) as dims
        from staging.cdr_charging_periods
        where cdr_id in (select unnest($1::varchar[]))
        group by cdr_id, period_no
        order by start_at, cdr_id, period_no
    """, [cdr_ids])
    return [Event(r["start_at"], "cdr", f"CDR {r['cdr_id']} period {r['period_no']}: {r['dims']} "
                  f"(tariff {r['tariff_id'] or '-'})") for r in rows]


def _tariff_events(conn, s, lo, hi) -> list[Event]:
    rows = _rows(conn, """
        select tariff_id, last_updated_at, valid_from_at, valid_to_at
        from staging.tariff_versions
        where tariff_id = $1 and (valid_to_at is null or valid_to_at > $2) and valid_from_at <= $3
        order by valid_from_at
    """, [s["cdr_tariff_id"], s.get("started_at") or lo, s.get("stopped_at") or hi])
    out = []
    for r in rows:
        in_force = r["valid_from_at"] == s.get("tariff_in_force_valid_from_at") and (
            r["last_updated_at"] == s.get("tariff_in_force_last_updated_at"))
        note = " (in force at session start)" if in_force else ""
        out.append(Event(r["valid_from_at"], "tariff", f"{r['tariff_id']} version last_updated "
                         f"{_ts(r['last_updated_at'])} valid from{note}"))
    if not rows:
        out.append(Event(s.get("started_at"), "tariff", f"no version of {s['cdr_tariff_id']} in force at start"))
    return out


def _ems_events(conn, s) -> list[Event]:
    start = s.get("started_at") or s.get("ocpp_started_at")
    stop = s.get("stopped_at") or s.get("ocpp_stopped_at") or start
    rows = _rows(conn, """
        select interval_start_at, interval_end_at, charge_point_id, ev_energy_kwh, ev_setpoint_kw
        from staging.ems_intervals
        where site_id = $1 and interval_end_at > $2 and interval_start_at < $3
            and (charge_point_id is null or charge_point_id = $4)
        order by interval_start_at, charge_point_id nulls first
    """, [s["site_id"], start, stop, s.get("charge_point_id")])
    return [Event(r["interval_start_at"], "ems", f"{'charger' if r['charge_point_id'] else 'site'} interval to "
                  f"{r['interval_end_at']:%H:%M}: EV {_num(r['ev_energy_kwh'])} kWh, setpoint "
                  f"{_num(r['ev_setpoint_kw'])} kW") for r in rows]


def _flag_events(conn, s) -> list[Event]:
    rows = _rows(conn, """
        select * from recon.flags where session_key = $1
    """, [s["session_key"]])
    out = []
    for r in rows:
        at = r.get("interval_start") or s.get("started_at")
        money = r.get("money_at_risk")
        risk = f" ({_num(money)} {r.get('currency') or ''} at risk)" if money else ""
        out.append(Event(at, "finding", f"{r.get('severity')} {r.get('check')}: {r.get('explanation') or ''}{risk}"))
    return out
