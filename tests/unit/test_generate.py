"""``chargeline generate``: determinism, OCPP schema validity, truth consistency, rates.

One small faulty network (rate 0.05 so every class is likely present) is generated
once per module with the default field noise, and once with ``--noise none`` for the
tests that assert exact equalities between sources; clean and determinism runs use
tinier networks. The noise itself is tested in test_generate_noise.py.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import json
import re
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import ocpp
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.generate import GenConfig, generate, pricing
from pipeline.generate.faults import ALL_CHECKS, SESSION_FAULTS

SCHEMAS = Path(ocpp.__file__).parent
LOG_RE = re.compile(r"^\S+ \S+ INFO \(MainThread\) \[ocpp\] (\S+): (receive message|send) (.*)$")


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(GenConfig(out=out, evses=60, days=2, seed=10, fault_rate=0.05))
    return out


@pytest.fixture(scope="module")
def exact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen-exact")
    generate(GenConfig(out=out, evses=60, days=2, seed=10, fault_rate=0.05, noise="none"))
    return out


def _csv(p: Path) -> list[dict]:
    with open(p, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _frames(landing: Path):
    """(path, charge_point_id, direction, frame, version) for every well-formed OCPP record."""
    for p in sorted((landing / "ocpp").rglob("*")):
        if not p.is_file():
            continue
        for line in p.read_text(encoding="utf-8").splitlines():
            if p.suffix == ".log":
                m = LOG_RE.match(line)
                cp, direction, frame = m.group(1), "in" if m.group(2) == "receive message" else "out", json.loads(m.group(3))
                yield p, cp, direction, frame, None
                continue
            try:
                rec = json.loads(line)
                frame = rec["frame"]
                frame = json.loads(frame) if isinstance(frame, str) else frame
                if not isinstance(frame, list):
                    continue
            except (ValueError, KeyError, TypeError):
                continue
            yield p, rec["charge_point_id"], rec["direction"], frame, rec.get("ocpp_version")


def _cdrs(landing: Path) -> list[dict]:
    out = []
    for p in sorted((landing / "cdrs").rglob("*")):
        if not p.is_file():
            continue
        text = (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()).decode()
        if ".jsonl" in p.name:
            for line in text.splitlines():
                with contextlib.suppress(ValueError):  # planted malformed lines
                    out.append(json.loads(line))
        else:
            body = json.loads(text)
            out.extend(body["data"] if isinstance(body, dict) else body)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    """Same seed and options: byte-identical landing and truth files (manifest minus wall clock)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        generate(GenConfig(out=out, evses=14, days=1, seed=3))
    ta, tb = _tree(a), _tree(b)
    ma, mb = (json.loads(t.pop("truth/manifest.json")) for t in (ta, tb))
    for m in (ma, mb):
        del m["generated_at"], m["elapsed_s"]
    assert ta == tb
    assert ma == mb
    generate(GenConfig(out=tmp_path / "c", evses=14, days=1, seed=4))
    assert _tree(tmp_path / "c")["truth/sessions.csv"] != tb["truth/sessions.csv"]


def test_ocpp_payloads_validate_against_shipped_schemas(net):
    """Every CALL and CALLRESULT payload validates against the ocpp package's JSON schemas."""
    versions = {r["charge_point_id"]: r for r in _csv(net / "landing" / "registry" / "evses.csv")}
    assert versions
    cp_version: dict[str, str] = {}
    validators: dict[str, jsonschema.Draft7Validator] = {}
    pending: dict[tuple[str, str], str] = {}
    checked: Counter = Counter()

    def validate(version: str, name: str, payload: dict) -> None:
        key = f"{version}/{name}"
        if key not in validators:
            folder = SCHEMAS / ("v16" if version == "1.6" else "v201") / "schemas"
            validators[key] = jsonschema.Draft7Validator(json.loads((folder / f"{name}.json").read_text()))
        validators[key].validate(payload)
        checked[key] += 1

    frames = list(_frames(net / "landing"))
    for _, cp, _, frame, _ in frames:
        if frame[0] == 2 and frame[2] == "TransactionEvent":
            cp_version[cp] = "2.0.1"
    for _, cp, _, frame, _ in frames:
        version = cp_version.get(cp, "1.6")
        if frame[0] == 2:
            action = frame[2]
            pending[(cp, frame[1])] = action
            if checked[f"{version}/{action}"] < 300:
                validate(version, action + ("Request" if version == "2.0.1" else ""), frame[3])
        elif frame[0] == 3:
            action = pending.get((cp, frame[1]))
            assert action, f"CALLRESULT without CALL: {cp} {frame[1]}"
            if checked[f"{version}/{action}Response"] < 300:
                validate(version, action + "Response", frame[2])
    seen = {k.split("/")[1] for k in checked}
    for action in ("Authorize", "BootNotification", "Heartbeat", "StatusNotification", "StartTransaction",
                   "StopTransaction", "MeterValues", "TransactionEventRequest", "AuthorizeRequest"):
        assert action in seen, action


