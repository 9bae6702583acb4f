"""Field noise: what each source adds to the true series when it measures or records it.

Noise is on by default (``--noise field``): every value a check compares carries the
errors real systems put into it. ``--noise none`` writes the exact series (unit tests
that need equalities). Magnitudes come from what field data and equipment datasheets
show, each with its reason below; none is derived from a check's tolerance
(``pipeline/defaults.toml`` is never read here). Noise is never a fault: it is not in
``truth/faults.csv``, and a planted fault is labelled only when it stands clear of it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

NOISE_LEVELS = ("field", "none")

# -- OCPP -------------------------------------------------------------------------------
# MeterValueSampleInterval per charger (firmware default or CSMS configuration). DC
# chargers stream fast; AC wallboxes are often set to 5 or 15 minutes to save mobile
# data, and many send no MeterValues at all (only meterStart/meterStop): None.
MV_INTERVALS_AC = ((60, 0.30), (300, 0.20), (900, 0.25), (None, 0.25))
MV_INTERVALS_DC = ((10, 0.20), (30, 0.30), (60, 0.50))
# Charger clock offset: NTP-synced chargers sit within a second; NTP-less ones are set
# by the BootNotification answer and drift seconds per day. Normal, clipped.
CLOCK_OFFSET_SD_S = 2.5
CLOCK_OFFSET_MAX_S = 10.0
# Authorize round trip: log-normal, median 0.35 s, sigma 0.75 (about 92 % under 1 s),
# plus answers that needed the eMSP over OCPI (remote token check): 2-10 s.
AUTH_MEDIAN_S = 0.35
AUTH_SIGMA = 0.75
AUTH_REMOTE_P = 0.03
AUTH_REMOTE_S = (2.0, 10.0)
# An Authorize the CSMS never answers (lost on a mobile link, dropped under load); the
# charger gives up after its timeout and asks again with a new message id.
AUTH_UNANSWERED_P = 0.02
AUTH_TIMEOUT_S = (15.0, 40.0)

# -- backend ----------------------------------------------------------------------------
# Times: the CSMS records the start when it processes StartTransaction (network and queue
# delay after the charger's stamp) and many exports cut times to seconds or minutes.
BACKEND_RECORD_DELAY_S = (0.05, 2.5)
BACKEND_TIME_RES = (("s", 0.6), ("min", 0.4))
# Energy: billed from the charger's calibrated (billing) meter, read by the backend at
# stop, which differs from the OCPP register by a per-charger calibration offset, then
# rounded: Wh, 10 Wh or 100 Wh (0.1 kWh is what some backends print on invoices).
BILLING_METER_OFFSET = (0.0005, 0.006)  # relative, random sign
BACKEND_ENERGY_RES_KWH = ((0.001, 0.40), (0.01, 0.45), (0.1, 0.15))
PARTNER_ENERGY_RES_WH = ((1, 0.5), (10, 0.5))
# Re-sent exports: a share of daily export files is sent again days later with corrected
# rows (the first export carried a preliminary energy read and no amount for them).
RESEND_FILE_P = 0.3
RESEND_ROW_P = 0.12
RESEND_LAG_DAYS = (1, 3)
PRELIM_ENERGY = (0.85, 0.995)

# -- EMS --------------------------------------------------------------------------------
# Site meter with current transformers: class 1 meter plus CT error, 1-2 %, either sign.
EMS_GAIN_ERROR = (0.01, 0.02)
# The site meter measures the grid side: a DC charger's AC/DC conversion loses 3-8 %
# (efficiency 92-97 %); an AC charger's cable and contactors about 1 %.
DC_EFFICIENCY = (0.92, 0.97)
AC_EFFICIENCY = (0.985, 0.995)
# Standby draw of each charger (controller, modem, display; DC: also cooling fans).
STANDBY_W_AC = (8.0, 25.0)
STANDBY_W_DC = (40.0, 90.0)
# The EMS reads a cumulative register shortly after each interval edge, at its resolution.
EMS_RESOLUTION_KWH = ((0.001, 0.5), (0.01, 0.5))
EMS_READ_DELAY_S = (0.0, 5.0)


def weighted(rng: random.Random, pairs):
    """One value of ``(value, weight)`` pairs."""
    x = rng.random() * sum(w for _, w in pairs)
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    """Log-uniform in [lo, hi]: small magnitudes as common per decade as large ones."""
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def auth_latency(rng: random.Random) -> float:
    """One normal Authorize round trip (s)."""
    t = AUTH_MEDIAN_S * math.exp(rng.gauss(0.0, AUTH_SIGMA))
    if rng.random() < AUTH_REMOTE_P:
        t += rng.uniform(*AUTH_REMOTE_S)
    return t


def auth_tail_p(floor_s: float) -> float:
    """Share of normal Authorize answers slower than ``floor_s`` (the noise's own tail)."""
    z = math.log(floor_s / AUTH_MEDIAN_S) / AUTH_SIGMA
    lognormal_tail = 0.5 * math.erfc(z / math.sqrt(2.0))
    lo, hi = AUTH_REMOTE_S
    remote_tail = min(1.0, max(0.0, (hi - floor_s) / (hi - lo)))
    return lognormal_tail + AUTH_REMOTE_P * remote_tail


@dataclass
class ChargerNoise:
    """How one charger measures and stamps."""

    mv_interval_s: int | None = 60
    clock_offset_s: float = 0.0
    billing_offset: float = 0.0  # billing meter vs OCPP register, relative
    efficiency: float = 1.0      # charger-side energy / grid-side energy
    standby_w: float = 0.0


@dataclass
class SiteNoise:
    """How one site's backend exports and EMS meter record."""

    on: bool = False
    time_res: str = "exact"        # exact | s | min
    energy_res_kwh: float = 0.001
    partner_res_wh: int = 1
    resend_file_p: float = 0.0
    ems_gain: float = 1.0
    ems_res_kwh: float = 0.0001
    ems_read_delay_s: tuple[float, float] = (0.0, 0.0)
    auth_unanswered_p: float = 0.0


def charger_noise(rng: random.Random, kind: str, on: bool) -> ChargerNoise:
    """Draw a charger's measurement profile (exact when ``on`` is false)."""
    if not on:
        return ChargerNoise()
    dc = kind == "DC"
    return ChargerNoise(
        mv_interval_s=weighted(rng, MV_INTERVALS_DC if dc else MV_INTERVALS_AC),
        clock_offset_s=max(-CLOCK_OFFSET_MAX_S, min(CLOCK_OFFSET_MAX_S, rng.gauss(0.0, CLOCK_OFFSET_SD_S))),
        billing_offset=rng.choice((-1, 1)) * rng.uniform(*BILLING_METER_OFFSET),
        efficiency=rng.uniform(*(DC_EFFICIENCY if dc else AC_EFFICIENCY)),
        standby_w=rng.uniform(*(STANDBY_W_DC if dc else STANDBY_W_AC)),
    )


def site_noise(rng: random.Random, on: bool) -> SiteNoise:
    """Draw a site's backend and EMS recording profile (exact when ``on`` is false)."""
    if not on:
        return SiteNoise()
    return SiteNoise(
        on=True,
        time_res=weighted(rng, BACKEND_TIME_RES),
        energy_res_kwh=weighted(rng, BACKEND_ENERGY_RES_KWH),
        partner_res_wh=weighted(rng, PARTNER_ENERGY_RES_WH),
        resend_file_p=RESEND_FILE_P,
        ems_gain=1.0 + rng.choice((-1, 1)) * rng.uniform(*EMS_GAIN_ERROR),
        ems_res_kwh=weighted(rng, EMS_RESOLUTION_KWH),
        ems_read_delay_s=EMS_READ_DELAY_S,
        auth_unanswered_p=AUTH_UNANSWERED_P,
    )


def truncate_time(t: float, res: str) -> float:
    """A backend timestamp as exported: cut to whole seconds or minutes."""
    if res == "s":
        return float(math.floor(t))
    if res == "min":
        return float(math.floor(t / 60.0) * 60)
    return t
