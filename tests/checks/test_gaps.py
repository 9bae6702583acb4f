"""Record gaps: missing_cdr, orphan_cdr, missing_backend_session, duplicate_cdr."""

import datetime as dt

import pytest

from checks.gaps import RULES
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.warehouse import connect
from tests.checks.lineage_seed import T0, add_cdr, add_session, add_site, create_tables, findings


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        create_tables(c)
        add_site(c, site_type="fleet")
        yield c


def run(conn):
    return build_flags(conn, load_options(), RULES)


def test_clean_sessions_have_no_gap_findings(conn):
    add_session(conn, "a", site_type="fleet")
    # Credited and re-issued with corrected figures: one live CDR, not a duplicate.
    add_session(conn, "b", site_type="fleet", connector=2, cdr_ids=["CDR-b", "CDR-b2"], n_live_cdrs=1,
                cdr_is_credited=True)
    add_cdr(conn, "CDR-b2", energy=10.0, total=4.0)
    conn.execute("update lineage.match_cdrs set is_live = false where cdr_id = 'CDR-b'")
    # A free session and a failed one need no CDR.
    add_session(conn, "c", site_type="fleet", cdr=False, backend_amount=0.0)
    add_session(conn, "d", site_type="fleet", cdr=False, backend_status="Failed")
    # A session still running has no CDR yet.
    add_session(conn, "e", site_type="fleet", cdr=False, ocpp_stopped_at=None, backend_stopped_at=None)
    # A CDR whose original was credited on purpose, without OCPP or backend: bills nothing.
    add_session(conn, "f", site_type="fleet", ocpp=False, backend=False, cdr_is_credited=True)
    assert sum(run(conn).values()) == 0


def test_missing_cdr_priced_from_backend_amount(conn):
    add_session(conn, "a", site_type="fleet", energy=12.0, cdr=False, backend_amount=4.8)
    add_session(conn, "b", site_type="fleet", connector=2, energy=0.05, cdr=False)  # too small to bill
    assert run(conn)["missing_cdr"] == 1
    (f,) = findings(conn, "missing_cdr")
    assert f["session_key"] == "a" and f["severity"] == "error" and float(f["money_at_risk"]) == 4.8


def test_missing_cdr_falls_back_to_site_unit_price(conn):
    add_session(conn, "ref", site_type="fleet", energy=10.0, price=0.30)
    add_session(conn, "a", site_type="fleet", connector=2, energy=20.0, cdr=False, backend_amount=None)
    assert run(conn)["missing_cdr"] == 1
    (f,) = findings(conn, "missing_cdr")
    assert float(f["money_at_risk"]) == pytest.approx(6.0)


def test_orphan_cdr(conn):
    add_session(conn, "a", site_type="fleet", ocpp=False, backend=False, cdr_total_cost_excl_vat=7.5)
    assert run(conn)["orphan_cdr"] == 1
    (f,) = findings(conn, "orphan_cdr")
    assert f["cdr_id"] == "CDR-a" and float(f["money_at_risk"]) == 7.5


def test_missing_backend_session(conn):
    add_session(conn, "a", site_type="fleet", energy=8.0, backend=False, cdr=False, price=0.5)
    add_session(conn, "ref", site_type="fleet", connector=2, energy=10.0, price=0.25)
    counts = run(conn)
    assert counts["missing_backend_session"] == 1
    assert counts["missing_cdr"] == 0  # the backend issues CDRs: one root cause, one finding
    (f,) = findings(conn, "missing_backend_session")
    assert f["ocpp_transaction_id"] == "A" and float(f["money_at_risk"]) == pytest.approx(2.0)


def test_duplicate_cdr_flags_the_later_live_cdr(conn):
    add_session(conn, "a", site_type="fleet", cdr_ids=["CDR-a", "CDR-a-dup"], n_live_cdrs=2)
    add_cdr(conn, "CDR-a-dup", total=3.9, updated=T0 + dt.timedelta(days=1))
    assert run(conn)["duplicate_cdr"] == 1
    (f,) = findings(conn, "duplicate_cdr")
    assert f["cdr_id"] == "CDR-a-dup" and float(f["money_at_risk"]) == 3.9 and f["severity"] == "error"
