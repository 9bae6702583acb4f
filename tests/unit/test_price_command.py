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


CHARGEMAP = FIX / "chargemap-ocpi-2.1.1" / "tests" / "Versions" / "V2_1_1"
CM_POST = CHARGEMAP / "Server" / "Emsp" / "Cdrs" / "Post" / "payloads"


def test_embedded_tariff_of_the_spec_example_prices_it_exactly(capsys):
    code, out = run(capsys, "--cdr", FIX / "ocpi" / "cdr_example.json")
    assert code == 0
    assert out["tariff"] == {"id": "12", "country_code": "BE", "party_id": "BEC",
                             "last_updated": "2015-02-02T14:15:01+00:00", "source": "embedded"}
    # 1.973 h = 7,103 s, step_size 300 s -> 7,200 s = 2 h x 2.00 = 4.00 (+10 % VAT)
    assert out["computed"]["total_cost"] == {"excl_vat": 4.0, "incl_vat": 4.4}
    assert out["difference"]["total_cost"] == {"excl_vat": 0.0, "incl_vat": 0.0}


def test_embedded_tariffs_the_periods_name_win_over_the_first_listed(tmp_path, capsys):
    cdr = json.loads((FIX / "ocpi" / "cdr_example.json").read_text())
    decoy = json.loads((FIX / "ocpi" / "tariff_8_simple_025kwh.json").read_text())
    cdr["tariffs"] = [decoy, *cdr["tariffs"]]              # listed first, named by no period
    (tmp_path / "c.json").write_text(json.dumps(cdr))
    code, out = run(capsys, "--cdr", tmp_path / "c.json")
    assert code == 0 and out["tariff"]["id"] == "12"
    assert out["computed"]["total_cost"]["excl_vat"] == 4.0
    assert not any("could apply" in w for w in out["warnings"])


def test_ambiguous_embedded_tariffs_use_the_first_with_a_note(tmp_path, capsys):
    cdr = json.loads((FIX / "ocpi" / "cdr_example.json").read_text())
    decoy = json.loads((FIX / "ocpi" / "tariff_8_simple_025kwh.json").read_text())
    cdr["tariffs"] = [*cdr["tariffs"], decoy]
    for period in cdr["charging_periods"]:
        period.pop("tariff_id")                           # nothing says which one applies
    (tmp_path / "c.json").write_text(json.dumps(cdr))
    code, out = run(capsys, "--cdr", tmp_path / "c.json")
    assert code == 0 and out["tariff"]["id"] == "12"
    assert any("2 tariffs could apply" in w and "'12'" in w for w in out["warnings"])


def test_chargemap_2019_cdr_without_tariffs_says_so_and_exits_2(capsys):
    """Real 2.1.1 CDR (TIME only, total_cost 0): no tariffs field, so nothing to price with."""
    cdr = CHARGEMAP / "Common" / "Factories" / "Payloads" / "Cdr" / "2dafe2cf-cbd7-4430-9a1a-c9b01abac372.json"
    assert main(["price", "--cdr", str(cdr)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert "no 'tariffs' field" in captured.err and "--tariff" in captured.err


def test_chargemap_cdr_with_an_empty_tariff_list_says_so_and_exits_2(capsys):
    assert main(["price", "--cdr", str(CM_POST / "ok_cdr_empty_tariff.json")]) == 2
    assert "'tariffs' is empty" in capsys.readouterr().err


def test_chargemap_2019_cdr_prices_with_a_tariff_given(tmp_path, capsys):
    """With a TIME tariff given, its 18.1261 h price; the CDR's own total 0 shows as the difference."""
    cdr = CHARGEMAP / "Common" / "Factories" / "Payloads" / "Cdr" / "2dafe2cf-cbd7-4430-9a1a-c9b01abac372.json"
    (tmp_path / "t.json").write_text(json.dumps({"id": "T", "currency": "EUR", "last_updated": "2019-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "TIME", "price": 1.0, "step_size": 60}]}]}))
    code, out = run(capsys, "--tariff", tmp_path / "t.json", "--cdr", cdr)
    assert code == 0 and out["tariff"]["source"] == "file"
    # 18.1261 h = 65,253.96 s -> 65,254 s; step 60 s -> 65,280 s = 18.1333 h x 1.00
    assert out["computed"]["total_cost"]["excl_vat"] == 18.1333
    assert out["cdr"]["total_cost"]["excl_vat"] == 0.0
    assert out["difference"]["total_cost"]["excl_vat"] == 18.1333


def test_chargemap_cdr_with_two_versions_of_one_tariff_notes_the_tie(capsys):
    code, out = run(capsys, "--cdr", CM_POST / "ok_cdr_full_payload.json")
    assert code == 0 and out["computed"]["total_cost"]["excl_vat"] == 4.0   # 1.973 h -> 2 h x 2.00
    assert any("share last_updated" in w for w in out["warnings"])