def test_fault_rows_point_at_existing_records(net):
    landing = net / "landing"
    faults = _csv(net / "truth" / "faults.csv")
    sessions = {r["gen_session_id"]: r for r in _csv(net / "truth" / "sessions.csv")}
    evses = {r["evse_uid"]: r for r in _csv(landing / "registry" / "evses.csv")}
    cps = {r["charge_point_id"] for r in evses.values()}
    ocpp_text = {cp.name: "".join(p.read_text() for p in cp.iterdir()) for site in (landing / "ocpp").iterdir()
                 for cp in site.iterdir()}
    backend_text = "".join(p.read_text() for p in (landing / "backend").rglob("*.csv"))
    backend_text += "".join(str(pq.read_table(p).to_pylist()) for p in (landing / "backend").rglob("*.parquet"))
    cdr_ids = {c["id"] for c in _cdrs(landing)}
    assert {f["check"] for f in faults} == set(ALL_CHECKS), "every check name is planted"
    for f in faults:
        assert f["charge_point_id"] in cps or f["check"] == "energy_attribution_mismatch"
        if f["evse_uid"]:
            assert f["evse_uid"] in evses
        if f["gen_session_id"]:
            assert f["gen_session_id"] in sessions
        if f["ocpp_transaction_id"]:
            assert f"{f['ocpp_transaction_id']}" in ocpp_text[f["charge_point_id"]]
        if f["backend_session_id"]:
            assert f["backend_session_id"] in backend_text
        if f["cdr_id"]:
            assert f["cdr_id"] in cdr_ids
        if f["check"] in ("missing_backend_session",):
            assert not f["backend_session_id"]
            assert sessions[f["gen_session_id"]]["ocpp_transaction_id"] not in backend_text
        if f["check"] == "missing_cdr":
            assert not sessions[f["gen_session_id"]]["cdr_id"]
        if f["check"] in ("energy_attribution_mismatch", "status_mismatch"):
            assert f["interval_start"]
        assert f["detail"]


