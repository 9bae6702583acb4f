"""Tariff versions: their identity, when each is in force, and whether two price alike.

Contract §2: each distinct (country_code, party_id, id, last_updated) is one version; a
version is in force from ``start_date_time`` if given, else from ``last_updated``, until the
next version of the same tariff comes into force or its own ``end_date_time``.

This module is the definition. SQL gets ``version_id`` and "in force at" from the DuckDB
macros defined here (``VERSION_ID_MACRO``, ``IN_FORCE_MACRO``; ``pipeline.sql`` creates them
on every connection it runs SQL on), so no SQL file spells either out.
``assets/sql/staging/tariff_versions.sql`` computes [valid_from_at, valid_to_at) set-based for
the warehouse (the pricing step and the tariff checks read those columns);
``tests/unit/test_tariff_history.py`` holds Python and SQL to the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.tariffs.model import Tariff, TariffElement

TariffKey = tuple[str | None, str | None, str]
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TariffVersion:
    """One tariff version with the half-open interval [valid_from, valid_to) it is in force."""

    tariff: Tariff
    valid_from: datetime | None
    valid_to: datetime | None

    def in_force(self, at: datetime) -> bool:
        """True when ``at`` falls in [valid_from, valid_to)."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_to is None or at < self.valid_to


def version_id(country: str | None, party: str | None, tariff_id: str, last_updated: datetime | None) -> str:
    """``CC:PARTY:ID@last_updated`` (UTC, whole seconds): the identity of one version."""
    stamp = "" if last_updated is None else _aware(last_updated).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ":".join(x for x in (country, party, tariff_id) if x) + "@" + stamp


# The same two definitions for SQL. ``version_id``: parts that are null or empty are left
# out, as ``":".join(x for x in ... if x)`` does; whole seconds, UTC.
VERSION_ID_MACRO = """
create or replace temp macro version_id(country, party, tariff_id, last_updated_at) as
    concat_ws(':', nullif(country, ''), nullif(party, ''), nullif(tariff_id, '')) || '@'
        || coalesce(strftime(timezone('UTC', last_updated_at), '%Y-%m-%dT%H:%M:%SZ'), '')"""
# ``TariffVersion.in_force``: ``instant`` falls in [valid_from_at, valid_to_at), a null end open.
IN_FORCE_MACRO = """
create or replace temp macro tariff_in_force(valid_from_at, valid_to_at, instant) as
    (valid_from_at is null or valid_from_at <= instant) and (valid_to_at is null or instant < valid_to_at)"""


def tariff_version_id(tariff: Tariff) -> str:
    """``version_id`` of a parsed tariff."""
    return version_id(tariff.country_code, tariff.party_id, tariff.id, tariff.last_updated)


def _element_content(element: TariffElement) -> tuple:
    components = tuple(
        (str(c.type), c.price.normalize(), c.step_size, None if c.vat is None else c.vat.normalize())
        for c in element.price_components
    )
    return (components, element.restrictions)


def price_content(tariff: Tariff) -> tuple:
    """What decides the price a tariff version gives, and nothing else.

    Currency, elements in order (the first matching element prices), their price components
    (type, price, step_size, VAT) and restrictions, min/max price and whether prices include
    tax. Not ``last_updated``, ``start_date_time``/``end_date_time`` (when, not how much),
    the tariff type, texts or URLs: a CPO re-publishing a tariff with a new ``last_updated``
    and nothing else has not changed a price.
    """
    def money(p):
        if p is None:
            return None
        return tuple(None if v is None else v.normalize() for v in (p.excl_vat, p.incl_vat))

    return (
        tariff.currency.upper(),
        tuple(_element_content(e) for e in tariff.elements),
        money(tariff.min_price),
        money(tariff.max_price),
        bool(tariff.tax_included),
    )


def same_prices(a: Tariff, b: Tariff) -> bool:
    """True when two versions price every session alike (``price_content`` is equal)."""
    return price_content(a) == price_content(b)


def tariff_key(tariff: Tariff) -> TariffKey:
    """The identity shared by all versions of one tariff."""
    return (tariff.country_code, tariff.party_id, tariff.id)


def versions(tariffs: Iterable[Tariff]) -> dict[TariffKey, list[TariffVersion]]:
    """Group tariffs into versions per tariff, ordered by when they come into force.

    A version read twice (same key and ``last_updated``) counts once, the later read winning.
    Versions coming into force at the same instant are ordered by ``last_updated``, so the
    newest publication is the one in force.
    """
    unique: dict[tuple[TariffKey, datetime | None], Tariff] = {}
    for tariff in tariffs:
        unique[(tariff_key(tariff), tariff.last_updated)] = tariff
    grouped: dict[TariffKey, list[Tariff]] = {}
    for (key, _), tariff in unique.items():
        grouped.setdefault(key, []).append(tariff)
    result: dict[TariffKey, list[TariffVersion]] = {}
    for key, group in grouped.items():
        def order(t: Tariff) -> tuple[datetime, datetime]:
            start = t.start_date_time or t.last_updated or _EARLIEST
            updated = t.last_updated or start
            return (_aware(start), _aware(updated))

        group.sort(key=order)
        chain: list[TariffVersion] = []
        for k, tariff in enumerate(group):
            valid_from = tariff.start_date_time or tariff.last_updated
            next_from = None
            if k + 1 < len(group):
                following = group[k + 1]
                next_from = following.start_date_time or following.last_updated
            ends = [t for t in (next_from, tariff.end_date_time) if t is not None]
            chain.append(TariffVersion(tariff, valid_from, min(ends) if ends else None))
        result[key] = chain
    return result


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def in_force(
    tariffs: Iterable[Tariff],
    at: datetime,
    *,
    tariff_id: str | None = None,
    country_code: str | None = None,
    party_id: str | None = None,
) -> Tariff | None:
    """The tariff version in force at ``at`` (optionally of one tariff id), or None.

    When several tariffs match (no id given), the one that came into force last wins.
    """
    best: TariffVersion | None = None
    for key, chain in versions(tariffs).items():
        cc, pid, tid = key
        if tariff_id is not None and tid != tariff_id:
            continue
        if country_code is not None and cc is not None and cc != country_code:
            continue
        if party_id is not None and pid is not None and pid != party_id:
            continue
        for version in chain:
            if version.in_force(at) and (
                best is None
                or _aware(version.valid_from or at) > _aware(best.valid_from or at)
            ):
                best = version
    return None if best is None else best.tariff


def changes_during(
    tariffs: Iterable[Tariff], start: datetime, end: datetime, *, tariff_id: str | None = None
) -> list[TariffVersion]:
    """Versions that came into force strictly after ``start`` and at or before ``end``."""
    found = []
    for (_, _, tid), chain in versions(tariffs).items():
        if tariff_id is not None and tid != tariff_id:
            continue
        found.extend(v for v in chain if v.valid_from is not None and start < v.valid_from <= end)
    return sorted(found, key=lambda v: v.valid_from)
