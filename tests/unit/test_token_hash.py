"""pipeline.privacy: the Python and SQL token hashes agree."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.privacy import (
    DEFAULT_TOKEN_HASH_KEY,
    token_hash,
    token_hash_key,
    token_hash_params,
    token_hash_sql,
)
from pipeline.sql import execute


@pytest.mark.parametrize("uid", ["TAG1", " tag1 ", "012345678", "bdf21bce-fc97-11e8-8eb2-f2801f1b9fd1", "Éa"])
@pytest.mark.parametrize("key", [DEFAULT_TOKEN_HASH_KEY, "k" * 100, "s3cr3t"])
def test_python_and_sql_forms_are_equal(uid, key):
    conn = duckdb.connect()
    (sql_hash,) = execute(conn, f"select {token_hash_sql('$uid')}", {"uid": uid, **token_hash_params(key)})[0]
    assert sql_hash == token_hash(uid, key)
    assert len(sql_hash) == 32


def test_hash_is_case_insensitive_keyed_and_hides_the_uid():
    assert token_hash("tag1") == token_hash("TAG1")
    assert token_hash("TAG1", "a") != token_hash("TAG1", "b")
    assert "TAG1" not in token_hash("TAG1")
    assert token_hash(None) is None and token_hash("  ") is None


def test_key_comes_from_options_else_default():
    assert token_hash_key({"privacy": {"token_hash_key": "x"}}) == "x"
    assert token_hash_key({}) == DEFAULT_TOKEN_HASH_KEY
