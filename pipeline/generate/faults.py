"""Fault classes, their planting units, and the truth rows that label them.

Every check name of contract §3 is planted on a seeded random subset of its unit
(session, charger, EVSE or site interval) at ``--fault-rate``; noise that must not be
flagged is planted at fixed rates and never written to ``truth/faults.csv``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

SESSION_FAULTS = (
    "timestamp_drift",
    "stale_tariff",
    "cost_mismatch",
    "energy_mismatch",
    "missing_cdr",
    "missing_backend_session",
    "duplicate_cdr",
    "meter_anomaly",
    "incomplete_session",
    "token_invalid",
)
# Planted by shaping the schedule or by adding records, not by altering a session.
SCHEDULED_FAULTS = ("tariff_changed_during_session", "orphan_cdr")
CHARGER_FAULTS = ("charger_clock_skew", "auth_latency")
EVSE_FAULTS = ("status_mismatch", "capability_mismatch")
INTERVAL_FAULTS = ("energy_attribution_mismatch",)
ALL_CHECKS = SESSION_FAULTS + SCHEDULED_FAULTS + CHARGER_FAULTS + EVSE_FAULTS + INTERVAL_FAULTS

# Faults that need a billed (completed, CDR-carrying) session to be visible.
NEEDS_CDR = {"stale_tariff", "cost_mismatch", "energy_mismatch", "missing_cdr", "duplicate_cdr"}

FAULT_COLUMNS = ["check", "gen_session_id", "site_id", "charge_point_id", "evse_uid",
                 "ocpp_transaction_id", "backend_session_id", "cdr_id", "interval_start", "detail"]
SESSION_COLUMNS = ["gen_session_id", "site_id", "charge_point_id", "connector_id", "evse_uid",
                   "ocpp_transaction_id", "backend_session_id", "ocpi_session_id", "cdr_id",
                   "started_at", "stopped_at", "energy_kwh", "currency", "total_cost_excl_vat"]
REJECT_COLUMNS = ["source", "source_file", "expected_rejects"]

# Fixed noise rates (not scaled by --fault-rate): realistic, and never a finding.
NOISE_RETRANSMIT = 0.01      # a CALL re-sent with the same id after a missed answer
NOISE_DUP_LINE = 0.002       # the same line shipped twice by the log forwarder
NOISE_START_RESEND = 0.02    # 1.6 StartTransaction re-sent after a reconnect
NOISE_CREDIT_REISSUE = 0.015 # CDR credited and re-issued with corrected figures
MALFORMED_FILE_RATE = 0.04   # share of eligible files that get 1-2 malformed records

# Visibility of planted faults: a fault the data cannot show is not planted (or not labelled).
# A session that never stops looks like one still charging until its samples have been
# silent for a while before the end of the data (incomplete_session: silent_h = 0.75).
NO_STOP_VISIBLE_S = 2 * 3600
# A charger is systematically slow to authorize only if more than one answer shows it.
MIN_SLOW_AUTH_CALLS = 2
# A charger clock running behind shows only in several stamped frames: one or two stamped
# late may have sat in its offline queue (charger_clock_skew: min_samples = 5). An idle
# charger that sent little more than its boot statuses is not labelled.
MIN_SKEW_FRAMES = 5
# A tampered EMS interval differs from the sessions by at least this much: twice the 0.2 kWh
# floor under which site CT meters and interval edges cannot tell a difference from noise.
EMS_MIN_VISIBLE_KWH = 0.4


@dataclass
class FaultRow:
    """One row of ``truth/faults.csv``."""

    check: str
    site_id: str
    detail: str
    gen_session_id: str = ""
    charge_point_id: str = ""
    evse_uid: str = ""
    ocpp_transaction_id: str = ""
    backend_session_id: str = ""
    cdr_id: str = ""
    interval_start: str = ""

    def as_list(self) -> list[str]:
        return [getattr(self, c) for c in FAULT_COLUMNS]


def csv_lines(rows: list[list]) -> str:
    """Rows as CSV text (no header), ``\\n`` line ends."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()
