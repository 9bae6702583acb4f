"""Location status failure class: the public map disagreeing with what chargers report.

Belongs here: the ``status_mismatch`` rule: disagreement episodes over
``recon.status_comparison`` (``assets/status_timeline.py``: the OCPP status timeline and the
map's step function over Location pushes, EVSE PATCHes and pulls, judged once there). The
published side exists only when ``locations/`` is delivered.
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="status_mismatch",
        requires=("staging.location_evse_status", "recon.status_comparison", "recon.status_published"),
        description="published OCPI EVSE status disagreed with the OCPP status for longer than the tolerance",
    ),
]
