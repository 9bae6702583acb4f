"""Energy attribution failure class: site EMS intervals against the sessions in them.

Belongs here: the ``energy_attribution_mismatch`` rule. The bands and the joint verdict it
reads are built by ``assets/attribution.py`` (``recon.session_intervals``,
``recon.site_intervals``, ``recon.attribution_judgement``).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="energy_attribution_mismatch",
        requires=("recon.attribution_judgement", "recon.session_intervals", "lineage.sessions"),
        description="the site EMS measured an EV energy for an interval that no distribution of its sessions explains",
        # A session whose record is broken makes its intervals' bounds wrong: the interval
        # follows from the session finding (one root cause, one finding).
        caused_by=("incomplete_session", "meter_anomaly", "missing_backend_session"),
    ),
]
