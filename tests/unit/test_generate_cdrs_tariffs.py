"""Generated CDRs and tariffs carry the field's habits, and truth stays right about them.

Credits carry negative amounts; re-issues carry corrected figures; times are cut to whole
seconds or minutes; durations go out as 4-decimal hours; tariffs are re-published with a
new ``last_updated`` and the same prices, which truth never labels a stale or changed tariff.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.commands.price import load_objects
from pipeline.generate import GenConfig, generate
from pipeline.generate.network import build_network
from pipeline.generate.ocpi_writer import EXACT_PARTNER, as_sent, cdr_partner
from pipeline.tariffs.history import price_content
from pipeline.tariffs.model import tariff_from_ocpi


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen-cdrs")
    generate(GenConfig(out=out, evses=80, days=3, seed=21, fault_rate=0.05))
    return out


def _cdrs(landing: Path) -> list[dict]:
    return [o for p in sorted((landing / "cdrs").rglob("*.*")) for o in load_objects(p) if isinstance(o, dict)]


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_credits_are_negative_and_their_reissue_is_corrected(net):
    cdrs = {c["id"]: c for c in _cdrs(net / "landing")}
    credits = [c for c in cdrs.values() if c.get("credit")]
    assert credits, "no credit at this seed: raise the network size"
    for credit in credits:
        original = cdrs[credit["credit_reference_id"]]
        assert credit["total_cost"]["excl_vat"] == -original["total_cost"]["excl_vat"] < 0
        assert credit["total_energy"] == original["total_energy"] > 0       # volumes stay positive
        reissue = [c for c in cdrs.values() if c.get("session_id") == original["session_id"]
                   and c["id"] not in (original["id"], credit["id"])]
        assert len(reissue) == 1 and reissue[0]["total_cost"]["excl_vat"] != original["total_cost"]["excl_vat"]
        assert reissue[0]["last_updated"] > credit["last_updated"]
    truth = {s["cdr_id"] for s in _csv(net / "truth" / "sessions.csv")}
    assert not truth & {c["id"] for c in credits}                           # truth names the re-issue


def test_as_sent_negates_only_credits():
    cdr = {"id": "A", "total_cost": {"excl_vat": 2.5, "incl_vat": 3.0}, "total_energy": 5.0}
    assert as_sent(cdr) is cdr
    credit = as_sent({**cdr, "credit": True, "credit_reference_id": "A"})
    assert credit["total_cost"] == {"excl_vat": -2.5, "incl_vat": -3.0} and credit["total_energy"] == 5.0


def test_cdr_times_are_cut_to_the_sites_resolution(net):
    sites = {s.site_id: s for s in build_network(80, 21)}
    loc_site = {r["location_id"]: r["site_id"] for r in _csv(net / "landing" / "registry" / "evses.csv")}
    seen = Counter()
    for c in _cdrs(net / "landing"):
        partner = cdr_partner(sites[loc_site[c["cdr_location"]["id"]]])
        stamps = [c["start_date_time"], c["end_date_time"], *(p["start_date_time"] for p in c["charging_periods"])]
        assert all(len(t) == 20 and t.endswith("Z") for t in stamps)       # whole seconds
        if partner.time_res == "min":
            assert all(t[17:19] == "00" for t in stamps), c["id"]
        for p in c["charging_periods"]:
            for d in p["dimensions"]:
                if d["type"] != "ENERGY":
                    assert round(d["volume"], 4) == d["volume"]
        seen[partner.time_res, partner.cost_rounding] += 1
    assert {r for r, _ in seen} == {"s", "min"} and {k for _, k in seen} == {"component", "total"}


def test_exact_partner_is_the_noise_free_writer():
    assert EXACT_PARTNER.time_res == "s" and EXACT_PARTNER.cost_rounding == "component"
    site = build_network(20, 1)[0]
    assert cdr_partner(site, noise=False) is EXACT_PARTNER
    assert cdr_partner(site) == cdr_partner(site)                          # repeatable


def test_tariffs_are_republished_with_the_same_prices_and_never_labelled(net):
    landing = net / "landing" / "tariffs"
    objs = [o for p in sorted(landing.glob("*.json")) for o in load_objects(p)]
    by_id: dict[str, list[dict]] = {}
    for o in objs:
        by_id.setdefault(o["id"], []).append(o)
    republished = list(landing.glob("*_republished_*.json"))
    assert republished
    for path in republished:
        (obj,) = load_objects(path)
        originals = [o for o in by_id[obj["id"]] if "_republished_" not in str(o.get("tariff_alt_text"))
                     and o["last_updated"] != obj["last_updated"]]
        content = price_content(tariff_from_ocpi(obj))
        assert any(price_content(tariff_from_ocpi(o)) == content for o in originals), path.name
        assert "start_date_time" not in obj
    assert len({(o["id"], o["last_updated"]) for o in objs}) == len(objs)   # each a version of its own
    manifest = json.loads((net / "truth" / "manifest.json").read_text())
    assert manifest["counts"]["tariff_versions"] == len(objs)
    details = " ".join(f["detail"] for f in _csv(net / "truth" / "faults.csv")
                       if f["check"] in ("stale_tariff", "tariff_changed_during_session"))
    assert "republished" not in details


def test_republications_are_deterministic_and_off_without_noise(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out in (a, b):
        generate(GenConfig(out=out, evses=20, days=2, seed=3, fault_rate=0.0, clean=True))
    names = sorted(p.name for p in (a / "landing" / "tariffs").glob("*_republished_*"))
    assert names == sorted(p.name for p in (b / "landing" / "tariffs").glob("*_republished_*"))
    for name in names:
        assert (a / "landing" / "tariffs" / name).read_bytes() == (b / "landing" / "tariffs" / name).read_bytes()
    cfg = GenConfig(out=c, evses=20, days=2, seed=3, fault_rate=0.0, clean=True)
    if not hasattr(cfg, "noise"):
        pytest.skip("GenConfig has no noise switch on this branch")
    cfg.noise = "none"
    generate(cfg)
    assert not list((c / "landing" / "tariffs").glob("*_republished_*"))
