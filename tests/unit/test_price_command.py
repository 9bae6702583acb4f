"""``chargeline price``: output shape of contract §4, file shapes, tariff choice, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "external"
STEP = FIX / "tandemdrive" / "step_size"


def run(capsys, *argv) -> tuple[int, dict]:
    code = main(["price", *map(str, argv)])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def test_output_has_computed_cdr_difference_with_cdr_field_names(capsys):
    code, out = run(capsys, "--tariff", STEP / "tariff.json", "--cdr", STEP / "cdr1.json")
    assert code == 0
    fields = {"total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost",
              "total_reservation_cost", "total_energy", "total_time", "total_parking_time"}
    for part in ("computed", "cdr", "difference"):
        assert set(out[part]) == fields
    assert out["computed"]["total_cost"] == {"excl_vat": 0.55, "incl_vat": None}
    assert out["cdr"]["total_cost"] == {"excl_vat": 0.5502, "incl_vat": 0.5502}
    assert out["difference"]["total_cost"] == {"excl_vat": -0.0002, "incl_vat": None}
    assert [p["elements"] for p in out["periods"]] == [{"TIME": 0}, {"TIME": 1}, {"PARKING_TIME": 1}]


def test_envelope_and_array_files_pick_the_tariff_the_cdr_refers_to(tmp_path, capsys):
    cdr = json.loads((FIX / "ocpi" / "cdr_example.json").read_text())
    other = json.loads((FIX / "ocpi" / "tariff_8_simple_025kwh.json").read_text())
    own = cdr["tariffs"][0]
    (tmp_path / "tariffs.json").write_text(json.dumps({"data": [other, own], "status_code": 1000}))
    (tmp_path / "cdrs.json").write_text(json.dumps([cdr]))
    code, out = run(capsys, "--tariff", tmp_path / "tariffs.json", "--cdr", tmp_path / "cdrs.json")
    assert code == 0
    assert out["tariff"]["id"] == "12"
    assert out["computed"]["total_cost"] == {"excl_vat": 4.0, "incl_vat": 4.4}
    assert out["difference"]["total_cost"] == {"excl_vat": 0.0, "incl_vat": 0.0}


def test_tariff_version_in_force_at_cdr_start_is_used(tmp_path, capsys):
    cdr = json.loads((FIX / "ocpi" / "cdr_example.json").read_text())
    old = dict(cdr["tariffs"][0])
    new = {**old, "last_updated": "2015-06-29T21:00:00Z",
           "elements": [{"price_components": [{"type": "TIME", "price": 9, "vat": 10, "step_size": 300}]}]}
    later = {**new, "last_updated": "2015-07-01T00:00:00Z"}
    (tmp_path / "t.json").write_text(json.dumps([old, later, new]))
    (tmp_path / "c.json").write_text(json.dumps(cdr))
    code, out = run(capsys, "--tariff", tmp_path / "t.json", "--cdr", tmp_path / "c.json")
    assert code == 0
    assert out["tariff"]["last_updated"].startswith("2015-06-29T21:00")
    assert out["computed"]["total_cost"]["excl_vat"] == 18.0


def test_without_tariff_uses_the_tariff_embedded_in_the_cdr(capsys):
    code, out = run(capsys, "--cdr", FIX / "ocpi" / "cdr_example.json")
    assert code == 0
    assert out["computed"]["total_time_cost"] == {"excl_vat": 4.0, "incl_vat": 4.4}


def test_unreadable_cdr_exits_2_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["price", "--cdr", str(bad)]) == 2
    assert "chargeline price" in capsys.readouterr().err


@pytest.mark.parametrize(("case", "expected"), [
    ("025kwh_min_price/cdr2_less_than_2kWh.json", 0.5), ("simple_3hour_5parking/cdr1.json", 11.25)])
def test_cli_prices_fixture_cases(case, expected, capsys):
    folder = FIX / "tandemdrive" / case.split("/")[0]
    code, out = run(capsys, "--tariff", folder / "tariff.json", "--cdr", FIX / "tandemdrive" / case)
    assert code == 0
    assert out["computed"]["total_cost"]["excl_vat"] == expected
