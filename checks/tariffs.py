"""Tariff and cost failure classes: stale tariff, tariff changed mid-session, cost mismatch.

Belongs here: the rules comparing a CDR's money with the OCPI engine's prices in
``recon.session_prices`` (``pipeline.tariffs.session_prices``). Each session is judged once per question:
a CDR internally consistent with an outdated version is ``stale_tariff``, never also
``cost_mismatch``, because cost is always compared under the CDR's own version.
"""

from pipeline.flags import FlagRule

_NEEDS = ("recon.session_prices", "lineage.sessions")

RULES = [
    FlagRule(
        check="stale_tariff",
        requires=_NEEDS,
        description="the CDR was priced with a tariff version not in force at session start",
    ),
    FlagRule(
        check="tariff_changed_during_session",
        requires=_NEEDS,
        description="a new version of the session's tariff came into force between start and stop",
    ),
    FlagRule(
        check="cost_mismatch",
        requires=_NEEDS,
        description="CDR total (excl. VAT) differs from the engine's price under the CDR's own tariff",
    ),
]
