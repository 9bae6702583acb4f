"""Token failure class: sessions started with a token the eMSP did not (or no longer) accept.

Belongs here: the ``token_invalid`` rule. Tokens are compared by their keyed hash only
(``pipeline.privacy``): staging holds the OCPP ``idTag`` and the OCPI Token ``uid`` only as
that hash, so no raw UID reaches ``recon.flags``. Needs ``tokens/`` (``staging.tokens``).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="token_invalid",
        requires=("staging.tokens", "lineage.sessions", "lineage.transactions", "staging.ocpp_authorizations",
                  "staging.ocpp_transaction_events", "staging.ocpp_calls"),
        description="the session's token was unknown, invalid or revoked at session start",
    ),
]
