"""Completeness failure class: a charger's record of a transaction that is not whole.

Belongs here: the ``incomplete_session`` rule (no stop, stop only from the offline queue,
charging interrupted by power loss, a fault or a reset).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="incomplete_session",
        requires=("lineage.sessions", "lineage.transactions", "staging.ocpp_meter_values"),
        description="no stop recorded, stop only from the offline queue, or charging interrupted",
    ),
]
