"""Record-gap failure classes: a record one system should hold and does not, or holds twice.

Belongs here: ``missing_cdr``, ``orphan_cdr``, ``missing_backend_session`` and
``duplicate_cdr``, all read from the lineage (which record linked to which).
"""

from pipeline.flags import FlagRule

RULES = [
    FlagRule(
        check="missing_cdr",
        requires=("lineage.sessions",),
        description="a completed, billable session has no CDR",
    ),
    FlagRule(
        check="orphan_cdr",
        requires=("lineage.sessions",),
        description="a live CDR matches no OCPP transaction and no backend session",
    ),
    FlagRule(
        check="missing_backend_session",
        requires=("lineage.sessions",),
        description="the charger ran a transaction the backend has no session for",
    ),
    FlagRule(
        check="duplicate_cdr",
        requires=("lineage.sessions", "lineage.match_cdrs"),
        description="more than one live (non-credited) CDR bills one session",
    ),
]
