"""Completeness failure class: a charger's record of a transaction that is not whole.

Belongs here: the ``incomplete_session`` rule (no stop, stop only from the offline queue,
charging interrupted by power loss, a fault or a reset). "No stop" needs evidence that the
session ended (backend stop, later transaction, connector idle, boot, data far beyond any
session's length, a regularly sampled transaction silent while its charger kept talking);
silence alone is none, since many chargers never send MeterValues.
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="incomplete_session",
        requires=("lineage.sessions", "lineage.transactions", "staging.ocpp_meter_values",
                  "staging.ocpp_status", "staging.ocpp_boots", "staging.ocpp_frames"),
        description="no stop recorded, stop only from the offline queue, or charging interrupted",
    ),
]
