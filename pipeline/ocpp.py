"""SQL parameters of the OCPP staging and lineage files, from the options.

Belongs here, below the assets: ``staging.ocpp_*`` and ``lineage.transactions`` bind the
same values, and an asset module must not import a sibling asset module.
"""

from __future__ import annotations

from pipeline.models.ocpp import MILLI_UNITS, V201_ONLY_ACTIONS
from pipeline.privacy import token_hash_key, token_hash_params

EPOCH_BEFORE = "2000-01-01T00:00:00Z"  # a charger timestamp earlier than this: clock never set


def ocpp_params(options: dict) -> dict:
    """SQL parameters of the OCPP staging and lineage files, from the options."""
    ocpp = options.get("ocpp", {}) if isinstance(options, dict) else {}
    return {
        "v201_only_actions": list(V201_ONLY_ACTIONS),
        "milli_units": [u.lower() for u in MILLI_UNITS],
        "epoch_before": ocpp.get("epoch_before", EPOCH_BEFORE),
        # 10 min: longer than any CSMS round trip or log-shipping delay seen, far shorter
        # than a connectivity outage (2026-11).
        "offline_queue_s": float(ocpp.get("offline_queue_s", 600)),
        # above the most powerful chargers on the market (HPC 400-600 kW), 2026-11
        "max_plausible_kw": float(ocpp.get("max_plausible_kw", 1000)),
        # a register sample may sit this far outside meterStart..meterStop and still be in
        # their unit (defaults.toml [ocpp] unit_slack_kwh)
        "unit_slack_kwh": float(ocpp.get("unit_slack_kwh", 0.01)),
        **token_hash_params(token_hash_key(options)),
    }
