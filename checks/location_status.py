"""Location status failure class: the public map disagreeing with what chargers report.

Belongs here: the ``status_mismatch`` rule. The OCPP side is ``recon.status_timeline``
(``assets/status_timeline.py``: StatusNotifications mapped to OCPI EVSE statuses by
``pipeline.models.status_map``); the published side is ``staging.location_evse_status``,
present only when ``locations/`` is delivered.
"""

from pipeline.flags import FlagRule
from pipeline.models.status_map import sql_params

RULES = [
    FlagRule(
        check="status_mismatch",
        requires=("staging.location_evse_status", "recon.status_timeline", "lineage.transactions"),
        description="published OCPI EVSE status disagreed with the OCPP status for longer than the tolerance",
        params=lambda _options: sql_params(),
    ),
]
