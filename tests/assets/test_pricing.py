"""recon.session_prices: which version a CDR used, and the prices under each version."""

import dagster as dg
import pytest

from assets.pricing import recon_session_prices
from pipeline.resources import LandingResource, WarehouseResource
from pipeline.tariffs.session_prices import build_session_prices
from pipeline.warehouse import connect
from tests.fixtures.tariff_world import World

A = "NL:CLN:T1@2026-11-01T00:00:00Z"
B = "NL:CLN:T1@2026-11-15T00:00:00Z"


@pytest.fixture
def prices(tmp_path):
    w = World()
    w.session("clean", 9)
    w.session("stale", 13)                       # 4.00 = version A, but B applies at 13:00
    w.session("wrong", 9, cdr_total=4.5)         # fits no version
    w.session("across", 11.5)                    # B comes into force at 12:00
    w.session("embedded", 13, embed="A")
    w.session("no_cdr", 9, cdr_total=None)       # priced from OCPP meter values
    with connect(tmp_path / "w.duckdb") as conn:
        w.write(conn)
        counts = build_session_prices(conn)
        rows = conn.sql("select * from recon.session_prices").pl().to_dicts()
    return counts, {r["session_key"]: r for r in rows}


def test_every_candidate_priced_once(prices):
    counts, rows = prices
    assert counts == {"priced": 6} and len(rows) == 6


@pytest.mark.parametrize(("key", "source", "used", "force", "p_used", "p_force"), [
    ("clean", "price_match", A, A, 4.0, 4.0),
    ("stale", "price_match", A, B, 4.0, 5.0),
    ("wrong", "assumed_in_force", A, A, 4.0, 4.0),
    ("embedded", "embedded", A, B, 4.0, 5.0),
])
def test_cdr_version_and_prices(prices, key, source, used, force, p_used, p_force):
    row = prices[1][key]
    assert (row["cdr_tariff_source"], row["cdr_tariff_version_id"], row["in_force_version_id"]) == (source, used, force)
    assert row["price_cdr_tariff_excl_vat"] == pytest.approx(p_used)
    assert row["price_in_force_excl_vat"] == pytest.approx(p_force)
    assert row["period_source"] == "cdr"


def test_version_coming_into_force_mid_session_is_priced_too(prices):
    row = prices[1]["across"]
    assert row["next_version_id"] == B and row["price_next_version_excl_vat"] == pytest.approx(5.0)
    assert prices[1]["clean"]["next_version_id"] is None


def test_session_without_cdr_is_priced_from_meter_values(prices):
    row = prices[1]["no_cdr"]
    assert row["period_source"] == "ocpp_meter_values" and row["cdr_id"] is None
    assert row["energy_kwh"] == pytest.approx(10.0)
    assert row["price_in_force_excl_vat"] == pytest.approx(4.0)


def test_missing_inputs_give_an_empty_table(tmp_path):
    with connect(tmp_path / "w.duckdb") as conn:
        assert build_session_prices(conn) == {}
        assert conn.execute("select count(*) from recon.session_prices").fetchall()[0][0] == 0


def test_asset_materializes_with_its_check(tmp_path):
    path = tmp_path / "w.duckdb"
    w = World()
    w.session("clean", 9)
    with connect(path) as conn:
        w.write(conn)
    from assets.pricing import session_prices_unique

    result = dg.materialize([recon_session_prices, session_prices_unique],
                            resources={"duckdb": WarehouseResource(database=str(path)),
                                       "landing": LandingResource(path=str(tmp_path / "landing"))})
    assert result.success
    (ev,) = result.get_asset_check_evaluations()
    assert ev.passed


def test_recomputed_cost_is_in_session_prices_and_lineage_is_untouched(tmp_path):
    w = World()
    w.session("stale", 13)                       # CDR priced with A, B in force: 5.00 excl, 21 % VAT
    w.session("no_cdr", 9, cdr_total=None)       # priced from meter values under A: 4.00
    with connect(tmp_path / "w.duckdb") as conn:
        w.write(conn)
        # a backend-only session nobody can price
        conn.execute("insert into lineage.sessions (session_key, site_id) values ('backend_only', 'SITE-1')")
        lineage_before = conn.execute("select * from lineage.sessions order by session_key").fetchall()
        columns_before = [r[0] for r in conn.execute("describe lineage.sessions").fetchall()]
        build_session_prices(conn)
        got = {r[0]: r[1:] for r in conn.execute("""
            select s.session_key, p.price_in_force_excl_vat, p.price_in_force_incl_vat, p.in_force_version_id
            from lineage.sessions as s left join recon.session_prices as p using (session_key)""").fetchall()}
        # pricing writes only its own table: lineage.sessions keeps its columns and rows
        assert [r[0] for r in conn.execute("describe lineage.sessions").fetchall()] == columns_before
        assert conn.execute("select * from lineage.sessions order by session_key").fetchall() == lineage_before
    assert got == {
        "stale": (pytest.approx(5.0), pytest.approx(6.05), B),
        "no_cdr": (pytest.approx(4.0), pytest.approx(4.84), A),
        "backend_only": (None, None, None),
    }


def test_failed_pricing_keeps_the_previous_prices(tmp_path, monkeypatch):
    w = World()
    w.session("clean", 9)
    with connect(tmp_path / "w.duckdb") as conn:
        w.write(conn)
        build_session_prices(conn)
        before = conn.execute("select price_in_force_excl_vat from recon.session_prices").fetchall()

        def boom(*args, **kwargs):
            raise RuntimeError("tariff engine down")

        monkeypatch.setattr("pipeline.tariffs.session_prices.Pricer.price_row", boom)
        with pytest.raises(RuntimeError):
            build_session_prices(conn)
        assert conn.execute("select price_in_force_excl_vat from recon.session_prices").fetchall() == before
    assert before == [(pytest.approx(4.0),)]


def test_price_match_tolerance_comes_from_the_options(tmp_path):
    """A CDR 0.03 off version A: the default cent finds no version; a wider option finds A."""
    w = World()
    w.session("near", 9, cdr_total=4.03)
    with connect(tmp_path / "w.duckdb") as conn:
        w.write(conn)
        build_session_prices(conn)
        strict = conn.sql("select cdr_tariff_source from recon.session_prices").fetchall()
        build_session_prices(conn, options={"checks": {"stale_tariff": {"price_match_tolerance": 0.05}}})
        loose = conn.sql("select cdr_tariff_source from recon.session_prices").fetchall()
    assert strict == [("assumed_in_force",)] and loose == [("price_match",)]
