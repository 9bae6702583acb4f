"""Credit CDRs (OCPI 2.2.1 mod_cdrs "Credit CDRs"): staged with negative amounts, one billed
session with their original and its re-issue, never a duplicate, never priced as live."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import duckdb
import pytest

from assets.staging import stage_all
from checks import collect_rules
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.ingest.run import ingest_landing
from pipeline.lineage.build import LinkOptions, build_links, build_sessions
from pipeline.quarantine import file_accounting
from pipeline.tariffs.session_prices import build_session_prices
from pipeline.warehouse import configure, connect
from tests.fixtures.lineage_seed import Net, at

OCPI = Path(__file__).resolve().parent.parent / "fixtures" / "external" / "ocpi"


def _negated(price: dict) -> dict:
    return {k: (None if v is None else -v) for k, v in price.items()}


def _cdrs() -> list[dict]:
    """The spec's example CDR, its credit (money negated, as the spec says) and a re-issue."""
    original = json.loads((OCPI / "cdr_example.json").read_text())
    credit = copy.deepcopy(original)
    credit.update(id="12345-C", credit=True, credit_reference_id="12345",
                  total_cost=_negated(original["total_cost"]),
                  total_time_cost=_negated(original["total_time_cost"]),
                  last_updated="2015-07-02T10:00:00Z")
    reissue = copy.deepcopy(original)
    reissue.update(id="12345-R", total_cost={"excl_vat": 3.5, "incl_vat": 3.85},
                   total_time_cost={"excl_vat": 3.5, "incl_vat": 3.85}, last_updated="2015-07-02T10:00:01Z")
    # A normal CDR with a negative total is not a credit: it must still be refused.
    broken = copy.deepcopy(original)
    broken.update(id="99999", total_cost={"excl_vat": -1.0, "incl_vat": -1.1})
    return [original, credit, reissue, broken]


def test_credit_cdr_with_negative_amounts_is_staged_a_negative_normal_cdr_is_not(tmp_path):
    landing = tmp_path / "landing" / "cdrs"
    landing.mkdir(parents=True)
    (landing / "cdrs.jsonl").write_text("\n".join(json.dumps(c) for c in _cdrs()) + "\n")
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, tmp_path / "landing", load_options()["ingest"])
    stage_all(conn, load_options())
    staged = {r[0]: r[1:] for r in conn.sql(
        "select cdr_id, credit, credit_reference_id, total_cost_excl_vat, total_cost_incl_vat, "
        "credited_by_cdr_id from staging.cdrs").fetchall()}
    assert set(staged) == {"12345", "12345-C", "12345-R"}
    assert staged["12345-C"] == (True, "12345", -4.0, -4.4, None)
    assert staged["12345"][4] == "12345-C"  # the original knows its credit
    (reasons,) = conn.sql("select reasons from quarantine.rejects").fetchall()[0]
    assert any("amounts_not_negative_unless_credit" in r for r in reasons), reasons
    assert file_accounting(conn, "cdrs").get_column("balanced").all()
    (warnings,) = conn.sql("select dq_warnings from staging.cdrs where cdr_id = '12345-C'").fetchall()[0]
    assert not any("credit CDR: total_cost positive" in w for w in warnings)


def test_a_credit_with_positive_amounts_is_staged_with_a_warning(tmp_path):
    """Some CPOs repeat the credited amounts unsigned: still a credit, never lost, but said."""
    original, credit, *_ = _cdrs()
    credit.update(total_cost=original["total_cost"], total_time_cost=original["total_time_cost"])
    landing = tmp_path / "landing" / "cdrs"
    landing.mkdir(parents=True)
    (landing / "cdrs.json").write_text(json.dumps([original, credit]))
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, tmp_path / "landing", load_options()["ingest"])
    stage_all(conn, load_options())
    (credited, warnings) = conn.sql(
        "select credit, dq_warnings from staging.cdrs where cdr_id = '12345-C'").fetchall()[0]
    assert credited and any("credit CDR: total_cost positive" in w for w in warnings)


def _build(net: Net) -> duckdb.DuckDBPyConnection:
    conn = configure(duckdb.connect())
    net.write(conn)
    build_links(conn, LinkOptions())
    build_sessions(conn)
    return conn


OPTIONS = {"checks": {"duplicate_cdr": {"severity": {"default": "error"}},
                      "orphan_cdr": {"severity": {"default": "warn"}}}}


def _duplicates(conn) -> list[tuple]:
    build_flags(conn, OPTIONS, [r for r in collect_rules() if r.check in ("duplicate_cdr", "orphan_cdr")])
    return conn.execute('select "check", cdr_id, money_at_risk::double from recon.flags order by all').fetchall()


def test_original_credit_and_reissue_are_one_session_without_a_duplicate():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")             # original CDR-101, 3.30 EUR
    net.add_cdr("CDR-101-C", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", credit=True,
                credit_reference_id="CDR-101")                       # -3.30 EUR
    net.add_cdr("CDR-101-R", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", cost=2.0)
    conn = _build(net)
    (row,) = conn.execute("select cdr_id, cdr_ids, n_live_cdrs, credit_cdr_ids, cdr_total_cost_excl_vat "
                          "from lineage.sessions").fetchall()
    assert row == ("CDR-101-R", ["CDR-101-R", "CDR-101"], 1, ["CDR-101-C"], 2.0)
    assert _duplicates(conn) == []


def test_two_live_cdrs_of_one_session_are_a_duplicate():
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.add_cdr("CDR-101-R", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", cost=2.0)  # no credit first
    conn = _build(net)
    assert _duplicates(conn) == [("duplicate_cdr", "CDR-101-R", 2.0)]


@pytest.mark.parametrize("reissued", [True, False])
def test_a_credited_original_is_not_priced_as_live(reissued):
    """The session's price row is the re-issue's; with no re-issue nothing bills, so nothing is priced."""
    net = Net()
    net.session("CP-1", 1, "101", 0, 60, 11.0, "TAG1")
    net.add_cdr("CDR-101-C", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", credit=True,
                credit_reference_id="CDR-101")
    if reissued:
        net.add_cdr("CDR-101-R", at(0), at(60), 11.0, "S-101", "TAG1", "CP-1-1", cost=2.0)
    conn = _build(net)
    # The seed's versions carry no body; give them one so that pricing has something to price.
    conn.execute("alter table staging.tariff_versions add column tariff_json json")
    conn.execute("""update staging.tariff_versions set tariff_json = json_object(
        'country_code', country_code, 'party_id', party_id, 'id', tariff_id, 'currency', currency,
        'last_updated', strftime(last_updated_at, '%Y-%m-%dT%H:%M:%SZ'),
        'elements', json('[{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}]'))""")
    build_session_prices(conn)
    priced = conn.execute("select cdr_id, cdr_total_cost_excl_vat from recon.session_prices "
                          "where cdr_id is not null").fetchall()
    assert priced == ([("CDR-101-R", 2.0)] if reissued else [])