def test_ems_balances_and_matches_sessions(exact):
    """Without noise: microgrid columns balance; untampered EMS EV energy equals the sessions' energy."""
    net = exact
    landing = net / "landing"
    tampered = {(f["site_id"], f["interval_start"]) for f in _csv(net / "truth" / "faults.csv")
                if f["check"] == "energy_attribution_mismatch"}
    per_site: Counter = Counter()
    for s in _csv(net / "truth" / "sessions.csv"):
        if s["ocpp_transaction_id"]:
            per_site[s["site_id"]] += float(s["energy_kwh"])
    ems: Counter = Counter()
    for p in sorted((landing / "ems").rglob("*.*")):
        rows = _csv(p) if p.suffix == ".csv" else [{k: ("" if v is None else str(v)) for k, v in r.items()}
                                                    for r in pq.read_table(p).to_pylist()]
        for r in rows:
            try:
                ev = float(r["ev_energy_kwh"])
                at = dt.datetime.fromisoformat(r["interval_start"].replace("Z", "+00:00"))
            except ValueError:
                continue  # a planted malformed row
            key = (r["site_id"], at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            if key not in tampered:
                ems[r["site_id"]] += ev
            if r["pv_kwh"] not in ("", None):
                lhs = float(r["grid_import_kwh"]) + float(r["pv_kwh"]) + float(r["battery_discharge_kwh"])
                assert lhs == pytest.approx(ev + float(r["battery_charge_kwh"]), abs=2e-4)
    for site, kwh in per_site.items():
        lost = sum(1 for s, _ in tampered if s == site)
        if not lost:
            assert ems[site] == pytest.approx(kwh, abs=0.01)
        else:
            assert ems[site] <= kwh + 0.01


def test_cdr_totals_equal_generator_pricing(net):
    landing = net / "landing"
    tz = {r["site_id"]: ZoneInfo(r["time_zone"]) for r in _csv(landing / "registry" / "sites.csv")}
    loc_site = {r["location_id"]: r["site_id"] for r in _csv(landing / "registry" / "evses.csv")}
    rows = _csv(net / "truth" / "faults.csv")
    # a wrongly priced CDR, and its duplicate when one was sent again (faults combine)
    wrong_sessions = {f["gen_session_id"] for f in rows if f["check"] == "cost_mismatch"}
    wrong = {f["cdr_id"] for f in rows if f["gen_session_id"] in wrong_sessions and f["cdr_id"]}
    cdrs = _cdrs(landing)
    credited = {c["credit_reference_id"] for c in cdrs if c.get("credit")}
    truth_cost = {s["cdr_id"]: s["total_cost_excl_vat"] for s in _csv(net / "truth" / "sessions.csv")}
    n = 0
    for c in cdrs:
        if c.get("credit") or c["id"] in credited or c["id"] in wrong:
            continue
        site_tz = tz[loc_site[c["cdr_location"]["id"]]]
        bd = pricing.price(c["tariffs"][0], pricing.parse_cdr_periods(c, site_tz))
        # The issuer rounds each cost field to cents and adds them, or rounds only the exact
        # total (ocpi_writer.CdrPartner); either way from the volumes it measured.
        exact = bd.cdr_fields().exact_total
        billed = (c["total_cost"]["excl_vat"], c["total_cost"]["incl_vat"])
        assert billed in ((bd.total_excl, bd.total_incl), (pricing.cents(float(exact[0])), pricing.cents(float(exact[1])))), c["id"]
        assert bd.costs.get("ENERGY", (0.0,))[0] == c.get("total_energy_cost", {"excl_vat": 0.0})["excl_vat"], c["id"]
        assert c["total_energy"] == pytest.approx(sum(
            d["volume"] for p in c["charging_periods"] for d in p["dimensions"] if d["type"] == "ENERGY"), abs=1e-6)
        if c["id"] in truth_cost:
            n += 1
    assert n > 50


def test_fault_rates_follow_fault_rate(net):
    faults = Counter(f["check"] for f in _csv(net / "truth" / "faults.csv"))
    n_sessions = sum(1 for s in _csv(net / "truth" / "sessions.csv") if s["ocpp_transaction_id"])
    for check in SESSION_FAULTS:
        assert faults[check] <= 0.05 * n_sessions * 2.5 + 3, check
    manifest = json.loads((net / "truth" / "manifest.json").read_text())
    assert manifest["fault_rate"] == 0.05
    assert manifest["faults"] == {c: faults.get(c, 0) for c in ALL_CHECKS}


def test_planted_rejects_are_the_only_unparseable_json_lines(net):
    expected = {r["source_file"]: int(r["expected_rejects"]) for r in _csv(net / "truth" / "rejects.csv")}
    landing = net / "landing"
    for p in list((landing / "ocpp").rglob("*.jsonl")) + list((landing / "cdrs").rglob("*.jsonl")):
        bad = 0
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                ok = isinstance(rec, dict) and ("id" in rec or isinstance(rec.get("received_at"), str))
            except ValueError:
                ok = False
            bad += not ok
        assert bad == expected.get(p.relative_to(landing).as_posix(), 0), p


def test_clean_plants_nothing(tmp_path):
    out = tmp_path / "clean"
    assert main(["generate", "--out", str(out), "--evses", "20", "--days", "1", "--clean", "--quiet"]) == 0
    assert len(_csv(out / "truth" / "faults.csv")) == 0
    assert len(_csv(out / "truth" / "rejects.csv")) == 0
    sessions = _csv(out / "truth" / "sessions.csv")
    assert sessions and all(s["ocpp_transaction_id"] and s["backend_session_id"] and s["cdr_id"] for s in sessions)
    assert (out / "landing" / "registry" / "sites.csv").exists()
