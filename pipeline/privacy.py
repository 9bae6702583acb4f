"""Personal data: the keyed hash that stands in for token UIDs everywhere analysts look.

Token UIDs (RFID card numbers, app user ids, OCPP ``idTag``) identify people. Staging and
every later layer keep only ``token_hash(uid, key)``: HMAC-SHA256 of the normalised UID,
hex, truncated to 32 characters (128 bits). The key is the option
``privacy.token_hash_key``; without it ``DEFAULT_TOKEN_HASH_KEY`` is used, which is public
and so only pseudonymises: set your own key in production (``CHARGELINE_CONFIG``) and keep
it stable, or hashes stop joining across nights.

SQL computes the same value set-based with the DuckDB macro
``token_hash(uid, $token_ipad, $token_opad)`` (``TOKEN_HASH_MACRO``: HMAC spelled out with
DuckDB's ``sha256`` over blobs; the padded keys are bound from ``token_hash_params``), so a
UID hashed in Python and one hashed in a staging query compare equal. The macro is defined
here once and created on every connection ``pipeline.sql`` runs SQL on.

UIDs are compared case-insensitively (OCPI ``Token.uid`` is a ``CiString``) and without
surrounding spaces.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

DEFAULT_TOKEN_HASH_KEY = "chargeline-default-token-key"
HASH_HEX_CHARS = 32
_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


def normalise_uid(uid: str) -> str:
    """The form that is hashed: spaces trimmed, upper case (SQL: ``upper(trim(uid))``)."""
    return uid.strip(" ").upper()


def token_hash(uid: str | None, key: str = DEFAULT_TOKEN_HASH_KEY) -> str | None:
    """Keyed hash of a token UID (``None`` and empty stay ``None``)."""
    if uid is None or not normalise_uid(uid):
        return None
    digest = hmac.new(key.encode("utf-8"), normalise_uid(uid).encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:HASH_HEX_CHARS]


def token_hash_key(options: dict[str, Any] | None) -> str:
    """``privacy.token_hash_key`` from the options, else the documented default."""
    return str(((options or {}).get("privacy") or {}).get("token_hash_key") or DEFAULT_TOKEN_HASH_KEY)


def token_hash_params(key: str = DEFAULT_TOKEN_HASH_KEY) -> dict[str, bytes]:
    """The bound parameters ``TOKEN_HASH_SQL`` needs: the key XOR-padded as HMAC does."""
    raw = key.encode("utf-8")
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    return {"token_ipad": bytes(b ^ 0x36 for b in raw), "token_opad": bytes(b ^ 0x5C for b in raw)}


def token_hash_sql(uid_expr: str) -> str:
    """DuckDB expression hashing ``uid_expr`` exactly as ``token_hash`` does."""
    return f"token_hash({uid_expr}, $token_ipad, $token_opad)"


# HMAC(key, m) = H((key ^ opad) || H((key ^ ipad) || m)); the pads come bound, so the key is
# never part of a statement's text. Null and blank UIDs stay null, as in ``token_hash``.
TOKEN_HASH_MACRO = """
create or replace temp macro token_hash(uid, ipad, opad) as
    case when nullif(upper(trim(uid)), '') is not null then
        left(sha256(opad || unhex(sha256(ipad || encode(upper(trim(uid)))))), 32)
    end"""
