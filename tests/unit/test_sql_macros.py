"""The shared SQL definitions are macros written once beside their Python twins.

``token_hash`` (``pipeline.privacy``), ``version_id`` and ``tariff_in_force``
(``pipeline.tariffs.history``) are DuckDB temp macros ``pipeline.sql`` creates on each
connection it runs SQL on. Each must answer exactly as its Python twin, and the token hash
exactly as the HMAC expression the SQL files spelled out before the macro existed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import duckdb
import pytest

from pipeline.privacy import DEFAULT_TOKEN_HASH_KEY, token_hash, token_hash_params
from pipeline.sql import create_macros, execute, table_exists
from pipeline.tariffs.history import TariffVersion, version_id

# The expression nine SQL files carried before the macro (HEAD~2:pipeline/privacy.py).
BEFORE = ("case when nullif(upper(trim($uid)), '') is not null then "
          "left(sha256($token_opad || unhex(sha256($token_ipad || encode(upper(trim($uid)))))), 32) end")


def test_a_known_uid_hashes_as_it_did_before_the_macro():
    conn = duckdb.connect()
    params = {"uid": "04A2B3C4D5E6F7", **token_hash_params(DEFAULT_TOKEN_HASH_KEY)}
    ((now, before),) = execute(conn, f"select token_hash($uid, $token_ipad, $token_opad), {BEFORE}", params)
    # the value staging wrote for this UID under the default key before the change
    assert now == before == token_hash("04A2B3C4D5E6F7") == "890938b7d7f027133823739383d1b8e2"


@pytest.mark.parametrize("uid", ["TAG1", " tag1 ", "Éa", "bdf21bce-fc97-11e8-8eb2-f2801f1b9fd1", "", "   ", None])
@pytest.mark.parametrize("key", [DEFAULT_TOKEN_HASH_KEY, "k" * 100, "site-secret"])
def test_macro_equals_the_old_expression_and_python(uid, key):
    conn = duckdb.connect()
    params = {"uid": uid, **token_hash_params(key)}
    ((now, before),) = execute(conn, f"select token_hash($uid::varchar, $token_ipad, $token_opad), {BEFORE}",
                               params)
    assert now == before == token_hash(uid, key)


@pytest.mark.parametrize("country, party, tariff_id, updated", [
    ("DE", "ABC", "T-1", datetime(2024, 3, 1, tzinfo=UTC)),
    (None, None, "T-1", datetime(2019, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ("FR", "", "T-2", datetime(2035, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))),
    ("NL", "XYZ", "T-3", None),
])
def test_version_id_macro_equals_python(country, party, tariff_id, updated):
    conn = duckdb.connect()
    ((sql,),) = execute(conn, "select version_id($c, $p, $t, $u::timestamptz)",
                        {"c": country, "p": party, "t": tariff_id, "u": updated})
    assert sql == version_id(country, party, tariff_id, updated)


T = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize("valid_from, valid_to, at", [
    (T, None, T), (T, None, T - timedelta(microseconds=1)), (T, T + timedelta(hours=1), T + timedelta(hours=1)),
    (T, T + timedelta(hours=1), T + timedelta(minutes=59)), (None, T, T - timedelta(days=9000)), (None, None, T),
])
def test_in_force_macro_equals_python(valid_from, valid_to, at):
    conn = duckdb.connect()
    ((sql,),) = execute(conn, "select tariff_in_force($f::timestamptz, $t::timestamptz, $a::timestamptz)",
                        {"f": valid_from, "t": valid_to, "a": at})
    assert sql == TariffVersion(tariff=None, valid_from=valid_from, valid_to=valid_to).in_force(at)


def test_macros_exist_on_every_connection_sql_runs_on_even_read_only(tmp_path):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    ro = duckdb.connect(str(path), read_only=True)
    assert execute(ro, "select version_id('DE', 'X', 'T', null::timestamptz)") == [("DE:X:T@",)]
    cursor = ro.cursor()  # a cursor has its own temp catalog
    assert execute(cursor, "select tariff_in_force(null, null, now())") == [(True,)]
    bare = duckdb.connect()
    with pytest.raises(duckdb.CatalogException):
        bare.execute("select version_id('DE', 'X', 'T', null::timestamptz)").fetchall()
    create_macros(bare)
    assert bare.execute("select version_id('DE', 'X', 'T', null::timestamptz)").fetchall() == [("DE:X:T@",)]


def test_table_exists_sees_tables_and_views_by_schema():
    conn = duckdb.connect()
    conn.execute("create schema recon")
    conn.execute("create table recon.flags (x int)")
    conn.execute("create view recon.v as select 1")
    assert table_exists(conn, "recon.flags") and table_exists(conn, "recon.v")
    assert not table_exists(conn, "recon.review") and not table_exists(conn, "main.flags")
