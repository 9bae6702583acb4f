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

from pipeline.generate import pricing
from pipeline.generate.backend_writer import backend_row, write_backend
from pipeline.generate.clock import iso_s, local_dt, local_midnight
from pipeline.generate.ems_writer import INTERVAL_S, prorate, setpoints, write_ems
from pipeline.generate.faults import (
    EMS_MIN_VISIBLE_KWH,
    MALFORMED_FILE_RATE,
    MIN_SKEW_FRAMES,
    MIN_SLOW_AUTH_CALLS,
    NEEDS_CDR,
    NO_STOP_VISIBLE_S,
    NOISE_CREDIT_REISSUE,
    SESSION_FAULTS,
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
    cdr_periods,
    publish_locations,
    status_events,
    write_cdrs,
)
from pipeline.generate.ocpp_writer import ChargerFrames
from pipeline.generate.sessions import Arrival, Session, build_profile, plan_arrivals, schedule


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
            skews[ch.charge_point_id] = rng.choice((-1, 1)) * rng.uniform(180, 1200)
        if rng.random() < rate:
            slow_auth[ch.charge_point_id] = rng.uniform(8, 30)
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
                fault = None
                if a.forced:
                    fault = "tariff_changed_during_session"
                else:
                    for cls in SESSION_FAULTS:
                        if rng.random() < rate:
                            fault = cls
                            break
                token = rng.choice(pool)
                form = ""
                auth_at = None
                latency = slow_auth.get(ch.charge_point_id, rng.uniform(0.1, 0.8))
                if fault == "token_invalid":
                    form = rng.choice(("revoked", "unknown"))
                    token = rng.choice(tokens.revoked) if form == "revoked" else (
                        f"{rng.getrandbits(56):014X}", token[1], token[2], token[3] + "-X")
                    start = plug + rng.uniform(5, 30)
                elif rng.random() < 0.9:
                    auth_at = plug + (rng.uniform(2, 6) if site.site_type == "fleet" else rng.uniform(5, 40))
                    # Fleet chargers time out fast: the start follows the answer within seconds.
                    start = auth_at + latency + (rng.uniform(1, 3) if site.site_type == "fleet"
                                                 else rng.uniform(2, 20))
                else:
                    start = plug + rng.uniform(5, 30)
                start = float(int(start) + 1)
                stop = float(int(plug + a.dwell_s)) if a.dwell_s is not None else None
                if stop is not None and stop < start + 300:
                    continue
                steps, powers, ce, stop_at = build_profile(
                    start, stop, a.need_wh, min(e.max_power_kw, a.car_kw), ch.kind == "DC", cap, rng)
                stop_at = float(int(stop_at))
                spans = start < change < stop_at
                if not a.forced and (spans or stop_at > period_end - 60 or any(
                        plug < w1 and stop_at > w0 for w0, w1 in blocked)):
                    continue
                if a.forced and not spans:
                    continue
                s = Session(gen_id="", evse=e, charger=ch, plug_at=plug, start_at=start, charge_end_at=float(ce),
                            stop_at=stop_at, steps_wh=steps, power_w=powers, token=token, auth_at=auth_at,
                            auth_latency_s=latency, fault=fault, form=form)
                if fault == "stale_tariff" and start < change:
                    s.fault = None
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
        if s.fault == "meter_anomaly":
            n_samples = int((s.stop_at - s.start_at - 1) // 60)
            s.form = "rollback" if n_samples >= 6 and rng.random() < 0.5 else "unit_confusion"
            if s.form == "rollback":
                s.extra["rollback_index"] = rng.randrange(2, n_samples - 2)
                s.extra["rollback_wh"] = rng.randint(800, 3000)
        elif s.fault == "incomplete_session":
            s.form = rng.choice(("no_stop", "late_stop"))
            if s.form == "no_stop" and s.stop_at > period_end - NO_STOP_VISIBLE_S:
                # Its samples run into the end of the data: it looks like a session still
                # charging, which no one could call incomplete yet. A late stop is visible.
                s.form = "late_stop"
            if s.form == "late_stop":
                s.extra["late_s"] = rng.uniform(2, 6) * 3600

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
            if s.fault == "missing_cdr":
                pass
            elif s.fault == "stale_tariff":
                old = versions[s.tariff.version - 2]
                op = cdr_periods(s, old.obj, tz)
                obd = pricing.price(old.obj, op)
                cdrs.append(build_cdr(site, s, old.obj, op, obd.cdr_fields(), s.cdr_id, issued))
                billed_amount = obd.total_excl
                s.detail = (f"CDR priced with {old.tariff_id} v{old.version} (last_updated "
                            f"{old.obj['last_updated']}) although v{s.tariff.version} was in force at start; "
                            f"billed {obd.total_excl:.2f} vs {bd.total_excl:.2f}")
            elif s.fault == "cost_mismatch":
                f = bd.cdr_fields()
                factor = rng.uniform(1.1, 1.3)
                ex, inc = bd.costs["ENERGY"]
                bd.costs["ENERGY"] = (pricing.cents(ex * factor), pricing.cents(inc * factor))
                f = bd.cdr_fields()
                cdrs.append(build_cdr(site, s, s.tariff.obj, periods, f, s.cdr_id, issued))
                billed_amount = bd.total_excl
                s.detail = (f"energy cost multiplied by {factor:.3f}: CDR total {bd.total_excl:.2f} vs "
                            f"{s.total_cost_excl:.2f} under the right tariff")
            elif s.fault == "energy_mismatch":
                charging = [i for i, wh in enumerate(s.steps_wh) if wh]
                cut = charging[int(len(charging) * rng.uniform(0.55, 0.8))] if len(charging) > 2 else 0
                truncated = [wh if i < cut else 0 for i, wh in enumerate(s.steps_wh)]
                tp = cdr_periods(s, s.tariff.obj, tz, truncated)
                tbd = pricing.price(s.tariff.obj, tp)
                cdrs.append(build_cdr(site, s, s.tariff.obj, tp, tbd.cdr_fields(), s.cdr_id, issued))
                billed_amount = tbd.total_excl
                s.detail = (f"CDR energy truncated at a lost meter reading: {sum(truncated) / 1000:.3f} kWh "
                            f"vs {s.energy_wh / 1000:.3f} kWh metered (CDR priced on the truncated energy)")
            else:
                cdr = build_cdr(site, s, s.tariff.obj, periods, bd.cdr_fields(), s.cdr_id, issued)
                if s.fault is None and rng.random() < NOISE_CREDIT_REISSUE:
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
                if s.fault == "duplicate_cdr":
                    dup = json.loads(json.dumps(cdr))
                    dup["id"] = f"CDR-{site.site_no:05d}-D{rng.getrandbits(24):06x}"
                    dup["last_updated"] = iso_s(issued + rng.uniform(600, 7200))
                    s.extra["dup_id"] = dup["id"]
                    cdrs.append(dup)
                    s.detail = f"CDR {cdr['id']} sent again as {dup['id']}; both live, neither credited"
            if not cdrs:
                s.cdr_id = ""
            cdrs_by_day.setdefault(day, []).extend(cdrs)
        else:
            s.cdr_id = ""
        if s.fault != "missing_backend_session":
            started = s.start_at
            if s.fault == "timestamp_drift":
                shift = rng.choice((-1, 1)) * rng.uniform(360, 1500)
                if shift > 0 and s.stop_at is not None and started + shift > s.stop_at - 300:
                    # a later start past the stop is a different fault (stop before start):
                    # drift backwards instead so the row stays a valid session.
                    shift = -shift
                started += shift
                s.detail = f"backend started_at shifted by {shift / 60:+.1f} min from the OCPP start"
            backend_by_day.setdefault(day, []).append(backend_row(s, started, billed_amount, s.cdr_id))
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
        steps, powers, ce, stop_at = build_profile(start, start + dur, 1e9, min(7.0, e.max_power_kw), False,
                                                   lambda _t: 1e9, rng)
        ch = next(c for c in site.chargers if c.charge_point_id == e.charge_point_id)
        o = Session(gen_id=f"G{site.site_no:05d}-O{len(orphans) + 1:04d}", evse=e, charger=ch, plug_at=start,
                    start_at=start, charge_end_at=ce, stop_at=stop_at, steps_wh=steps, power_w=powers,
                    token=rng.choice(pool), auth_at=start, fault="orphan_cdr")
        o.ocpi_session_id = _uuid(rng)
        o.cdr_id = f"CDR-{site.site_no:05d}-X{rng.getrandbits(24):06x}"
        tv = tariff_in_force(tariffs[f"{site.country}-{tariff_product(site, ch)}"], start)
        op = cdr_periods(o, tv.obj, tz)
        obd = pricing.price(tv.obj, op)
        o.total_cost_excl = obd.total_excl
        day = local_dt(start, tz).date().isoformat()
        cdrs_by_day.setdefault(day, []).append(
            build_cdr(site, o, tv.obj, op, obd.cdr_fields(), o.cdr_id, stop_at + rng.uniform(300, 3600)))
        o.detail = f"CDR for {o.energy_wh / 1000:.3f} kWh on {e.evse_uid} with no OCPP transaction and no backend row"
        orphans.append(o)
    for rows in cdrs_by_day.values():
        rows.sort(key=lambda c: (c["last_updated"], c["id"]))

    # -- OCPP frames per charger ------------------------------------------------------
    received_status: dict[str, list[tuple[float, str]]] = {}
    for ch in site.chargers:
        frames = ChargerFrames(ch, random.Random(f"frames:{cfg.seed}:{ch.charge_point_id}"),
                               skews.get(ch.charge_point_id, 0.0))
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
        if ch.charge_point_id in skews and skew_visible(skews[ch.charge_point_id], frames.stamped):
            faults.append(FaultRow("charger_clock_skew", site.site_id, charge_point_id=ch.charge_point_id,
                                   detail=f"all payload timestamps {skews[ch.charge_point_id]:+.0f} s off the "
                                          "CSMS clock (received_at correct); backend uses CSMS time"))
        # One slow answer could be one network hiccup: a charger is slow when it repeats.
        if ch.charge_point_id in slow_auth and frames.auth_count >= MIN_SLOW_AUTH_CALLS:
            faults.append(FaultRow("auth_latency", site.site_id, charge_point_id=ch.charge_point_id,
                                   detail=f"every Authorize answered {slow_auth[ch.charge_point_id]:.1f} s after "
                                          f"the request ({frames.auth_count} Authorize calls)"))

    # -- backend, CDRs, EMS, locations ------------------------------------------------
    partner = site.site_type == "fleet" and site.site_no == 2
    mode = "partner" if partner else ("parquet" if site.site_no % 5 == 4 else "csv")
    write_backend(backend_by_day, site.site_id, mode, tz, cfg.landing, malformed)
    res.cdrs = write_cdrs(cdrs_by_day, site, cfg.landing, malformed)

    ev_wh = prorate(sessions, t0, n_iv)
    tampered: dict[int, float] = {}
    for i, wh in enumerate(ev_wh):
        if wh > 500 and rng.random() < rate:
            form = rng.choice(("high", "low", "dropout"))
            true = round(wh / 1000, 4)
            val = {"high": round(true * rng.uniform(1.2, 1.5), 4), "low": round(true * rng.uniform(0.5, 0.8), 4),
                   "dropout": 0.0}[form]
            # 20 % of a small interval can be less than meter and interval-edge noise
            if form == "high":
                val = max(val, round(true + EMS_MIN_VISIBLE_KWH, 4))
            elif form == "low":
                val = min(val, max(0.0, round(true - EMS_MIN_VISIBLE_KWH, 4)))
            tampered[i] = val
            faults.append(FaultRow("energy_attribution_mismatch", site.site_id,
                                   interval_start=iso_s(t0 + i * INTERVAL_S),
                                   detail=f"EMS ev_energy_kwh {val:.4f} vs {true:.4f} from the sessions ({form})"))
    write_ems(site, t0, day_bounds, ev_wh, sp, pv, tampered, cfg.landing, malformed, rng)

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
        if s.fault is None or (s.fault in NEEDS_CDR and not s.completed):
            continue
        detail = s.detail or _detail(s, change)
        faults.append(FaultRow(s.fault, site.site_id, gen_session_id=s.gen_id, charge_point_id=s.evse.charge_point_id,
                               evse_uid=s.evse.evse_uid, ocpp_transaction_id=s.tx_id,
                               backend_session_id=s.backend_id,
                               cdr_id=s.extra.get("dup_id", s.cdr_id if s.fault != "missing_cdr" else ""),
                               detail=detail))
    for o in orphans:
        res.session_rows.append([o.gen_id, site.site_id, o.evse.charge_point_id, o.evse.connector_id,
                                 o.evse.evse_uid, "", "", o.ocpi_session_id, o.cdr_id, iso_s(o.start_at),
                                 iso_s(o.stop_at), f"{o.energy_wh / 1000:.3f}", "EUR", f"{o.total_cost_excl:.2f}"])
        faults.append(FaultRow("orphan_cdr", site.site_id, gen_session_id=o.gen_id, charge_point_id=o.evse.charge_point_id,
                               evse_uid=o.evse.evse_uid, cdr_id=o.cdr_id, detail=o.detail))
    res.fault_rows = [f.as_list() for f in faults]
    res.reject_rows = [[p.split("/", 1)[0], p, n] for p, n in sorted(malformed.get("files", {}).items())]
    res.sessions = len(sessions)
    return res


def _detail(s: Session, change: float) -> str:
    f = s.fault
    if f == "tariff_changed_during_session":
        return f"session {iso_s(s.start_at)}..{iso_s(s.stop_at)} spans the tariff change at {iso_s(change)}; CDR priced with the version in force at start"
    if f == "missing_cdr":
        return "completed, billable session; no CDR was issued"
    if f == "missing_backend_session":
        return "OCPP transaction and CDR exist; the backend export has no row for it"
    if f == "meter_anomaly":
        if s.form == "unit_confusion":
            return "MeterValues energy register sent in kWh but labelled Wh (unit confusion)"
        return (f"register rolled back by {s.extra['rollback_wh']} Wh at sample {s.extra['rollback_index'] + 1} "
                "mid-transaction")
    if f == "incomplete_session":
        if s.form == "no_stop":
            return "no StopTransaction/TransactionEvent Ended ever received; backend row still ACTIVE"
        return f"stop only recovered from the offline queue, received {s.extra['late_s'] / 3600:.1f} h late"
    if f == "token_invalid":
        return f"token {s.token[0]} {'revoked in the token snapshot' if s.form == 'revoked' else 'unknown to the token snapshot'}; charged via local authorization"
    return f


def skew_visible(skew_s: float, stamped_frames: int) -> bool:
    """Whether a charger clock ``skew_s`` off shows in its ``stamped_frames`` frames.

    A stamp ahead of the CSMS receive time can only be the clock; a few stamped behind may
    have sat in the offline queue, so a clock behind needs ``MIN_SKEW_FRAMES`` of them.
    """
    return skew_s > 0 or stamped_frames >= MIN_SKEW_FRAMES
