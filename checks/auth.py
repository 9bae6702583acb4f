"""Authorization latency failure class: chargers that keep drivers waiting at the card reader.

Belongs here: the ``auth_latency`` rule (per charger). The percentiles per site and charger
for analysts are ``marts.auth_latency`` (``assets/auth_marts.py``).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="auth_latency",
        requires=("staging.ocpp_authorizations", "staging.evses", "staging.sites", "lineage.transactions",
                  "lineage.sessions"),
        description="Share of Authorize calls answered late or never on a charger, far above its network's base rate",
    ),
]
