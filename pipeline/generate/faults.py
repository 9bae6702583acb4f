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

# Faults that cannot sit on one session together: one CDR-pricing fault per CDR (and no
# CDR fault on a session without CDR); a backend row cannot both be missing and drift; a
# session the backend never saw has no CDR for one root cause (the backend issues CDRs),
# so it is not also labelled missing_cdr; a session that never stopped, or was never
# billed, has no CDR to show which tariff version it was priced with across the change.
EXCLUSIVE = (
    frozenset({"stale_tariff", "cost_mismatch", "energy_mismatch", "missing_cdr"}),
    frozenset({"missing_cdr", "duplicate_cdr"}),
    frozenset({"missing_backend_session", "timestamp_drift"}),
    frozenset({"missing_backend_session", "missing_cdr"}),
    frozenset({"tariff_changed_during_session", "incomplete_session"}),
    frozenset({"tariff_changed_during_session", "missing_cdr"}),
)
# A CDR's energy shortfall needs one trustworthy meter to compare with: not planted on a
# session whose OCPP register is broken (meter_anomaly) and whose backend row is missing.
NEEDS_A_TRUSTED_METER = ("energy_mismatch", frozenset({"meter_anomaly", "missing_backend_session"}))

# Fault magnitudes: from just above what the field's noise can explain (pipeline/generate/
# noise.py) to gross, drawn log-uniformly so that a small fault is as likely per decade as
# a large one. Never derived from a check's tolerance.
# Backend start off the OCPP start: from 3 min to 2 h (a wrong zone offset, a manual edit).
# The noise moves a start by up to 73 s (minute truncation 60 s, recording delay 2.5 s,
# charger clock offset 10 s), so even 3 min shows at least 1.8 min, clear of it.
DRIFT_S = (180.0, 7200.0)
# Charger clock off the CSMS clock: 2 min (far beyond the seconds of NTP-less drift) to
# 2 h (a wrong zone, a dead RTC battery restored to an old time).
SKEW_S = (120.0, 7200.0)
# A slow charger's median Authorize round trip: 4 s (where the normal tail thins out,
# see ``slow_auth_min_calls``) to 30 s (beyond it the charger times out).
SLOW_AUTH_MEDIAN_S = (4.0, 30.0)
SLOW_AUTH_SIGMA = 0.25
# An offline-queued stop arriving 15 min (beyond any network delay) to 8 h late.
LATE_STOP_S = (900.0, 8 * 3600.0)
# A register rolled back mid-transaction by 50 Wh (50 times the 1 Wh register resolution)
# to 5 kWh.
ROLLBACK_WH = (50.0, 5000.0)
# CDR energy cost wrong by a factor (a wrong kWh price, VAT applied twice, a missing
# discount), over- or under-billed.
COST_FACTOR_HIGH = (1.05, 1.6)
COST_FACTOR_LOW = (0.6, 0.95)
# A wrong cost is visible when it differs by more than rounding can explain: half a cent
# per priced dimension and period, for a CDR of up to ten of them.
COST_MIN_VISIBLE = 0.05
# CDR energy short of the metered energy: it kept 50-97 % of it (a lost last reading).
ENERGY_KEPT = (0.5, 0.97)
# A CDR energy shortfall is visible when it is three times the largest honest difference
# between sources: a 0.1 kWh rounding and a 1 % meter difference.
ENERGY_MIN_VISIBLE_KWH = 0.3
ENERGY_MIN_VISIBLE_REL = 0.03
# EMS interval faults seen in the field: a CT on the wrong feeder or counted twice (high),
# a phase lost or a CT reversed on one phase (low, about 1/3 or 2/3 missing), a dropout (0).
EMS_HIGH = (1.15, 2.0)
EMS_LOW = (0.3, 0.85)
# A tampered EMS interval is a fault only where the written data shows it: outside the least
# and most energy the sessions can have drawn in it (ems_writer.interval_bounds: each register
# delta somewhere in its sample gap, a session's energy inside its window at its EVSE limit)
# by this many noise bands (meter error, conversion loss, standby, resolution, read delay).
# Low readings and dropouts the bounds could explain are planted high instead.
EMS_VISIBLE_BANDS = 2.0
# A session's energy in an interval worth attributing: at least one kWh-scale step of
# charging (an interval of a few Wh at its edge is not a site-meter question).
EMS_MIN_INTERVAL_WH = 500

# Visibility of planted faults: a fault the data cannot show is not planted (or not labelled).
# A clock behind the CSMS shows only when stamped frames arrived, online, at least one
# heartbeat interval apart: stamps that lag receipt by the same amount while heartbeats were
# answered in between cannot have sat in an offline queue. A clock ahead shows in any frame
# (a stamp after receipt can only be the clock).
HEARTBEAT_S = 1800


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
