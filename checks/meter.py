"""Meter failure class: readings of a charger's energy register that cannot all be true.

Belongs here: the ``meter_anomaly`` rule (rollback or reset within a transaction, negative
energy, meterStop -1, energy above the EVSE's power, Wh/kWh confusion).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="meter_anomaly",
        requires=("lineage.sessions", "lineage.transactions", "staging.evses"),
        description="register rollback/reset, negative energy, energy above the EVSE's power, unit confusion",
    ),
]
