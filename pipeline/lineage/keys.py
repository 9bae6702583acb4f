"""Session keys: a deterministic hash of the anchor record's identity (docs/design.md).

The SQL in ``assets/sql/lineage/sessions.sql`` computes the same value with DuckDB's
``sha256``; ``tests/unit/test_lineage_keys.py`` holds the two together.
"""

from __future__ import annotations

import hashlib

#: Hex characters kept from the sha256: 80 bits, so collisions stay out of reach for
#: billions of sessions while keys remain short enough to type into ``chargeline trace``.
KEY_LENGTH = 20


def ocpp_ref(charge_point_id: str, transaction_id: str) -> str:
    """Identity of an OCPP transaction as used in ``lineage.links`` (``<cp>:<tx>``)."""
    return f"{charge_point_id}:{transaction_id}"


def cdr_ref(country_code: str | None, party_id: str | None, cdr_id: str) -> str:
    """Identity of a CDR as used in ``lineage.links`` (``<country>:<party>:<cdr_id>``)."""
    return f"{country_code or ''}:{party_id or ''}:{cdr_id}"


def anchor(kind: str, ref: str) -> str:
    """Anchor identity string: ``ocpp:<cp>:<tx>``, ``backend:<id>`` or ``cdr:<c>:<p>:<id>``."""
    if kind not in {"ocpp", "backend", "cdr"}:
        raise ValueError(f"unknown anchor kind: {kind!r}")
    return f"{kind}:{ref}"


def session_key(anchor_identity: str) -> str:
    """The session key of an anchor identity (first ``KEY_LENGTH`` hex chars of sha256).

    Parameters
    ----------
    anchor_identity : str
        e.g. ``"ocpp:CP-0001:4711"`` (see :func:`anchor`).

    Returns
    -------
    str
        Lower-case hex; independent of file names, row order and ingestion time.
    """
    return hashlib.sha256(anchor_identity.encode("utf-8")).hexdigest()[:KEY_LENGTH]
