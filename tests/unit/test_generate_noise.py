"""Field noise of ``chargeline generate`` (on by default) at the magnitudes data/README.md states.

One noisy network and the same seed with ``--noise none`` are generated once per module;
each test reads the landing files the way the pipeline would, not the generator's state.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.generate import GenConfig, generate
from pipeline.generate.noise import AC_EFFICIENCY, AUTH_MEDIAN_S, DC_EFFICIENCY, EMS_GAIN_ERROR
from pipeline.generate.sessions import build_profile

LOG_RE = re.compile(r"^(\S+ \S+) INFO \(MainThread\) \[ocpp\] (\S+): (receive message|send) (.*)$")


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("noisy")
    generate(GenConfig(out=out, evses=80, days=2, seed=21, fault_rate=0.05))
    return out


@pytest.fixture(scope="module")
def exact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exact")
    assert main(["generate", "--out", str(out), "--evses", "80", "--days", "2", "--seed", "21",
                 "--fault-rate", "0.05", "--noise", "none", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def quiet(tmp_path_factory) -> Path:
    """No faults (nothing tampered), field noise."""
    out = tmp_path_factory.mktemp("quiet")
    generate(GenConfig(out=out, evses=80, days=2, seed=21, clean=True))
    return out


def _csv(p: Path) -> list[dict]:
    with open(p, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _at(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00")).timestamp()


def _backend(net: Path) -> list[tuple[Path, dict]]:
    """(file, row) of every well-formed backend row, partner columns mapped, kWh and UTC epochs."""
    tz = {r["site_id"]: r["time_zone"] for r in _csv(net / "landing" / "registry" / "sites.csv")}
    out = []
    for p in sorted(x for x in (net / "landing" / "backend").rglob("*") if x.is_file()):
        if p.suffix == ".parquet":
            rows = pq.read_table(p).to_pylist()
            for r in rows:
                r["started_at"] = r["started_at"].timestamp()
                r["exported_at"] = r["exported_at"].timestamp() if r.get("exported_at") else None
        else:
            rows = []
            for r in _csv(p):
                if r.get("SessionRef"):
                    from zoneinfo import ZoneInfo
                    zone = ZoneInfo(tz["SITE-00002"])
                    r = {"session_id": r["SessionRef"], "transaction_id": r["TxnNo"], "charge_point_id": r["StationID"],
                         "started_at": dt.datetime.fromisoformat(r["StartLocal"]).replace(tzinfo=zone).timestamp(),
                         "energy_kwh": float(r["EnergyWh"]) / 1000 if r["EnergyWh"] else None,
                         "amount": r["AmountExVat"] or None, "raw_start": "",
                         "exported_at": dt.datetime.fromisoformat(r["ExportedAt"]).replace(tzinfo=zone).timestamp()
                         if r.get("ExportedAt") else None}
                else:
                    try:
                        r["started_at"] = _at(r["started_at"])
                    except ValueError:
                        continue  # a planted malformed row
                    r["raw_start"] = r["started_at"]
                    r["exported_at"] = _at(r["exported_at"]) if r.get("exported_at") else None
                    r["energy_kwh"] = float(r["energy_kwh"]) if r["energy_kwh"] else None
                rows.append(r)
        out += [(p, r) for r in rows]
    return out


def _frames(net: Path):
    """(charge_point_id, received epoch s, frame) of every well-formed OCPP record."""
    for p in sorted((net / "landing" / "ocpp").rglob("*")):
        if p.suffix not in (".jsonl", ".log"):
            continue
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                if p.suffix == ".log":
                    m = LOG_RE.match(line)
                    at, cp, frame = _at(m.group(1).replace(" ", "T") + "+00:00"), m.group(2), json.loads(m.group(4))
                else:
                    rec = json.loads(line)
                    at, cp, frame = _at(rec["received_at"]), rec["charge_point_id"], rec["frame"]
                    frame = json.loads(frame) if isinstance(frame, str) else frame
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if isinstance(frame, list):
                yield cp, at, frame


def _faulted(net: Path, *checks: str) -> set[str]:
    return {f["gen_session_id"] for f in _csv(net / "truth" / "faults.csv") if not checks or f["check"] in checks}


def test_backend_energy_differs_from_ocpp_by_under_one_percent(noisy, exact):
    truth = {s["backend_session_id"]: s for s in _csv(noisy / "truth" / "sessions.csv") if s["backend_session_id"]}
    # the latest export of each session (a re-sent file corrects the first one)
    latest = {}
    for _p, r in _backend(noisy):
        if r["session_id"] in truth and r["energy_kwh"] is not None:
            latest[r["session_id"]] = r  # files come sorted: a re-sent file after the first
    rel = [abs(r["energy_kwh"] - float(truth[k]["energy_kwh"])) / float(truth[k]["energy_kwh"])
           for k, r in latest.items() if float(truth[k]["energy_kwh"]) > 2]
    assert len(rel) > 100
    assert sum(d > 0 for d in rel) / len(rel) > 0.9, "most backend energies differ from OCPP"
    assert sum(d < 0.01 for d in rel) / len(rel) > 0.9, "by under 1 % for most sessions"
    assert statistics.median(rel) > 0.0005
    # --noise none: the backend repeats the OCPP energy to the Wh
    truth0 = {s["backend_session_id"]: s for s in _csv(exact / "truth" / "sessions.csv") if s["backend_session_id"]}
    for _, r in _backend(exact):
        if r["session_id"] in truth0 and r["energy_kwh"] is not None:
            assert r["energy_kwh"] == pytest.approx(float(truth0[r["session_id"]]["energy_kwh"]), abs=1e-6)


def test_backend_times_are_cut_to_seconds_or_minutes(noisy):
    truth = {s["backend_session_id"]: s for s in _csv(noisy / "truth" / "sessions.csv") if s["backend_session_id"]}
    drift = _faulted(noisy, "timestamp_drift")
    by_site_minute: dict[str, list[bool]] = defaultdict(list)
    offsets = []
    for p, r in _backend(noisy):
        s = truth.get(r["session_id"])
        if s is None or s["gen_session_id"] in drift:
            continue
        by_site_minute[p.parent.name].append(r["started_at"] % 60 == 0)
        offsets.append(r["started_at"] - _at(s["started_at"]))
    assert any(all(v) for v in by_site_minute.values()), "some backends cut to the minute"
    assert any(not all(v) for v in by_site_minute.values()), "some keep seconds"
    # cut, never rounded up: at most the recording delay (2.5 s) after, a minute before
    assert min(offsets) >= -60 and max(offsets) <= 3
    assert sum(o != 0 for o in offsets) / len(offsets) > 0.5


def test_some_exports_are_resent_with_corrections(noisy):
    rows = _backend(noisy)
    resent = [(p, r) for p, r in rows if "_resent_" in p.name]
    assert resent, "no re-sent export"
    first = {}
    for p, r in rows:
        if "_resent_" not in p.name:
            first[r["session_id"]] = (p, r)
    for p, r in resent:
        p0, r0 = first[r["session_id"]]
        # same day's file, later export: by name and by the column inside
        assert p.name.startswith(p0.stem) and p.name > p0.name
        assert r["exported_at"] and r0["exported_at"]
        assert r["exported_at"] >= r0["exported_at"] + 86400
        assert r["energy_kwh"] != r0["energy_kwh"] or r["amount"] != r0["amount"]


def test_ems_reads_the_grid_side_with_loss_standby_and_meter_error(quiet):
    noisy = quiet
    landing = noisy / "landing"
    dc_evse = {r["evse_uid"] for r in _csv(landing / "registry" / "evses.csv")
               if r["max_power_kw"] and float(r["max_power_kw"]) >= 50}
    site_chargers = Counter(r["site_id"] for r in {(r["site_id"], r["charge_point_id"]): r
                                                   for r in _csv(landing / "registry" / "evses.csv")}.values())
    tampered = {(f["site_id"], f["interval_start"]) for f in _csv(noisy / "truth" / "faults.csv")
                if f["check"] == "energy_attribution_mismatch"}
    kwh, dc = Counter(), Counter()
    for s in _csv(noisy / "truth" / "sessions.csv"):
        if s["ocpp_transaction_id"]:
            kwh[s["site_id"]] += float(s["energy_kwh"])
            dc[s["site_id"]] += float(s["energy_kwh"]) if s["evse_uid"] in dc_evse else 0.0
    ems, idle = Counter(), defaultdict(list)
    for p in sorted((landing / "ems").rglob("*.*")):
        rows = _csv(p) if p.suffix == ".csv" else [{k: ("" if v is None else str(v)) for k, v in r.items()}
                                                    for r in pq.read_table(p).to_pylist()]
        for r in rows:
            try:
                ev = float(r["ev_energy_kwh"])
                at = dt.datetime.fromisoformat(r["interval_start"].replace("Z", "+00:00")).astimezone(dt.UTC)
            except ValueError:
                continue
            if (r["site_id"], at.strftime("%Y-%m-%dT%H:%M:%SZ")) in tampered:
                continue
            ems[r["site_id"]] += ev
            idle[r["site_id"]].append(ev)
    assert not tampered
    ratios = {site: kwh[site] / ems[site] for site in kwh}
    hours = 48
    for site, ratio in ratios.items():
        f = dc[site] / kwh[site]  # DC share of the site's energy
        standby = site_chargers[site] * 90 * hours / 1000
        hi = 1 / ((1 - EMS_GAIN_ERROR[0]) * (f / DC_EFFICIENCY[1] + (1 - f) / AC_EFFICIENCY[1]))
        lo = 1 / ((1 + EMS_GAIN_ERROR[1]) * (f / DC_EFFICIENCY[0] + (1 - f) / AC_EFFICIENCY[0]) + standby / kwh[site])
        assert lo <= ratio <= hi, (site, f, lo, ratio, hi)
    dc_sites = [site for site in ratios if dc[site] > 0.5 * kwh[site]]
    assert dc_sites, "no DC-dominated site"
    # where DC dominates, the sessions are 0.90-0.99 of what the grid-side meter read
    for site in dc_sites:
        assert 0.90 <= ratios[site] <= 0.99, (site, ratios[site])
    # standby: the meter reads tens of W per charger when nothing charges
    for site, values in idle.items():
        quiet = min(values)
        assert 0 <= quiet <= site_chargers[site] * 100 * 0.25 / 1000 + 0.01, (site, quiet)
    assert sum(min(v) > 0 for v in idle.values()) > len(idle) / 2


def test_meter_values_every_10s_to_15min_or_none(noisy, exact):
    def intervals(net: Path) -> tuple[Counter, int, int]:
        last: dict[tuple[str, str], float] = {}
        seen: Counter = Counter()
        starts, with_mv = set(), set()
        for cp, _received, frame in _frames(net):
            if frame[0] != 2:
                continue
            if frame[2] == "StartTransaction":
                starts.add(cp)
            if frame[2] == "MeterValues" or frame[3].get("triggerReason") == "MeterValuePeriodic":
                with_mv.add(cp)
                ts = _at(frame[3]["meterValue"][0]["timestamp"])
                tx = frame[3].get("transactionId") or frame[3].get("transactionInfo", {}).get("transactionId")
                key = (cp, str(tx))
                if key in last and ts > last[key]:
                    seen[round(ts - last[key])] += 1
                last[key] = ts
        return seen, len(starts), len(starts - with_mv)

    seen, n16, silent = intervals(noisy)
    assert {10, 30, 60, 300, 900} <= set(seen), sorted(seen)[:20]
    assert max(seen) <= 900
    assert silent >= 2 and silent < n16, "some 1.6 chargers send no MeterValues at all"
    seen0, _n, silent0 = intervals(exact)
    assert set(seen0) == {60} and silent0 == 0


def test_authorize_latency_has_a_long_tail_and_unanswered_calls(noisy):
    slow = {f["charge_point_id"] for f in _csv(noisy / "truth" / "faults.csv") if f["check"] == "auth_latency"}
    asked: dict[tuple[str, str], float] = {}
    latencies = []
    for cp, at, frame in _frames(noisy):
        if frame[0] == 2 and frame[2] == "Authorize":
            asked[(cp, frame[1])] = at
        elif frame[0] == 3 and (cp, frame[1]) in asked:
            t = at - asked.pop((cp, frame[1]))
            if cp not in slow:
                latencies.append(t)
    unanswered = len(asked)
    assert unanswered >= 1, "some Authorize calls are never answered"
    assert unanswered < 0.1 * (len(latencies) + unanswered)
    assert len(latencies) > 100
    assert statistics.median(latencies) < 1.0
    assert statistics.median(latencies) == pytest.approx(AUTH_MEDIAN_S, rel=0.5)
    assert sum(t < 1.0 for t in latencies) / len(latencies) > 0.8
    assert max(latencies) > 2.0, "a tail of several seconds"


def test_power_never_exceeds_the_evse_limit(noisy):
    limit = {(r["charge_point_id"], r["connector_id"]): float(r["max_power_kw"])
             for r in _csv(noisy / "landing" / "registry" / "evses.csv") if r["max_power_kw"]}
    broken = {(f["charge_point_id"], f["ocpp_transaction_id"]) for f in _csv(noisy / "truth" / "faults.csv")
              if f["check"] == "meter_anomaly"}
    last: dict[tuple[str, str], tuple[float, float]] = {}
    checked = 0
    for cp, _received, frame in _frames(noisy):
        if frame[0] != 2 or frame[2] != "MeterValues":
            continue
        p = frame[3]
        tx = str(p["transactionId"])
        if (cp, tx) in broken or (cp, str(p["connectorId"])) not in limit:
            continue
        kw = limit[(cp, str(p["connectorId"]))]
        mv = p["meterValue"][0]
        vals = {v["measurand"]: float(v["value"]) for v in mv["sampledValue"]}
        assert vals["Power.Active.Import"] <= kw * 1000
        ts = _at(mv["timestamp"])
        reg = vals["Energy.Active.Import.Register"]
        if (cp, tx) in last:
            t0, r0 = last[(cp, tx)]
            if ts - t0 >= 60:
                assert (reg - r0) / (ts - t0) * 3.6 <= kw, (cp, tx, reg - r0, ts - t0)
                checked += 1
        last[(cp, tx)] = (ts, reg)
    assert checked > 500


def test_charger_clocks_jitter_by_seconds(noisy, exact):
    skewed = {f["charge_point_id"] for f in _csv(noisy / "truth" / "faults.csv") if f["check"] == "charger_clock_skew"}

    def lead(net: Path) -> dict[str, float]:
        """Per charger, the most its StartTransaction stamps lead their receipt (s)."""
        out: dict[str, float] = {}
        for cp, at, frame in _frames(net):
            if frame[0] == 2 and frame[2] == "StartTransaction" and cp not in skewed:
                out[cp] = max(out.get(cp, -99.0), _at(frame[3]["timestamp"]) - at)
        return out

    noisy_lead, exact_lead = lead(noisy), lead(exact)
    # exact clocks: a stamp is never after its receipt; field clocks: seconds either way
    assert max(exact_lead.values()) <= 0.0
    assert sum(v > 0.5 for v in noisy_lead.values()) >= 3
    assert max(noisy_lead.values()) < 12.0


def test_ac_cars_taper_then_stay_plugged_in_idle(noisy):
    steps, powers, charge_end, stop = build_profile(0.0, 6 * 3600.0, 15000.0, 11.0, False, lambda _t: 1e9,
                                                    __import__("random").Random(1), ac_taper=0.1)
    charging = [w for w in powers if w]
    assert charging[-1] < 0.5 * charging[0], "the last minutes taper"
    assert charge_end < 2.5 * 3600 and stop == 6 * 3600.0
    assert all(wh == 0 for wh in steps[int(charge_end // 60) + 1:])
    # workplace (solar carport) commuters: plugged for hours, charging for a fraction of it
    sites = {r["site_id"]: r["site_type"] for r in _csv(noisy / "landing" / "registry" / "sites.csv")}
    limit = {r["evse_uid"]: float(r["max_power_kw"] or 22) for r in _csv(noisy / "landing" / "registry" / "evses.csv")}
    long_idle = 0
    for s in _csv(noisy / "truth" / "sessions.csv"):
        if sites[s["site_id"]] in ("microgrid", "fleet") and s["stopped_at"] and limit[s["evse_uid"]] < 50:
            plugged_h = (_at(s["stopped_at"]) - _at(s["started_at"])) / 3600
            charging_h = float(s["energy_kwh"]) / limit[s["evse_uid"]]
            long_idle += plugged_h > 6 and charging_h < plugged_h / 2
    assert long_idle >= 10


def test_several_faults_on_one_session(noisy):
    per_session = Counter(f["gen_session_id"] for f in _csv(noisy / "truth" / "faults.csv") if f["gen_session_id"])
    assert sum(n >= 2 for n in per_session.values()) >= 3
    assert sum(n >= 2 for n in per_session.values()) < sum(n == 1 for n in per_session.values())


def test_the_documented_noise_band_bounds_every_honest_ems_interval(tmp_path, monkeypatch):
    """A tampered interval must stand 2 bands off its sessions: the band must hold all noise."""
    import pipeline.generate.site as site
    from pipeline.generate import noise as nz

    seen: list[tuple[float, float, float]] = []
    prorated: list[list[float]] = []
    orig_prorate, orig_write = site.prorate, site.write_ems
    state: dict = {}

    def prorate(sessions, t0, n):
        out = orig_prorate(sessions, t0, n)
        if not prorated:
            state["sessions"] = sessions
        prorated.append(out)
        return out

    def write_ems(s, t0, day_bounds, ev_kwh, *args, **kwargs):
        (all_wh,) = prorated
        prorated.clear()
        dc_wh = orig_prorate([x for x in state["sessions"] if x.charger.kind == "DC"], t0, len(ev_kwh))
        active = [0.0] * len(ev_kwh)
        for x in state["sessions"]:
            for i in range(max(0, int((x.start_at - t0) // 900)), min(len(ev_kwh) - 1, int((x.charge_end_at - t0) // 900)) + 1):
                active[i] += x.evse.max_power_kw
        standby = sum((nz.STANDBY_W_DC if c.kind == "DC" else nz.STANDBY_W_AC)[1] for c in s.chargers) * 0.25 / 1000
        for i, v in enumerate(ev_kwh):
            band = site.ems_noise_band(all_wh[i] / 1000, dc_wh[i] / 1000, standby, active[i])
            seen.append((abs(v - all_wh[i] / 1000), band, v))
        return orig_write(s, t0, day_bounds, ev_kwh, *args, **kwargs)

    monkeypatch.setattr(site, "prorate", prorate)
    monkeypatch.setattr(site, "write_ems", write_ems)
    generate(GenConfig(out=tmp_path, evses=80, days=2, seed=8, clean=True))
    assert len(seen) > 500
    assert all(gap <= band for gap, band, _v in seen), max(seen, key=lambda x: x[0] / x[1])
    # and the noise is real: most intervals with charging differ from the sessions
    assert sum(gap > 0.001 for gap, _b, v in seen if v > 1) > 0.9 * sum(1 for *_x, v in seen if v > 1)
