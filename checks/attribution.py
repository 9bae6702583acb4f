"""Energy attribution failure class: site EMS intervals against the sessions in them.

Belongs here: the ``energy_attribution_mismatch`` rule. The intervals it compares are built
by ``assets/attribution.py`` (``recon.session_intervals``, ``recon.site_intervals``).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="energy_attribution_mismatch",
        requires=("recon.site_intervals", "recon.session_intervals", "lineage.sessions"),
        description="the site EMS measured a different EV energy for an interval than its sessions add up to",
    ),
]
