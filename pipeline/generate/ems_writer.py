"""Site EMS 15-minute metering and dispatch intervals.

``ev_energy_kwh`` is what the site meter read on the grid side of the chargers: the
sessions' per-step energy on the true clock, divided by each charger's efficiency, plus
the chargers' standby draw, times the meter's gain error, read from a cumulative
register a few seconds after each interval edge at the meter's resolution
(``meter_readings``). With ``--noise none`` it is the exact proration (``prorate``).
At microgrid sites the columns balance exactly for what the meter wrote:
``grid_import_kwh + pv_kwh + battery_discharge_kwh = ev_energy_kwh + battery_charge_kwh``
(``pv_kwh`` is the PV energy used on site; surplus is curtailed).
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.generate.clock import iso_s, local_dt, local_iso
from pipeline.generate.network import Site
from pipeline.generate.noise import ChargerNoise, SiteNoise
from pipeline.generate.sessions import STEP_S, Session

INTERVAL_S = 900


def pv_kw(site: Site, t: float, peak_kw: float, cloud: float) -> float:
    """A clear-sky bell between 08:00 and 17:00 local, dimmed by cloud."""
    d = local_dt(t, site.tz)
    h = d.hour + d.minute / 60
    if not 8.0 <= h <= 17.0:
        return 0.0
    return peak_kw * math.sin(math.pi * (h - 8.0) / 9.0) * cloud


def setpoints(site: Site, t0: float, n: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """Per-interval EV dispatch limit (kW) and PV forecast (kW) at a microgrid hub."""
    total_kw = sum(e.max_power_kw for e in site.evses)
    grid_kw = 0.35 * total_kw
    peak = 0.5 * total_kw
    sp, pv = [], []
    cloud = rng.uniform(0.4, 1.0)
    for i in range(n):
        if i % 8 == 0:
            cloud = min(1.0, max(0.2, cloud + rng.uniform(-0.2, 0.2)))
        p = pv_kw(site, t0 + i * INTERVAL_S + 450, peak, cloud)
        pv.append(p)
        sp.append(round(grid_kw + 0.8 * p + 0.1 * total_kw, 1))
    return sp, pv


def prorate(sessions: list[Session], t0: float, n: int) -> list[float]:
    """Wh per interval from every session's steps, split across interval edges."""
    wh = [0.0] * n
    for s in sessions:
        t = s.start_at
        for e in s.steps_wh:
            t1 = min(t + STEP_S, s.stop_at)
            if e:
                a = int((t - t0) // INTERVAL_S)
                edge = t0 + (a + 1) * INTERVAL_S
                if t1 <= edge:
                    if 0 <= a < n:
                        wh[a] += e
                else:
                    part = e * (edge - t) / (t1 - t)
                    if 0 <= a < n:
                        wh[a] += part
                    if 0 <= a + 1 < n:
                        wh[a + 1] += e - part
            t = t1
    return wh


def interval_bounds(sessions: list[Session], samples: dict[str, list[tuple[float, int, int]]],
                    t0: float, n: int) -> tuple[list[float], list[float]]:
    """Least and most Wh the sessions can have drawn in each interval, from what was written about them.

    A reader knows each session's start, its stop (when one was sent), its energy, the
    register at each MeterValues sample (``samples``: as ``ocpp_writer.sample_registers``
    gave them, on the true clock) and its EVSE's published limit. Each register delta lies
    somewhere inside its gap: in an interval overlapping a gap of G s by o s, at least
    max(0, d - P (G - o)) and at most min(d, P o). A session without samples has one gap,
    start..stop, holding its whole energy. A broken sample (rollback) is no evidence: its two
    steps are one gap; a register in the wrong unit leaves no usable sample. A session whose
    stop never came may have drawn anything up to P after its last sample.
    """
    lo = [0.0] * n
    hi = [0.0] * n

    def gap(ta: float, tb: float, d: float | None, p: float) -> None:
        g = tb - ta
        if g <= 0:
            return
        a = max(0, int((ta - t0) // INTERVAL_S))
        b = min(n - 1, int((tb - t0 - 1e-9) // INTERVAL_S))
        for i in range(a, b + 1):
            o = min(tb, t0 + (i + 1) * INTERVAL_S) - max(ta, t0 + i * INTERVAL_S)
            if o <= 0:
                continue
            if d is None:
                hi[i] += p * o
            else:
                hi[i] += min(d, p * o)
                lo[i] += min(d, p * o, max(0.0, d - p * (g - o)))

    for s in sessions:
        p = s.evse.max_power_kw * 1000.0 / 3600.0  # Wh per s
        regs = [(t, r - s.meter_start_wh) for t, r, _ in samples.get(s.gen_id, [])]
        form = s.forms.get("meter_anomaly") if s.has("meter_anomaly") else None
        if form == "unit_confusion":
            regs = []
        elif form == "rollback" and regs:
            del regs[s.extra["rollback_index"]]
        points = [(s.start_at, 0.0), *regs]
        if s.completed:
            points.append((s.stop_at, float(s.energy_wh)))
        for (ta, ca), (tb, cb) in itertools.pairwise(points):
            gap(ta, tb, cb - ca, p)
        if not s.completed:
            gap(points[-1][0], s.stop_at, None, p)
    return lo, hi


def meter_readings(site: Site, sessions: list[Session], t0: float, n: int, noise: SiteNoise,
                   chargers: dict[str, ChargerNoise], rng: random.Random) -> list[float]:
    """kWh per interval as the site meter wrote it (grid side, with its errors)."""
    n_min = n * (INTERVAL_S // 60)
    wh = [0.0] * (n_min + 2)
    for s in sessions:
        w = 1.0 / chargers[s.evse.charge_point_id].efficiency
        t = s.start_at
        for e in s.steps_wh:
            t1 = min(t + STEP_S, s.stop_at)
            if e:
                a = int((t - t0) // 60)
                edge = t0 + (a + 1) * 60
                if t1 <= edge:
                    if 0 <= a <= n_min:
                        wh[a] += e * w
                else:
                    part = e * (edge - t) / (t1 - t)
                    if 0 <= a <= n_min:
                        wh[a] += part * w
                    if 0 <= a + 1 <= n_min:
                        wh[a + 1] += (e - part) * w
            t = t1
    standby_wh_min = sum(chargers[c.charge_point_id].standby_w for c in site.chargers) / 60.0
    cum = [0.0]
    for x in wh:
        cum.append(cum[-1] + (x + standby_wh_min) * noise.ems_gain)
    res = noise.ems_res_kwh
    # A register that has run for years: where its resolution steps fall is arbitrary.
    base_kwh = rng.uniform(0.0, res)

    def reg(i: int) -> int:
        x = i * (INTERVAL_S // 60) + rng.uniform(*noise.ems_read_delay_s) / 60.0
        k = min(int(x), n_min)
        at = cum[k] + (cum[k + 1] - cum[k]) * (x - k)
        return math.floor((base_kwh + at / 1000.0) / res)

    reads = [reg(i) for i in range(n + 1)]
    decimals = max(0, round(-math.log10(res)))
    return [round((reads[i + 1] - reads[i]) * res, decimals) for i in range(n)]


def write_ems(site: Site, t0: float, day_starts: list[tuple[str, int, int]], ev_kwh: list[float],
              sp: list[float], pv_forecast: list[float], tampered: dict[int, float], landing: Path,
              malformed: dict, rng: random.Random) -> None:
    """One file per local day of the meter's ``ev_kwh``; ``tampered`` maps interval index to the EV kWh written instead."""
    d = landing / "ems" / site.site_id
    d.mkdir(parents=True, exist_ok=True)
    mg = site.site_type == "microgrid"
    use_parquet = mg and site.site_no % 2 == 0
    offset_style = site.site_no % 2 == 1
    soc, cap = 0.5, 0.6 * sum(e.max_power_kw for e in site.evses)  # battery kWh
    rate = cap / 2
    cols = ["site_id", "interval_start", "interval_minutes", "ev_energy_kwh", "grid_import_kwh", "pv_kwh",
            "battery_discharge_kwh", "battery_charge_kwh", "ev_setpoint_kw"]
    for day, a, b in day_starts:
        rows = []
        for i in range(a, b):
            t = t0 + i * INTERVAL_S
            # The balance holds for what the meter wrote, even when that disagrees with the sessions.
            ev = tampered.get(i, ev_kwh[i])
            row = [site.site_id, local_iso(t, site.tz) if offset_style else iso_s(t), 15, ev]
            if mg:
                pv_avail = pv_forecast[i] * 0.25
                pv_used = min(pv_avail, ev)
                surplus = pv_avail - pv_used
                bc = min(surplus, rate * 0.25, (1 - soc) * cap)
                deficit = ev - pv_used
                bd = min(deficit * 0.5, rate * 0.25, soc * cap) if deficit > 0 else 0.0
                pv_used, bc, bd = round(pv_used + bc, 4), round(bc, 4), round(bd, 4)
                grid = max(0.0, round(ev + bc - pv_used - bd, 4))
                pv_used = round(ev + bc - bd - grid, 4)
                soc += (bc - bd) / cap
                row += [grid, pv_used, bd, bc, sp[i]]
            else:
                row += [ev, "", "", "", ""]
            rows.append(row)
        if use_parquet:
            table = pa.table({c: [r[j] if r[j] != "" else None for r in rows] for j, c in enumerate(cols)})
            pq.write_table(table, d / f"{day}.parquet")
            continue
        if malformed.get("rate") and rng.random() < malformed["rate"]:
            rows.insert(rng.randrange(len(rows) + 1), [site.site_id, "2026-13-45T25:61:00", "fifteen", "n/a",
                                                       "", "", "", "", ""])
            malformed.setdefault("files", {})[f"ems/{site.site_id}/{day}.csv"] = 1
        with open(d / f"{day}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(cols)
            w.writerows(rows)
