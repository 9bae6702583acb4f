"""Authorization latency failure class: chargers whose Authorize round trips are too slow.

Belongs here: the ``auth_latency`` rule (per charger). The percentiles per site and charger
for analysts are ``marts.auth_latency`` (``assets/auth_marts.py``).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="auth_latency",
        requires=("staging.ocpp_authorizations", "staging.evses", "staging.sites", "lineage.transactions",
                  "lineage.sessions"),
        description="Authorize CALL -> CALLRESULT round trips slower than the tolerance on a charger",
    ),
]
