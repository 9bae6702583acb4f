"""Capability failure class: the power an EVSE advertises versus what it is and delivers.

Belongs here: the ``capability_mismatch`` rule, one finding per published EVSE. Compares the
OCPI connector limits of the latest Location snapshot (``max_electric_power`` in W, else
voltage x amperage x phases) with the registry's ``max_power_kw`` and with the power the
charger actually reported (``Power.Active.Import`` meter values, kW). Needs ``locations/``.
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="capability_mismatch",
        requires=("staging.location_evse_status", "staging.evses", "staging.sites", "staging.ocpp_meter_values"),
        description="OCPI connector power differs from the registry or from the power the charger delivered",
    ),
]
