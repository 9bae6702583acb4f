"""Generate one site end to end: sessions, faults, and every source's files.

A site is the unit of work (and of parallelism): its random stream is seeded from
(seed, site number) alone, so output does not depend on worker count or order.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.generate import noise as nz
from pipeline.generate import pricing
from pipeline.generate.backend_writer import backend_row, mark_corrections, write_backend
from pipeline.generate.clock import iso_s, local_dt, local_midnight
from pipeline.generate.ems_writer import (
    INTERVAL_S,
    interval_bounds,
    meter_readings,
    prorate,
    setpoints,
    write_ems,
)
from pipeline.generate.faults import (
    COST_FACTOR_HIGH,
    COST_FACTOR_LOW,
    COST_MIN_VISIBLE,
    DRIFT_S,
    EMS_HIGH,
    EMS_LOW,
    EMS_MIN_INTERVAL_WH,
    EMS_VISIBLE_BANDS,
    ENERGY_KEPT,
    ENERGY_MIN_VISIBLE_KWH,
    ENERGY_MIN_VISIBLE_REL,
    EXCLUSIVE,
    HEARTBEAT_S,
    LATE_STOP_S,
    MALFORMED_FILE_RATE,
    NEEDS_A_TRUSTED_METER,
    NEEDS_CDR,
    NOISE_CREDIT_REISSUE,
    ROLLBACK_WH,
    SESSION_FAULTS,
    SKEW_S,
    SLOW_AUTH_MEDIAN_S,
    SLOW_AUTH_SIGMA,
    FaultRow,
)
from pipeline.generate.network import (
    Site,
    TariffVersion,
    TokenPool,
    expected_sessions_per_evse_day,
    tariff_change_at,
    tariff_in_force,
    tariff_product,
)
from pipeline.generate.ocpi_writer import (
    STUCK_MAX_S,
    STUCK_MIN_S,
    build_cdr,
    cdr_partner,
    cdr_periods,
    publish_locations,
    status_events,
    write_cdrs,
)
from pipeline.generate.ocpp_writer import ChargerFrames, sample_registers
from pipeline.generate.sessions import (
    POWER_HEADROOM,
    Arrival,
    Session,
    build_profile,
    plan_arrivals,
    schedule,
)


@dataclass
class GenConfig:
    """Options of ``chargeline generate``."""

    out: Path
    evses: int = 40
    days: int = 2
    seed: int = 42
    start: dt.date = dt.date(2026, 11, 16)
    fault_rate: float = 0.02
    clean: bool = False
    workers: int = 1
    # "field": every compared value carries field noise (pipeline.generate.noise);
    # "none": the exact series, for unit tests that need equalities.
    noise: str = "field"

    @property
    def landing(self) -> Path:
        return self.out / "landing"


@dataclass
class SiteResult:
    """What a site hands back for the truth files and the manifest."""

    session_rows: list[list] = field(default_factory=list)
    fault_rows: list[list] = field(default_factory=list)
    reject_rows: list[list] = field(default_factory=list)
    sessions: int = 0
    frames: int = 0
    cdrs: int = 0


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate_site(site: Site, cfg: GenConfig, tariffs: dict[str, list[TariffVersion]],
                  tokens: TokenPool) -> SiteResult:
    """Simulate one site over the period and write all of its landing files."""
    rng = random.Random(f"site:{cfg.seed}:{site.site_no}")
    tz = site.tz
    rate = 0.0 if cfg.clean else cfg.fault_rate
    malformed: dict = {"rate": 0.0 if cfg.clean else MALFORMED_FILE_RATE}
    days = [cfg.start + dt.timedelta(days=d) for d in range(cfg.days)]
    midnights = [local_midnight(d, tz) for d in days]
    t0 = midnights[0]
    period_end = local_midnight(cfg.start + dt.timedelta(days=cfg.days), tz)
    n_iv = int((period_end - t0) // INTERVAL_S)
    day_bounds = []
    for d, m in zip(days, [*midnights[1:], period_end], strict=True):
        a = int((local_midnight(d, tz) - t0) // INTERVAL_S)
        day_bounds.append((d.isoformat(), a, int((m - t0) // INTERVAL_S)))
    change = tariff_change_at(cfg.start, cfg.days, tz)
    mg = site.site_type == "microgrid"
    sp, pv = setpoints(site, t0, n_iv, rng) if mg else ([], [])
    n_evse = max(1, len(site.evses))

    def cap(t: float) -> float:
        if not mg:
            return 1e9
        i = int((t - t0) // INTERVAL_S)
        return sp[min(max(i, 0), n_iv - 1)] / n_evse

    on = cfg.noise != "none"
    cdr_practice = cdr_partner(site, on)  # how this site's back office writes CDRs
    # Noise has its own streams, so --noise none and field share one schedule of sessions.
    nrng = random.Random(f"noise:{cfg.seed}:{site.site_no}")
    site_nz = nz.site_noise(nrng, on)
    ch_nz = {ch.charge_point_id: nz.charger_noise(random.Random(f"noise:{cfg.seed}:{ch.charge_point_id}"),
                                                  ch.kind, on)
             for ch in site.chargers}
    res = SiteResult()
    faults: list[FaultRow] = []
    sessions: list[Session] = []
    forced_ids: set[int] = set()
    status_windows: dict[str, tuple[float, float]] = {}
    power_factor: dict[str, float] = {}
    skews: dict[str, float] = {}
    slow_auth: dict[str, float] = {}

    # -- charger and EVSE level faults, decided before the schedule they shape -----
    for ch in site.chargers:
        if rng.random() < rate:
            skews[ch.charge_point_id] = rng.choice((-1, 1)) * nz.log_uniform(rng, *SKEW_S)
        if rng.random() < rate:
            slow_auth[ch.charge_point_id] = nz.log_uniform(rng, *SLOW_AUTH_MEDIAN_S)
        for e in ch.evses:
            if site.published and rng.random() < rate:
                day = rng.randrange(cfg.days)
                w0 = float(int(midnights[day] + rng.uniform(1.0, 2.5) * 3600))
                # a stuck map status from just over 20 min to hours (one draw, as before)
                span = math.exp(rng.uniform(math.log(STUCK_MIN_S), math.log(STUCK_MAX_S)))
                status_windows[e.evse_uid] = (w0, w0 + int(span))
            if site.published and e.registry_power_known and rng.random() < rate:
                power_factor[e.evse_uid] = rng.choice((2.0, 0.5))

    pool = tokens.fleet if site.site_type == "fleet" else tokens.public
    for ch in site.chargers:
        for e in ch.evses:
            arrivals = plan_arrivals(site.site_type, ch.kind, midnights, rng)
            p_span = rate * expected_sessions_per_evse_day(site.site_type, ch.kind) * cfg.days
            if rng.random() < min(1.0, p_span):
                if ch.kind == "DC":
                    arrivals.append(Arrival(change - rng.uniform(240, 420), None, rng.uniform(30e3, 55e3),
                                            100.0, forced=True))
                else:
                    arrivals.append(Arrival(change - rng.uniform(600, 3000), rng.uniform(1.5, 3) * 3600,
                                            rng.uniform(10e3, 25e3), 11.0, forced=True))
            blocked = [status_windows[e.evse_uid]] if e.evse_uid in status_windows else []
            prev_stop = 0.0
            for a in schedule(arrivals, blocked, change, period_end):
                plug = float(int(a.at))
                if plug < prev_stop + 120:
                    continue
                planted: list[str] = ["tariff_changed_during_session"] if a.forced else []
                for cls in SESSION_FAULTS:
                    # each class independently: several faults on one session at the rate
                    # their independence gives (about rate^2 per pair), unless they exclude
                    if rng.random() < rate and not any(cls in g and g & set(planted) for g in EXCLUSIVE):
                        planted.append(cls)
                needy, trusted = NEEDS_A_TRUSTED_METER
                if needy in planted and trusted <= set(planted):
                    planted.remove(needy)
                token = rng.choice(pool)
                forms: dict[str, str] = {}
                auth_at = None
                calls: list[tuple[float, float | None]] = []
                base_latency = rng.uniform(0.1, 0.8)
                cp = ch.charge_point_id
                if cp in slow_auth:
                    latency = slow_auth[cp] * (math.exp(nrng.gauss(0.0, SLOW_AUTH_SIGMA)) if on else 1.0)
                else:
                    latency = nz.auth_latency(nrng) if on else base_latency
                if "token_invalid" in planted:
                    forms["token_invalid"] = rng.choice(("revoked", "unknown"))
                    token = rng.choice(tokens.revoked) if forms["token_invalid"] == "revoked" else (
                        f"{rng.getrandbits(56):014X}", token[1], token[2], token[3] + "-X")
                    start = plug + rng.uniform(5, 30)
                elif rng.random() < 0.9:
                    auth_at = plug + (rng.uniform(2, 6) if site.site_type == "fleet" else rng.uniform(5, 40))
                    asked = auth_at
                    if on and nrng.random() < site_nz.auth_unanswered_p:
                        # never answered: the charger times out and asks again
                        calls.append((asked, None))
                        asked += nrng.uniform(*nz.AUTH_TIMEOUT_S)
                    calls.append((asked, latency))
                    # Fleet chargers time out fast: the start follows the answer within seconds.
                    start = asked + latency + (rng.uniform(1, 3) if site.site_type == "fleet"
                                               else rng.uniform(2, 20))
                else:
                    start = plug + rng.uniform(5, 30)
                start = float(int(start) + 1)
                stop = float(int(plug + a.dwell_s)) if a.dwell_s is not None else None
                if stop is not None and stop < start + 300:
                    continue
                # Power stays under the EVSE's limit (POWER_HEADROOM); AC cars taper the last
                # 5-15 % of their need, then stop charging and stay plugged in.
                pmax = min(e.max_power_kw * rng.uniform(*POWER_HEADROOM), a.car_kw)
                ac_taper = 0.0 if ch.kind == "DC" else rng.uniform(0.05, 0.15)
                steps, powers, ce, stop_at = build_profile(
                    start, stop, a.need_wh, pmax, ch.kind == "DC", cap, rng, ac_taper=ac_taper)
                stop_at = float(int(stop_at))
                spans = start < change < stop_at
                if not a.forced and (spans or stop_at > period_end - 60 or any(
                        plug < w1 and stop_at > w0 for w0, w1 in blocked)):
                    continue
                if a.forced and not spans:
                    continue
                s = Session(gen_id="", evse=e, charger=ch, plug_at=plug, start_at=start, charge_end_at=float(ce),
                            stop_at=stop_at, steps_wh=steps, power_w=powers, token=token, auth_at=auth_at,
                            auth_calls=calls, faults=planted, forms=forms)
                if s.has("stale_tariff") and start < change:
                    s.drop("stale_tariff")
                if a.forced:
                    forced_ids.add(id(s))
                sessions.append(s)
                prev_stop = stop_at

    sessions.sort(key=lambda s: (s.start_at, s.evse.evse_uid))
    for k, s in enumerate(sessions, start=1):
        s.gen_id = f"G{site.site_no:05d}-{k:05d}"
        s.tx_id = _uuid(rng) if s.charger.ocpp_version == "2.0.1" else str(site.site_no * 100_000 + k)
        s.backend_id = f"BK-{rng.getrandbits(48):012x}"
        s.ocpi_session_id = _uuid(rng)
        s.cdr_id = f"CDR-{site.site_no:05d}-{k:05d}"
        s.tariff = tariff_in_force(tariffs[f"{site.country}-{tariff_product(site, s.charger)}"], s.start_at)
        if s.has("meter_anomaly"):
            iv = ch_nz[s.charger.charge_point_id].mv_interval_s
            n_samples = 0 if iv is None else math.ceil((s.stop_at - s.start_at - 1e-6) / iv) - 1
            if n_samples < 2:
                # No samples to carry a broken register (a charger without MeterValues).
                s.drop("meter_anomaly")
            else:
                form = "rollback" if n_samples >= 6 and rng.random() < 0.5 else "unit_confusion"
                s.forms["meter_anomaly"] = form
                if form == "rollback":
                    s.extra["rollback_index"] = rng.randrange(2, n_samples - 2)
                    s.extra["rollback_wh"] = int(nz.log_uniform(rng, *ROLLBACK_WH))
        if s.has("incomplete_session"):
            # No stop: the stop record was lost, but the connector's Available status still
            # arrives, so anyone reading the frames sees a car gone with its session open.
            form = rng.choice(("no_stop", "late_stop"))
            s.forms["incomplete_session"] = form
            if form == "late_stop":
                s.extra["late_s"] = nz.log_uniform(rng, *LATE_STOP_S)

    # -- meter registers: per EVSE, cumulative or reset per transaction; reset on reboot
    reboot_at: dict[str, float] = {}
    by_evse: dict[str, list[Session]] = {}
    for s in sessions:
        by_evse.setdefault(s.evse.evse_uid, []).append(s)
    for ch in site.chargers:
        if ch.reboot_midday:
            t = midnights[0] + rng.uniform(12, 14) * 3600
            if not any(s.plug_at - 120 < t < s.stop_at + 120 for e in ch.evses for s in by_evse.get(e.evse_uid, [])):
                reboot_at[ch.charge_point_id] = t
        for e in ch.evses:
            reg = ch.register_wh + e.connector_id * 7777
            rb = reboot_at.get(ch.charge_point_id)
            for s in by_evse.get(e.evse_uid, []):
                if rb is not None and s.start_at > rb:
                    reg, rb = 0, None
                if ch.register_mode == "per_transaction":
                    reg = 0
                s.meter_start_wh = reg
                reg += s.energy_wh

    # -- CDRs and backend rows ------------------------------------------------------
    cdrs_by_day: dict[str, list[dict]] = {}
    backend_by_day: dict[str, list[dict]] = {}
    for s in sessions:
        day = local_dt(s.start_at, tz).date().isoformat()
        versions = tariffs[s.tariff.tariff_id]
        billed_amount = None
        if s.completed:
            periods = cdr_periods(s, s.tariff.obj, tz)
            bd = pricing.price(s.tariff.obj, periods)
            s.total_cost_excl = bd.total_excl
            billed_amount = bd.total_excl
            issued = s.stop_at + s.extra.get("late_s", 0.0) + rng.uniform(300, 3600)
            cdrs: list[dict] = []
            cut = _energy_cut(s, rng) if s.has("energy_mismatch") else None
            if s.has("energy_mismatch") and cut is None:
                s.drop("energy_mismatch")  # too small a session to lose visibly
            if s.has("cost_mismatch"):
                high = rng.random() < 0.7
                factor = nz.log_uniform(rng, *(COST_FACTOR_HIGH if high else COST_FACTOR_LOW))
                ex, inc = bd.costs["ENERGY"]
                wrong = pricing.cents(ex * factor)
                if abs(wrong - ex) < COST_MIN_VISIBLE:
                    s.drop("cost_mismatch")  # a cheap session: the error is inside rounding
            if s.has("missing_cdr"):
                pass
            elif s.has("stale_tariff"):
                old = versions[s.tariff.version - 2]
                op = cdr_periods(s, old.obj, tz)
                obd = pricing.price(old.obj, op)
                cdrs.append(build_cdr(site, s, old.obj, op, obd.cdr_fields(), s.cdr_id, issued, partner=cdr_practice))
                billed_amount = obd.total_excl
                s.details["stale_tariff"] = (
                    f"CDR priced with {old.tariff_id} v{old.version} (last_updated "
                    f"{old.obj['last_updated']}) although v{s.tariff.version} was in force at start; "
                    f"billed {obd.total_excl:.2f} vs {bd.total_excl:.2f}")
            elif s.has("cost_mismatch"):
                ex, inc = bd.costs["ENERGY"]
                bd.costs["ENERGY"] = (pricing.cents(ex * factor), pricing.cents(inc * factor))
                f = bd.cdr_fields()
                cdrs.append(build_cdr(site, s, s.tariff.obj, periods, f, s.cdr_id, issued, partner=cdr_practice))
                billed_amount = bd.total_excl
                s.details["cost_mismatch"] = (
                    f"energy cost multiplied by {factor:.3f}: CDR total {bd.total_excl:.2f} vs "
                    f"{s.total_cost_excl:.2f} under the right tariff")
            elif s.has("energy_mismatch"):
                truncated = [wh if i < cut else 0 for i, wh in enumerate(s.steps_wh)]
                tp = cdr_periods(s, s.tariff.obj, tz, truncated)
                tbd = pricing.price(s.tariff.obj, tp)
                cdrs.append(build_cdr(site, s, s.tariff.obj, tp, tbd.cdr_fields(), s.cdr_id, issued, partner=cdr_practice))
                billed_amount = tbd.total_excl
                s.details["energy_mismatch"] = (
                    f"CDR energy truncated at a lost meter reading: {sum(truncated) / 1000:.3f} kWh "
                    f"vs {s.energy_wh / 1000:.3f} kWh metered (CDR priced on the truncated energy)")
            else:
                cdr = build_cdr(site, s, s.tariff.obj, periods, bd.cdr_fields(), s.cdr_id, issued, partner=cdr_practice)
                if not s.faults and rng.random() < NOISE_CREDIT_REISSUE:
                    # Billed wrong, credited, re-issued right: not a duplicate, not a mismatch.
                    wrong = json.loads(json.dumps(cdr))
                    wrong["total_cost"] = {k: pricing.cents(v * 1.2) for k, v in cdr["total_cost"].items()}
                    credit = json.loads(json.dumps(wrong))
                    credit.update(id=s.cdr_id + "-CR", credit=True, credit_reference_id=s.cdr_id,
                                  last_updated=iso_s(issued + 86400))
                    cdr["id"] = s.cdr_id + "-R1"
                    cdr["last_updated"] = iso_s(issued + 86400 + 60)
                    s.cdr_id = cdr["id"]
                    cdrs += [wrong, credit, cdr]
                else:
                    cdrs.append(cdr)
            if s.has("duplicate_cdr") and cdrs:
                # whatever was billed (also a wrongly priced CDR) is sent again
                dup = json.loads(json.dumps(cdrs[-1]))
                dup["id"] = f"CDR-{site.site_no:05d}-D{rng.getrandbits(24):06x}"
                dup["last_updated"] = iso_s(issued + rng.uniform(600, 7200))
                s.extra["dup_id"] = dup["id"]
                cdrs.append(dup)
                s.details["duplicate_cdr"] = f"CDR {cdrs[-2]['id']} sent again as {dup['id']}; both live, neither credited"
            if not cdrs:
                s.cdr_id = ""
            cdrs_by_day.setdefault(day, []).extend(cdrs)
        else:
            s.cdr_id = ""
        if not s.has("missing_backend_session"):
            started = s.start_at
            if s.has("timestamp_drift"):
                shift = rng.choice((-1, 1)) * nz.log_uniform(rng, *DRIFT_S)
                if shift > 0 and s.stop_at is not None and started + shift > s.stop_at - 300:
                    # a later start past the stop is a different fault (stop before start):
                    # drift backwards instead so the row stays a valid session.
                    shift = -shift
                started += shift
                s.details["timestamp_drift"] = f"backend started_at shifted by {shift / 60:+.1f} min from the OCPP start"
            stopped = energy = None
            if on:
                # The CSMS clock when it processed the messages, cut as the export cuts it;
                # the billing meter's read, not the OCPP register.
                started = nz.truncate_time(started + nrng.uniform(*nz.BACKEND_RECORD_DELAY_S), site_nz.time_res)
                stopped = nz.truncate_time(s.stop_at + nrng.uniform(*nz.BACKEND_RECORD_DELAY_S), site_nz.time_res)
                energy = s.energy_wh * (1.0 + ch_nz[s.charger.charge_point_id].billing_offset)
            row = backend_row(s, started, billed_amount, s.cdr_id, stopped, energy)
            if on and row["energy_wh"] is not None:
                row["prelim_energy_wh"] = row["energy_wh"] * nrng.uniform(*nz.PRELIM_ENERGY)
            backend_by_day.setdefault(day, []).append(row)
        else:
            s.backend_id = ""

    # -- orphan CDRs: billed sessions no other system knows ----------------------------
    orphans: list[Session] = []
    for _ in range(len(sessions)):
        if rng.random() >= rate:
            continue
        e = rng.choice(site.evses)
        busy = by_evse.get(e.evse_uid, [])
        for _ in range(10):
            start = float(int(rng.uniform(t0 + 3600, period_end - 4 * 3600)))
            dur = float(int(rng.uniform(1800, 5400)))
            if not any(start - 600 < b.stop_at and start + dur + 600 > b.plug_at for b in busy):
                break
        else:
            continue
        steps, powers, ce, stop_at = build_profile(start, start + dur, 1e9, min(7.0, e.max_power_kw * 0.99),
                                                   False, lambda _t: 1e9, rng)
        ch = next(c for c in site.chargers if c.charge_point_id == e.charge_point_id)
        o = Session(gen_id=f"G{site.site_no:05d}-O{len(orphans) + 1:04d}", evse=e, charger=ch, plug_at=start,
                    start_at=start, charge_end_at=ce, stop_at=stop_at, steps_wh=steps, power_w=powers,
                    token=rng.choice(pool), auth_at=start, faults=["orphan_cdr"])
        o.ocpi_session_id = _uuid(rng)
        o.cdr_id = f"CDR-{site.site_no:05d}-X{rng.getrandbits(24):06x}"
        tv = tariff_in_force(tariffs[f"{site.country}-{tariff_product(site, ch)}"], start)
        op = cdr_periods(o, tv.obj, tz)
        obd = pricing.price(tv.obj, op)
        o.total_cost_excl = obd.total_excl
        day = local_dt(start, tz).date().isoformat()
        cdrs_by_day.setdefault(day, []).append(
            build_cdr(site, o, tv.obj, op, obd.cdr_fields(), o.cdr_id, stop_at + rng.uniform(300, 3600), partner=cdr_practice))
        o.details["orphan_cdr"] = f"CDR for {o.energy_wh / 1000:.3f} kWh on {e.evse_uid} with no OCPP transaction and no backend row"
        orphans.append(o)
    for rows in cdrs_by_day.values():
        rows.sort(key=lambda c: (c["last_updated"], c["id"]))

    # -- OCPP frames per charger ------------------------------------------------------
    received_status: dict[str, list[tuple[float, str]]] = {}
    for ch in site.chargers:
        cn = ch_nz[ch.charge_point_id]
        frames = ChargerFrames(ch, random.Random(f"frames:{cfg.seed}:{ch.charge_point_id}"),
                               skews.get(ch.charge_point_id, 0.0), cn.clock_offset_s, cn.mv_interval_s)
        conns = [e.connector_id for e in ch.evses]
        boot = t0 + frames.rng.uniform(30, 900)
        frames.boot(boot, conns, ch.boot_1970)
        rb = reboot_at.get(ch.charge_point_id)
        t = boot + 1800
        while t < period_end:
            if rb is None or abs(t - rb) > 60:
                frames.heartbeat(t)
            t += 1800
        if rb is not None:
            frames.boot(rb, conns, False)
        for e in ch.evses:
            if e.evse_uid in status_windows:
                w0, w1 = status_windows[e.evse_uid]
                frames.status(w0, e.connector_id, "Faulted", "GroundFailure")
                frames.status(w1, e.connector_id, "Available")
            for s in by_evse.get(e.evse_uid, []):
                frames.session(s, rng)
        frames.write(cfg.landing / "ocpp", site.site_id, tz, malformed, cfg.landing)
        for c, evs in status_events(frames.lines, ch.ocpp_version == "2.0.1").items():
            received_status.update({e.evse_uid: evs for e in ch.evses if e.connector_id == c})
        res.frames += frames.frames
        if ch.charge_point_id in skews and skew_visible(skews[ch.charge_point_id], frames.stamped_span):
            faults.append(FaultRow("charger_clock_skew", site.site_id, charge_point_id=ch.charge_point_id,
                                   detail=f"all payload timestamps {skews[ch.charge_point_id]:+.0f} s off the "
                                          "CSMS clock (received_at correct); backend uses CSMS time"))
        # One slow answer could be one network hiccup: a charger is slow when its answers
        # repeat it beyond what the normal tail of answers explains.
        if ch.charge_point_id in slow_auth and frames.auth_latencies and frames.auth_count >= slow_auth_min_calls(
                min(frames.auth_latencies)):
            faults.append(FaultRow("auth_latency", site.site_id, charge_point_id=ch.charge_point_id,
                                   detail=f"Authorize answered after {min(frames.auth_latencies):.1f}-"
                                          f"{max(frames.auth_latencies):.1f} s (median "
                                          f"{slow_auth[ch.charge_point_id]:.1f} s; {frames.auth_count} answered calls)"))

    # -- backend, CDRs, EMS, locations ------------------------------------------------
    partner = site.site_type == "fleet" and site.site_no == 2
    mode = "partner" if partner else ("parquet" if site.site_no % 5 == 4 else "csv")
    brng = random.Random(f"backend-resend:{cfg.seed}:{site.site_no}")
    for day in sorted(backend_by_day):
        mark_corrections(backend_by_day[day], brng, site_nz, site_nz.resend_file_p)
    day_ends = {d: m for (d, _a, _b), m in zip(day_bounds, [*midnights[1:], period_end], strict=True)}
    write_backend(backend_by_day, site.site_id, mode, tz, cfg.landing, malformed, site_nz, day_ends)
    res.cdrs = write_cdrs(cdrs_by_day, site, cfg.landing, malformed)

    ev_wh = prorate(sessions, t0, n_iv)
    if on:
        ev_kwh = meter_readings(site, sessions, t0, n_iv, site_nz, ch_nz, nrng)
    else:
        ev_kwh = [round(wh / 1000.0, 4) for wh in ev_wh]
    standby_kwh = sum((nz.STANDBY_W_DC if c.kind == "DC" else nz.STANDBY_W_AC)[1] for c in site.chargers) * 0.25 / 1000
    # What the written data bounds: the least and most each interval's sessions can have drawn.
    samples = {s.gen_id: sample_registers(s, ch_nz[s.charger.charge_point_id].mv_interval_s) for s in sessions}
    least_wh, most_wh = interval_bounds(sessions, samples, t0, n_iv)
    dc_least, dc_most = interval_bounds([s for s in sessions if s.charger.kind == "DC"], samples, t0, n_iv)
    # EVSE power that may flow at an interval's edges: the meter's read delay moves its energy
    # (any session in its window may be drawing then, as far as the data shows)
    active_kw = [0.0] * n_iv
    for s in sessions:
        a = max(0, int((s.start_at - t0) // INTERVAL_S))
        b = min(n_iv - 1, int((s.stop_at - t0) // INTERVAL_S))
        for i in range(a, b + 1):
            active_kw[i] += s.evse.max_power_kw
    tampered: dict[int, float] = {}
    for i, wh in enumerate(ev_wh):
        if wh > EMS_MIN_INTERVAL_WH and rng.random() < rate:
            form = rng.choice(("high", "low", "dropout"))
            factor = rng.uniform(*(EMS_HIGH if form == "high" else EMS_LOW))
            true = round(wh / 1000, 4)
            honest = ev_kwh[i]
            least, most = least_wh[i] / 1000.0, most_wh[i] / 1000.0
            # A tamper is a fault only where the data shows it: outside what any distribution
            # of the sessions' energy the written evidence allows, widened by the field's noise
            # on that side, by EMS_VISIBLE_BANDS bands. It is planted where it shows: a low
            # reading (or dropout) that the bounds could explain becomes a high one.
            band_lo = ems_noise_band(least, dc_least[i] / 1000.0, standby_kwh, active_kw[i])
            band_hi = ems_noise_band(most, dc_most[i] / 1000.0, standby_kwh, active_kw[i])
            floor_lo = math.floor((least - EMS_VISIBLE_BANDS * band_lo) * 1e4) / 1e4
            floor_hi = math.ceil((most + EMS_VISIBLE_BANDS * band_hi) * 1e4) / 1e4
            if form != "high" and floor_lo <= 0:
                form, factor = "high", EMS_HIGH[0] + (factor - EMS_LOW[0]) / (EMS_LOW[1] - EMS_LOW[0]) * (
                    EMS_HIGH[1] - EMS_HIGH[0])
            if form == "high":
                val, band = max(round(honest * factor, 4), floor_hi), band_hi
            elif form == "low":
                val, band = min(round(honest * factor, 4), floor_lo), band_lo
            else:
                val, band = 0.0, band_lo
            tampered[i] = val
            faults.append(FaultRow("energy_attribution_mismatch", site.site_id,
                                   interval_start=iso_s(t0 + i * INTERVAL_S),
                                   detail=f"EMS ev_energy_kwh {val:.4f} vs {true:.4f} from the sessions ({form}; "
                                          f"they can have drawn {least:.4f}..{most:.4f}, the meter read "
                                          f"{honest:.4f}, noise band {band:.4f})"))
    write_ems(site, t0, day_bounds, ev_kwh, sp, pv, tampered, cfg.landing, malformed, rng)

    if site.published:
        power = {e.evse_uid: int(e.max_power_kw * 1000 * factor) for e in site.evses
                 for factor in [power_factor.get(e.evse_uid, 1.0)]}
        tariff_ids = {e.evse_uid: f"{site.country}-{tariff_product(site, ch)}" for ch in site.chargers for e in ch.evses}
        episodes = publish_locations(site, cfg.landing, t0, midnights, period_end, received_status, by_evse,
                                     status_windows, power, tariff_ids,
                                     random.Random(f"ocpi:{cfg.seed}:{site.site_no}"), allow_visible=not cfg.clean)
        for ep in episodes:
            e = next(x for x in site.evses if x.evse_uid == ep.evse_uid)
            why = ("the CPO's OCPI state never took the change (stuck map status)" if ep.cause == "stuck"
                   else "the push that carried the change was lost; a later push or the nightly pull corrected it")
            faults.append(FaultRow("status_mismatch", site.site_id, charge_point_id=e.charge_point_id,
                                   evse_uid=ep.evse_uid, interval_start=iso_s(ep.start),
                                   detail=f"OCPP {ep.ocpp_status} for {(ep.end - ep.start) / 60:.0f} min while the "
                                          f"map showed {ep.map_status}: {why}"))
        for uid, factor in power_factor.items():
            e = next(x for x in site.evses if x.evse_uid == uid)
            faults.append(FaultRow("capability_mismatch", site.site_id, charge_point_id=e.charge_point_id,
                                   evse_uid=uid, detail=f"OCPI max_electric_power {e.max_power_kw * factor:.1f} kW "
                                                        f"vs registry {e.max_power_kw:.1f} kW"))

    # -- truth ---------------------------------------------------------------------------
    for s in sessions:
        res.session_rows.append([
            s.gen_id, site.site_id, s.evse.charge_point_id, s.evse.connector_id, s.evse.evse_uid, s.tx_id,
            s.backend_id, s.ocpi_session_id, s.cdr_id, iso_s(s.start_at),
            iso_s(s.stop_at) if s.completed else "", f"{s.energy_wh / 1000:.3f}", "EUR",
            "" if s.total_cost_excl is None else f"{s.total_cost_excl:.2f}"])
        for f in s.faults:
            if f in NEEDS_CDR and not s.completed:
                continue
            cdr_id = {"duplicate_cdr": s.extra.get("dup_id", ""), "missing_cdr": ""}.get(f, s.cdr_id)
            faults.append(FaultRow(f, site.site_id, gen_session_id=s.gen_id, charge_point_id=s.evse.charge_point_id,
                                   evse_uid=s.evse.evse_uid, ocpp_transaction_id=s.tx_id,
                                   backend_session_id=s.backend_id, cdr_id=cdr_id,
                                   detail=s.details.get(f) or _detail(s, f, change)))
    for o in orphans:
        res.session_rows.append([o.gen_id, site.site_id, o.evse.charge_point_id, o.evse.connector_id,
                                 o.evse.evse_uid, "", "", o.ocpi_session_id, o.cdr_id, iso_s(o.start_at),
                                 iso_s(o.stop_at), f"{o.energy_wh / 1000:.3f}", "EUR", f"{o.total_cost_excl:.2f}"])
        faults.append(FaultRow("orphan_cdr", site.site_id, gen_session_id=o.gen_id, charge_point_id=o.evse.charge_point_id,
                               evse_uid=o.evse.evse_uid, cdr_id=o.cdr_id, detail=o.details["orphan_cdr"]))
    res.fault_rows = [f.as_list() for f in faults]
    res.reject_rows = [[p.split("/", 1)[0], p, n] for p, n in sorted(malformed.get("files", {}).items())]
    res.sessions = len(sessions)
    return res


def _detail(s: Session, f: str, change: float) -> str:
    form = s.forms.get(f, "")
    if f == "tariff_changed_during_session":
        return f"session {iso_s(s.start_at)}..{iso_s(s.stop_at)} spans the tariff change at {iso_s(change)}; CDR priced with the version in force at start"
    if f == "missing_cdr":
        return "completed, billable session; no CDR was issued"
    if f == "missing_backend_session":
        return "OCPP transaction and CDR exist; the backend export has no row for it"
    if f == "meter_anomaly":
        if form == "unit_confusion":
            return "MeterValues energy register sent in kWh but labelled Wh (unit confusion)"
        return (f"register rolled back by {s.extra['rollback_wh']} Wh at sample {s.extra['rollback_index'] + 1} "
                "mid-transaction")
    if f == "incomplete_session":
        if form == "no_stop":
            return ("no StopTransaction/TransactionEvent Ended ever received (the connector reported Available); "
                    "backend row still ACTIVE")
        return f"stop only recovered from the offline queue, received {s.extra['late_s'] / 3600:.1f} h late"
    if f == "token_invalid":
        return f"token {s.token[0]} {'revoked in the token snapshot' if form == 'revoked' else 'unknown to the token snapshot'}; charged via local authorization"
    return f


def _energy_cut(s: Session, rng: random.Random) -> int | None:
    """Step from which a CDR loses the session's energy, or None if no visible loss fits.

    The kept share is drawn from ``ENERGY_KEPT``, then lowered until the loss is clear of
    the sources' honest differences (``ENERGY_MIN_VISIBLE_*``).
    """
    total = s.energy_wh
    lost = max(ENERGY_MIN_VISIBLE_KWH * 1000.0, ENERGY_MIN_VISIBLE_REL * total)
    kept_max = min(rng.uniform(*ENERGY_KEPT) * total, total - lost)
    if kept_max < ENERGY_KEPT[0] * total:
        return None
    cum = 0
    for i, wh in enumerate(s.steps_wh):
        if cum + wh > kept_max:
            return i
        cum += wh
    return None


def ems_noise_band(session_kwh: float, dc_kwh: float, standby_kwh: float, active_kw: float = 0.0) -> float:
    """The most the field's noise (``pipeline.generate.noise``) moves an EMS interval off its sessions.

    Worst-case meter error on the whole, conversion loss on the DC share and cable loss on
    the AC share, the site's standby draw, a resolution step at each of two reads, and the
    energy the EVSEs charging in it (``active_kw``, their limits) draw in the read delay at
    each edge.
    """
    ac_kwh = max(0.0, session_kwh - dc_kwh)
    return (nz.EMS_GAIN_ERROR[1] * session_kwh + (1.0 / nz.DC_EFFICIENCY[0] - 1.0) * dc_kwh
            + (1.0 / nz.AC_EFFICIENCY[0] - 1.0) * ac_kwh + standby_kwh
            + 2 * max(r for r, _ in nz.EMS_RESOLUTION_KWH)
            + 2 * nz.EMS_READ_DELAY_S[1] / 3600.0 * active_kw / (1.0 - nz.EMS_GAIN_ERROR[1]))


def slow_auth_min_calls(floor_s: float, chargers: int = 1000) -> int:
    """Answered Authorize calls that tell a slow charger from the normal tail of answers.

    Repetition is what makes a charger slow (one answer is one event), so at least three:
    the field's long tail (remote whitelist lookups, a retry after an unanswered call) puts
    two late answers on a few healthy chargers of a network every night, and field tails
    have no ceiling that would let the size of two answers tell them apart. And as many as
    make it unlikely (< 5 %) that normal answers slower than ``floor_s`` (the slow charger's
    quickest) fall that often on one of ``chargers`` chargers.
    """
    p = nz.auth_tail_p(floor_s)
    k = 3
    while chargers * p ** k > 0.05 and k < 50:
        k += 1
    return k


def skew_visible(skew_s: float, stamped_span: tuple[float, float] | None) -> bool:
    """Whether a charger clock ``skew_s`` off shows in its stamped frames.

    A stamp ahead of the CSMS receive time can only be the clock: one stamped frame shows
    it. A stamp behind may have sat in an offline queue, unless stamped frames kept arriving
    online at least a heartbeat interval apart (``stamped_span``: first and last receipt).
    """
    if stamped_span is None:
        return False
    return skew_s > 0 or stamped_span[1] - stamped_span[0] >= HEARTBEAT_S
