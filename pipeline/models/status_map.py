"""OCPP connector status -> OCPI EVSE ``Status``: the mapping status checks compare with.

Belongs here: the mapping table and the lists the one agreement rule reads
(``assets/sql/recon/status_comparison.sql``, bound from ``sql_params``). OCPP 1.6
``ChargePointStatus`` and 2.0.1 ``ConnectorStatusEnumType`` are mapped to the OCPI 2.2.1 EVSE ``Status`` enum the way a CSMS publishing to roaming
partners would. A status not in the table (vendor-specific, misspelt, a newer enum value)
maps to ``UNKNOWN``: it is kept and counted, never dropped, so a charger speaking a dialect
shows up in the timeline instead of silently vanishing.
"""

from __future__ import annotations

from pipeline.models.ocpi import Status

UNMAPPED = Status.unknown.value

# (ocpp_version, OCPP status) -> OCPI Status. Preparing and Finishing count as CHARGING:
# the EVSE is taken by a driver, which is what a map user needs to know.
STATUS_MAP: dict[tuple[str, str], str] = {
    ("1.6", "Available"): Status.available.value,
    ("1.6", "Preparing"): Status.charging.value,
    ("1.6", "Charging"): Status.charging.value,
    ("1.6", "SuspendedEV"): Status.charging.value,
    ("1.6", "SuspendedEVSE"): Status.charging.value,
    ("1.6", "Finishing"): Status.charging.value,
    ("1.6", "Reserved"): Status.reserved.value,
    ("1.6", "Unavailable"): Status.inoperative.value,
    ("1.6", "Faulted"): Status.outoforder.value,
    ("2.0.1", "Available"): Status.available.value,
    ("2.0.1", "Occupied"): Status.charging.value,
    ("2.0.1", "Reserved"): Status.reserved.value,
    ("2.0.1", "Unavailable"): Status.inoperative.value,
    ("2.0.1", "Faulted"): Status.outoforder.value,
}

# Published/OCPP pairs that are not a disagreement although the values differ: both tell a
# driver the same thing (cannot use it), or BLOCKED (a parked car) cannot be seen by OCPP.
EQUIVALENT: frozenset[tuple[str, str]] = frozenset({
    (Status.inoperative.value, Status.outoforder.value),
    (Status.outoforder.value, Status.inoperative.value),
    (Status.blocked.value, Status.available.value),
    (Status.blocked.value, Status.charging.value),
})

# Transitional OCPP statuses a map may show either way: a plugged car not yet authorised, or
# a finished session not yet unplugged, is commonly published as still AVAILABLE (or BLOCKED).
TRANSITIONAL: dict[tuple[str, str], frozenset[str]] = {
    ("1.6", "Preparing"): frozenset({Status.available.value, Status.blocked.value}),
    ("1.6", "Finishing"): frozenset({Status.available.value, Status.blocked.value}),
}

# Published statuses that say nothing comparable to OCPP (not yet built, gone, unknown).
NOT_COMPARABLE: frozenset[str] = frozenset({
    Status.planned.value, Status.removed.value, Status.unknown.value,
})


def map_status(ocpp_version: str | None, status: str | None) -> str:
    """OCPI EVSE status of one OCPP status (version unknown: tried as 1.6, then 2.0.1)."""
    if status is None:
        return UNMAPPED
    versions = (ocpp_version,) if ocpp_version in ("1.6", "2.0.1") else ("1.6", "2.0.1")
    for v in versions:
        if (v, status) in STATUS_MAP:
            return STATUS_MAP[(v, status)]
    return UNMAPPED


def sql_params() -> dict[str, list[str]]:
    """The mapping as parallel lists, bound into set-based SQL (``$map_keys``, ...)."""
    keys = [f"{v}|{s}" for v, s in STATUS_MAP]
    eq = sorted(EQUIVALENT)
    return {
        "map_keys": keys,
        "map_values": [STATUS_MAP[k] for k in STATUS_MAP],
        "equivalent_pairs": [f"{p}|{o}" for p, o in eq],
        "not_comparable": sorted(NOT_COMPARABLE),
        "lenient_keys": sorted(f"{v}|{s}|{p}" for (v, s), ps in TRANSITIONAL.items() for p in ps),
    }
