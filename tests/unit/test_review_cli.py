"""``chargeline review list|show|set|export`` on a small seeded warehouse."""

import json

import polars as pl
import pytest

from pipeline import review
from pipeline.cli import main
from pipeline.warehouse import connect
from tests.fixtures.review_seed import seed_upstream


@pytest.fixture
def wh(warehouse_path):
    with connect(warehouse_path) as c:
        seed_upstream(c)
        review.sync_review(c)
    return str(warehouse_path)


def test_list_most_money_first_and_filters(wh, capsys):
    assert main(["review", "list", "--warehouse", wh, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    money = [r["money_at_risk"] for r in rows]
    assert money == sorted(money, reverse=True) and rows[0]["review_key"] == "sk-3"
    assert main(["review", "list", "--warehouse", wh, "--check", "cost_mismatch", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("review_key,") and len(out) == 2 and out[1].startswith("sk-1,")
    assert main(["review", "list", "--warehouse", wh, "--site-type", "fleet", "--severity", "error"]) == 0
    table = capsys.readouterr().out
    assert "sk-3" in table and "sk-1" not in table and "1 item(s), 12.00 at risk" in table


def test_set_then_show_and_list_by_status(wh, capsys):
    assert main(["review", "set", "CP-1:101", "--status", "confirmed", "--note", "refund",
                 "--reviewer", "ana", "--warehouse", wh]) == 0
    assert "sk-1: open -> confirmed by ana" in capsys.readouterr().out
    assert main(["review", "list", "--warehouse", wh, "--status", "confirmed", "--format", "json"]) == 0
    assert [r["review_key"] for r in json.loads(capsys.readouterr().out)] == ["sk-1"]
    assert main(["review", "show", "CDR-101", "--warehouse", wh]) == 0
    shown = capsys.readouterr().out
    assert "status=confirmed" in shown and "cost_mismatch" in shown and "refund" in shown
    assert "ocpp_energy_kwh" in shown      # the lineage row


def test_set_unknown_key_and_bad_status(wh, capsys):
    assert main(["review", "set", "nope", "--status", "confirmed", "--warehouse", wh]) == 1
    assert "no review item" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["review", "set", "sk-1", "--status", "approved", "--warehouse", wh])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export(wh, tmp_path, suffix, capsys):
    out = tmp_path / f"queue{suffix}"
    assert main(["review", "export", "--out", str(out), "--warehouse", wh]) == 0
    frame = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
    assert frame.height == 5 and frame["review_key"][0] == "sk-3"
    assert {"status", "reviewer", "note", "checks", "finding_present"} <= set(frame.columns)


def test_missing_warehouse(tmp_path, capsys):
    assert main(["review", "list", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
