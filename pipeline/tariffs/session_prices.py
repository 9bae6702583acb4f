"""Session pricing: each billed (or billable) session re-priced into ``recon.session_prices``.

Belongs here: deciding which tariff version a CDR was priced with, and pricing the session
with the OCPI engine (``pipeline.tariffs.engine``) under that version, under the version in
force at session start and, when one came into force before stop, under the next version.
The tariff checks (``checks/tariffs.py``) compare these prices in SQL; the asset
``recon_session_prices`` (``assets/pricing.py``) only runs ``build_session_prices``.

Which sessions, tariffs and versions is set-based SQL (``assets/sql/recon/pricing_candidates.sql``);
Python prices only the candidates, in batches, with every tariff version parsed once.

The contract's "cost recomputed from the tariff in force" is
``recon.session_prices.price_in_force_excl_vat`` (``_incl_vat``, version
``in_force_version_id``), one row per priced session by ``session_key``. Pricing reads
``lineage.sessions`` and writes only its own table; readers join on ``session_key``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl

from pipeline.sql import execute, load_sql, table_exists
from pipeline.tariffs.engine import PriceBreakdown, price
from pipeline.tariffs.history import same_prices, version_id
from pipeline.tariffs.model import Tariff, cdr_from_ocpi, tariff_from_ocpi

CANDIDATES_SQL = "assets/sql/recon/pricing_candidates.sql"
BATCH_ROWS = 5000
CENT = Decimal("0.01")
# Default of [checks.stale_tariff] price_match_tolerance (pipeline/defaults.toml has the reason).
MATCH_TOLERANCE = Decimal("0.01")

PRICES_DDL = """
create or replace table recon.session_prices (
    session_key varchar, cdr_id varchar, site_id varchar, time_zone varchar, currency varchar,
    started_at timestamptz, stopped_at timestamptz, tariff_id varchar, period_source varchar,
    cdr_tariff_source varchar, cdr_tariff_version_id varchar, cdr_tariff_same_prices boolean, in_force_version_id varchar,
    in_force_valid_from_at timestamptz, next_version_id varchar, next_valid_from_at timestamptz,
    cdr_total_cost_excl_vat double, price_cdr_tariff_excl_vat double, price_cdr_tariff_cents_excl_vat double,
    price_in_force_excl_vat double, price_in_force_cents_excl_vat double, price_in_force_incl_vat double,
    price_next_version_excl_vat double,
    energy_kwh double, breakdown_cdr_tariff json, breakdown_in_force json, status varchar, warnings varchar[]
)"""
_COLUMNS = [
    "session_key", "cdr_id", "site_id", "time_zone", "currency", "started_at", "stopped_at", "tariff_id",
    "period_source", "cdr_tariff_source", "cdr_tariff_version_id", "cdr_tariff_same_prices", "in_force_version_id",
    "in_force_valid_from_at", "next_version_id", "next_valid_from_at", "cdr_total_cost_excl_vat",
    "price_cdr_tariff_excl_vat", "price_cdr_tariff_cents_excl_vat", "price_in_force_excl_vat",
    "price_in_force_cents_excl_vat", "price_in_force_incl_vat", "price_next_version_excl_vat", "energy_kwh", "breakdown_cdr_tariff",
    "breakdown_in_force", "status", "warnings",
]


@dataclass(frozen=True)
class Version:
    """One staged tariff version, parsed once per run."""

    version_id: str
    tariff_id: str
    last_updated_at: datetime | None
    tariff: Tariff
    valid_from_at: datetime | None = None


def _cents_total(bd: PriceBreakdown) -> Decimal:
    """The total a CPO gets when it rounds each cost field to cents before adding them up."""
    if bd.price_limit_applied:
        return (bd.total_cost.excl_vat or Decimal(0)).quantize(CENT, ROUND_HALF_UP)
    parts = (bd.total_fixed_cost, bd.total_energy_cost, bd.total_time_cost, bd.total_parking_cost,
             bd.total_reservation_cost)
    return sum(((p.excl_vat or Decimal(0)).quantize(CENT, ROUND_HALF_UP) for p in parts), Decimal(0))


def _close(a: Decimal | None, b: Decimal | None, tolerance: Decimal = MATCH_TOLERANCE) -> bool:
    return a is not None and b is not None and abs(a - b) <= tolerance


def match_tolerance(options: Mapping[str, Any] | None) -> Decimal:
    """[checks.stale_tariff] price_match_tolerance, else the default."""
    value = ((options or {}).get("checks", {}).get("stale_tariff", {}) or {}).get("price_match_tolerance")
    return MATCH_TOLERANCE if value is None else Decimal(str(value))


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class Pricer:
    """Prices candidate rows against the staged tariff versions."""

    def __init__(self, versions: Iterable[Version], tolerance: Decimal = MATCH_TOLERANCE):
        self.tolerance = tolerance
        self.by_id: dict[str, Version] = {}
        self.by_tariff: dict[str, list[Version]] = {}
        for v in versions:
            self.by_id[v.version_id] = v
            self.by_tariff.setdefault(v.tariff_id, []).append(v)

    def _staged(self, tariff_id: str, last_updated: datetime | None) -> Version | None:
        for v in self.by_tariff.get(tariff_id, ()):
            if last_updated is not None and v.last_updated_at == last_updated:
                return v
        return None

    def price_row(self, row: Mapping[str, Any], samples: list | None = None) -> dict[str, Any]:
        """One ``recon.session_prices`` row for one candidate (see ``pricing_candidates.sql``)."""
        warnings: list[str] = []
        out: dict[str, Any] = {k: row.get(k) for k in (
            "session_key", "cdr_id", "site_id", "time_zone", "currency", "started_at", "stopped_at",
            "tariff_id", "in_force_version_id", "in_force_valid_from_at", "next_version_id",
            "next_valid_from_at", "cdr_total_cost_excl_vat",
        )}
        tz = row.get("time_zone") or "UTC"
        in_force = self.by_id.get(row.get("in_force_version_id") or "")
        nxt = self._next_price_change(in_force, self.by_id.get(row.get("next_version_id") or ""),
                                      row.get("stopped_at"))
        out["next_version_id"] = None if nxt is None else nxt.version_id
        out["next_valid_from_at"] = None if nxt is None else nxt.valid_from_at
        periods, start, end, cdr = (), row.get("started_at"), row.get("stopped_at"), None
        if row.get("cdr_json"):
            cdr = cdr_from_ocpi(json.loads(row["cdr_json"]))
            warnings.extend(cdr.warnings)
            periods, start, end = cdr.charging_periods, cdr.start_date_time or start, cdr.end_date_time or end
            out["period_source"] = "cdr"
        elif samples:
            from pipeline.tariffs.periods import build_periods

            built = build_periods(samples, tariff=in_force.tariff if in_force else None, time_zone=tz,
                                  session_start=row.get("ocpp_started_at"), session_end=row.get("ocpp_stopped_at"))
            warnings.extend(built.warnings)
            periods = built.periods
            out["period_source"] = "ocpp_meter_values"
        if not periods:
            out.update(status="no_periods", warnings=warnings)
            return out

        def run(tariff: Tariff) -> PriceBreakdown:
            return price(periods, tariff, tz, session_start=start, session_end=end)

        bd_force = run(in_force.tariff) if in_force else None
        if bd_force is not None:
            out["price_in_force_excl_vat"] = _f(bd_force.total_cost.excl_vat)
            out["price_in_force_cents_excl_vat"] = _f(_cents_total(bd_force))
            out["price_in_force_incl_vat"] = _f(bd_force.total_cost.incl_vat)
            out["breakdown_in_force"] = json.dumps(bd_force.to_dict())
            out["energy_kwh"] = _f(bd_force.total_energy)
        if nxt is not None:
            out["price_next_version_excl_vat"] = _f(run(nxt.tariff).total_cost.excl_vat)

        if cdr is not None:
            used, source, bd_used, used_tariff = self._cdr_version(cdr, row, in_force, bd_force, run)
            out["cdr_tariff_source"] = source
            out["cdr_tariff_version_id"] = used
            if used_tariff is not None and in_force is not None:
                out["cdr_tariff_same_prices"] = same_prices(used_tariff, in_force.tariff)
            if bd_used is not None:
                out["price_cdr_tariff_excl_vat"] = _f(bd_used.total_cost.excl_vat)
                out["price_cdr_tariff_cents_excl_vat"] = _f(_cents_total(bd_used))
                out["breakdown_cdr_tariff"] = (
                    out["breakdown_in_force"] if bd_used is bd_force else json.dumps(bd_used.to_dict()))
                out["energy_kwh"] = _f(bd_used.total_energy)
                warnings.extend(bd_used.warnings)
        elif bd_force is not None:
            warnings.extend(bd_force.warnings)
        if in_force is None:
            warnings.append(f"no version of tariff {row.get('tariff_id')!r} in force at session start")
        out["status"] = "priced" if (bd_force is not None or out.get("price_cdr_tariff_excl_vat") is not None) else "no_tariff"
        out["warnings"] = warnings
        return out

    def _next_price_change(self, in_force: Version | None, first: Version | None, stop) -> Version | None:
        """The first version coming into force during the session that changes a price.

        ``first`` is the first version coming into force after the start (SQL). A CPO that
        re-publishes a tariff with a new ``last_updated`` and the same prices has not changed
        the tariff for anybody: such versions are passed over.
        """
        if first is None or in_force is None or not same_prices(first.tariff, in_force.tariff):
            return first
        key = (in_force.tariff.country_code, in_force.tariff.party_id)
        later = sorted(
            (v for v in self.by_tariff.get(in_force.tariff_id, ())
             if (v.tariff.country_code, v.tariff.party_id) == key and v.valid_from_at is not None
             and first.valid_from_at is not None and v.valid_from_at > first.valid_from_at
             and (stop is None or v.valid_from_at <= stop)),
            key=lambda v: (v.valid_from_at, v.last_updated_at or v.valid_from_at),
        )
        return next((v for v in later if not same_prices(v.tariff, in_force.tariff)), None)

    def _cdr_version(self, cdr, row, in_force, bd_force, run):
        """The version the CDR was priced with: (version id, how we know, its breakdown, tariff)."""
        tariff_id = row.get("tariff_id")
        for t in cdr.tariffs:
            if tariff_id and t.id != tariff_id:
                continue
            staged = self._staged(t.id, t.last_updated)
            vid = staged.version_id if staged else version_id(t.country_code, t.party_id, t.id, t.last_updated)
            if t.elements:
                # Most CDRs embed exactly the version in force: reuse that price.
                if bd_force is not None and staged is in_force and t.elements == in_force.tariff.elements:
                    return vid, "embedded", bd_force, t
                return vid, "embedded", run(t), t
            if staged is not None:
                return vid, "embedded_reference", run(staged.tariff), staged.tariff
        # No reference: the version whose price the CDR total reproduces, in force at start first.
        total = None if row.get("cdr_total_cost_excl_vat") is None else Decimal(str(row["cdr_total_cost_excl_vat"]))
        if bd_force is not None and (
            _close(total, bd_force.total_cost.excl_vat, self.tolerance)
            or _close(total, _cents_total(bd_force), self.tolerance)
        ):
            return in_force.version_id, "price_match", bd_force, in_force.tariff
        others = sorted(
            (v for v in self.by_tariff.get(tariff_id or "", ()) if v is not in_force),
            key=lambda v: v.last_updated_at or datetime.min.replace(tzinfo=UTC), reverse=True,
        )
        for v in others:
            bd = run(v.tariff)
            if _close(total, bd.total_cost.excl_vat, self.tolerance) or _close(total, _cents_total(bd), self.tolerance):
                return v.version_id, "price_match", bd, v.tariff
        if in_force is not None:
            return in_force.version_id, "assumed_in_force", bd_force, in_force.tariff
        return None, "unknown", None, None


def load_versions(conn) -> list[Version]:
    """Every staged tariff version, parsed once."""
    rows = conn.execute("""
        select version_id, tariff_id, last_updated_at, valid_from_at, tariff_json::varchar
        from staging.tariff_versions""").fetchall()
    return [
        Version(version_id=vid, tariff_id=tariff_id, last_updated_at=updated, valid_from_at=valid_from,
                tariff=tariff_from_ocpi(json.loads(text)))
        for vid, tariff_id, updated, valid_from, text in rows
    ]


def _samples_by_tx(conn, keys: list[str]) -> dict[str, list]:
    """Meter samples (energy register, power) of the no-CDR candidates, per session key."""
    from pipeline.tariffs.periods import MeterSample

    if not keys or not table_exists(conn, "staging.ocpp_meter_values"):
        return {}
    rows = conn.execute("""
        with c as (select session_key, charge_point_id, ocpp_transaction_id from _price_candidates
                   where session_key in (select unnest($keys::varchar[])))
        select c.session_key, m.sampled_at,
               max(m.value) filter (where coalesce(m.measurand, 'Energy.Active.Import.Register')
                                    = 'Energy.Active.Import.Register' and m.phase is null),
               max(m.value) filter (where m.measurand = 'Power.Active.Import' and m.phase is null)
        from c join staging.ocpp_meter_values as m
          on m.charge_point_id = c.charge_point_id and m.transaction_id = c.ocpp_transaction_id
        where m.sampled_at >= timestamptz '2000-01-01 00:00:00+00'
        group by all order by 1, 2""", {"keys": keys}).fetchall()
    out: dict[str, list] = {}
    for key, at, energy, power in rows:
        out.setdefault(key, []).append(MeterSample(
            at, None if energy is None else Decimal(str(energy)), None if power is None else Decimal(str(power))))
    return out


def _batches(conn, size: int) -> Iterator[list[dict[str, Any]]]:
    n = conn.execute("select count(*) from _price_candidates").fetchall()[0][0]
    for lo in range(0, n, size):
        frame = conn.sql(
            "select * exclude (_rn) from _price_candidates where _rn > $lo and _rn <= $hi",
            params={"lo": lo, "hi": lo + size},
        ).pl()
        yield frame.to_dicts()


def build_session_prices(conn, batch_rows: int = BATCH_ROWS, options: Mapping[str, Any] | None = None
                         ) -> dict[str, int]:
    """(Re)build ``recon.session_prices``; counts by status.

    One transaction: on any error the table keeps its previous rows.
    """
    execute(conn, "begin transaction")
    try:
        counts = _build_session_prices(conn, batch_rows, match_tolerance(options))
        execute(conn, "commit")
    except BaseException:
        execute(conn, "rollback")
        raise
    return counts


def _build_session_prices(conn, batch_rows: int, tolerance: Decimal = MATCH_TOLERANCE) -> dict[str, int]:
    execute(conn, PRICES_DDL)
    needed = ("lineage.sessions", "staging.cdrs", "staging.tariff_versions", "staging.evses", "staging.sites")
    if not all(table_exists(conn, t) for t in needed):
        return {}
    execute(conn, f"""create or replace temp table _price_candidates as
        select *, row_number() over (order by session_key) as _rn from ({load_sql(CANDIDATES_SQL)})""")
    pricer = Pricer(load_versions(conn), tolerance)
    counts: dict[str, int] = {}
    for batch in _batches(conn, batch_rows):
        samples = _samples_by_tx(conn, [r["session_key"] for r in batch if not r.get("cdr_json")])
        rows = [pricer.price_row(r, samples.get(r["session_key"])) for r in batch]
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        frame = pl.DataFrame(
            {c: [r.get(c) for r in rows] for c in _COLUMNS},
            schema_overrides={"warnings": pl.List(pl.String)}, strict=False,
        )
        conn.register("_price_batch", frame)
        execute(conn, "insert into recon.session_prices by name select * from _price_batch")
        conn.unregister("_price_batch")
    execute(conn, "drop table if exists _price_candidates")
    return counts
