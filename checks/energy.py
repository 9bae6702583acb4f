"""Energy failure class: the same session's energy as the charger, backend and CDR saw it.

Belongs here: the ``energy_mismatch`` rule. Meter faults of the charger itself are
``meter_anomaly`` (``checks/meter.py``); this rule leaves such OCPP energy out so that one
root cause makes one finding.
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="energy_mismatch",
        requires=("lineage.sessions", "lineage.transactions", "lineage.match_cdrs", "staging.evses"),
        description="OCPP metered, backend and CDR energy disagree beyond meter resolution",
    ),
]
