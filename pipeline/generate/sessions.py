"""Session simulation: arrivals, dwell, and the per-minute charging profile.

Energy is integer Wh per 60 s step: the one true series. OCPP registers, backend kWh,
CDR volumes and EMS intervals are each derived from it, through that source's own
measurement noise when noise is on (``pipeline.generate.noise``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.generate.network import Charger, Evse, TariffVersion

STEP_S = 60
# A car draws a little under the EVSE's limit (charger and car both regulate below it);
# this headroom also keeps a step's Wh, rounded up to a whole Wh, under the limit.
POWER_HEADROOM = (0.96, 0.993)


@dataclass
class Session:
    """One true charging session and everything later written about it."""

    gen_id: str
    evse: Evse
    charger: Charger
    plug_at: float
    start_at: float
    charge_end_at: float
    stop_at: float
    steps_wh: list[int]
    power_w: list[int]
    token: tuple[str, str, str, str]
    auth_at: float | None = None
    # Authorize calls (true time, CSMS round trip in s, or None: never answered)
    auth_calls: list[tuple[float, float | None]] = field(default_factory=list)
    # Planted faults of this session, in planting order (several may combine), and per
    # fault its form ("rollback", "no_stop", ...) and a truth detail when one is known.
    faults: list[str] = field(default_factory=list)
    forms: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    tx_id: str = ""
    backend_id: str = ""
    ocpi_session_id: str = ""
    cdr_id: str = ""
    meter_start_wh: int = 0
    tariff: TariffVersion | None = None
    total_cost_excl: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def energy_wh(self) -> int:
        return sum(self.steps_wh)

    @property
    def completed(self) -> bool:
        return self.forms.get("incomplete_session") != "no_stop"

    def has(self, check: str) -> bool:
        return check in self.faults

    def drop(self, check: str) -> None:
        if check in self.faults:
            self.faults.remove(check)
        self.forms.pop(check, None)
        self.details.pop(check, None)


@dataclass
class Arrival:
    """A planned plug-in before the schedule resolves overlaps."""

    at: float
    dwell_s: float | None  # None: DC, leaves a few minutes after charging completes
    need_wh: float
    car_kw: float
    forced: bool = False


def plan_arrivals(site_type: str, kind: str, midnights: list[float], rng: random.Random) -> list[Arrival]:
    """Candidate plug-ins per local day, by site type and charger kind."""
    out: list[Arrival] = []
    h = 3600.0
    for m in midnights:
        if kind == "DC":
            n = rng.randint(5, 10) if site_type == "public" else rng.randint(3, 7)
            for _ in range(n):
                out.append(Arrival(m + rng.uniform(6, 23) * h, None, rng.uniform(15e3, 55e3),
                                   rng.choice((50.0, 100.0, 150.0, 250.0))))
        elif site_type == "fleet":
            if rng.random() < 0.9:
                out.append(Arrival(m + rng.uniform(16, 20) * h, rng.uniform(9, 13) * h,
                                   rng.uniform(15e3, 55e3), 11.0))
            if rng.random() < 0.6:
                out.append(Arrival(m + rng.uniform(9, 13) * h, rng.uniform(1, 2.5) * h,
                                   rng.uniform(5e3, 15e3), 11.0))
        elif site_type == "public":
            for _ in range(rng.choice((2, 3, 4, 5))):
                out.append(Arrival(m + rng.uniform(7, 21) * h, rng.uniform(0.5, 3.5) * h,
                                   rng.uniform(5e3, 30e3), rng.choice((7.4, 11.0))))
        else:
            # The solar carport is also the employer's car park: a commuter plugs in on
            # arrival and leaves after work (~8 h) having charged ~2 h; visitors stay shorter.
            if rng.random() < 0.6:
                out.append(Arrival(m + rng.uniform(7, 9.5) * h, rng.uniform(7, 9.5) * h,
                                   rng.uniform(6e3, 24e3), rng.choice((7.4, 11.0))))
            for _ in range(rng.choice((1, 2, 2, 3))):
                out.append(Arrival(m + rng.uniform(7.5, 17) * h, rng.uniform(1.5, 5) * h,
                                   rng.uniform(8e3, 35e3), rng.choice((7.4, 11.0, 22.0))))
    out.sort(key=lambda a: a.at)
    return out


def build_profile(
    start: float,
    stop: float | None,
    need_wh: float,
    pmax_kw: float,
    taper: bool,
    cap_kw: Callable[[float], float],
    rng: random.Random,
    ac_taper: float = 0.0,
) -> tuple[list[int], list[int], float, float]:
    """Per-step Wh and W from ``start``; the car's battery management tapers the power.

    DC (``taper``) tapers above 60 % of the need; AC tapers over the last ``ac_taper``
    share of it (the on-board charger lowers its current near full), then stops: the car
    stays plugged in, idle, until ``stop``. ``pmax_kw`` is already at or under the EVSE
    limit, and no step's rounded Wh implies more than it (see ``POWER_HEADROOM``).

    Returns
    -------
    steps_wh, power_w, charge_end_at, stop_at
        ``stop_at`` is ``stop`` when given, else the charge end plus a short dwell.
    """
    steps: list[int] = []
    powers: list[int] = []
    delivered = 0.0
    done_int = 0
    t = start
    charge_end = None
    while True:
        if stop is not None and t >= stop - 1e-6:
            break
        if delivered >= need_wh - 0.5:
            if charge_end is None:
                charge_end = t
                if stop is None:
                    dwell = rng.uniform(120, 600) if rng.random() > 0.15 else rng.uniform(1200, 3600)
                    stop = float(int(t + dwell))
                    continue
            step = min(STEP_S, stop - t)
            steps.append(0)
            powers.append(0)
            t += step
            continue
        step = STEP_S if stop is None else min(STEP_S, stop - t)
        p = pmax_kw
        if taper:
            frac = delivered / need_wh
            if frac > 0.6:
                p = pmax_kw * max(0.15, 1.0 - (frac - 0.6) / 0.4 * 0.85)
        elif ac_taper > 0.0:
            frac = delivered / need_wh
            if frac > 1.0 - ac_taper:
                p = pmax_kw * max(0.2, 1.0 - (frac - 1.0 + ac_taper) / ac_taper * 0.8)
        p = min(p, cap_kw(t))
        e = p * 1000.0 * step / 3600.0
        if delivered + e > need_wh:
            e = need_wh - delivered
        delivered += e
        cum = int(delivered)
        steps.append(cum - done_int)
        done_int = cum
        powers.append(int(p * 1000 * rng.uniform(0.985, 1.0)))
        t += step
    if charge_end is None:
        charge_end = t
    assert stop is not None
    return steps, powers, charge_end, stop


def schedule(
    arrivals: list[Arrival],
    blocked: list[tuple[float, float]],
    no_span: float | None,
    period_end: float,
) -> list[Arrival]:
    """Keep arrivals that fit: no overlap, not inside blocked windows, inside the period.

    A forced arrival (planted tariff-change session) wins over the others; the rest are
    kept off the tariff change instant so only planted sessions span it.
    """
    forced = [a for a in arrivals if a.forced]
    taken: list[tuple[float, float]] = [(a.at - 180, a.at + (a.dwell_s or 3600) + 180) for a in forced]
    kept = list(forced)
    for a in arrivals:
        if a.forced:
            continue
        end = a.at + (a.dwell_s if a.dwell_s is not None else 5400)
        if end > period_end - 600:
            if a.dwell_s is None:
                continue
            a.dwell_s = period_end - 600 - a.at
            end = a.at + a.dwell_s
            if a.dwell_s < 1800:
                continue
        if no_span is not None and a.at - 120 < no_span < end + 120:
            continue
        if any(a.at - 180 < b and end + 180 > s for s, b in taken + blocked):
            continue
        taken.append((a.at, end))
        kept.append(a)
    kept.sort(key=lambda a: a.at)
    return kept
