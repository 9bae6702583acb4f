"""Time failure classes: a charger clock that runs off, and session times that disagree.

Belongs here: the ``charger_clock_skew`` and ``timestamp_drift`` rules. The per-charger clock
estimate they share is the table ``recon.charger_clock`` (``assets/clock.py``), so that drift
explained by a known skewed clock is reported once, on the charger, not on every session.
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="charger_clock_skew",
        requires=("recon.charger_clock",),
        description="a charger's payload timestamps run systematically ahead of or behind the CSMS clock",
    ),
    FlagRule(
        check="timestamp_drift",
        requires=("lineage.sessions", "lineage.transactions", "recon.charger_clock"),
        description="start or stop differs between OCPP (skew-corrected), backend and CDR beyond tolerance",
    ),
]
