"""No raw token UID outside ``raw.*`` and ``quarantine.*`` (personal data, ``pipeline.privacy``).

Every token UID and contract id the generator wrote into the landing files (OCPP idTag /
idToken, backend id_tag, CDR cdr_token and auth_id, OCPI Tokens) is searched for in every
text, JSON and list column of every other schema of the warehouse built from those files.
"""

import csv
import gzip
import re
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse import connect
from tests.fixtures.generated import generated_network, relations

pytestmark = pytest.mark.slow

# Layers that hold the records as received: the only places raw UIDs may stay.
RAW_SCHEMAS = {"raw", "quarantine"}
JSON_KEYS = re.compile(r'"(?:idTag|parentIdTag|idToken|uid|contract_id|auth_id)"\s*:\s*"([^"]+)"')
CSV_TOKEN_COLUMNS = {"id_tag", "idtag", "carduid", "card_uid", "token_uid", "token"}
NOT_TEXT = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT",
            "DECIMAL", "DATE", "TIME", "TIMESTAMP", "INTERVAL", "BLOB", "UUID")


def _text(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def landing_token_ids(landing: Path) -> set[str]:
    """Token UIDs and contract ids in the landing files (EVSE uids share the ``uid`` key: dropped)."""
    found: set[str] = set()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        name = path.name.removesuffix(".gz")
        if name.endswith(".parquet"):
            rel = duckdb.sql("select * from read_parquet($p)", params={"p": str(path)})
            cols = [c for c in rel.columns if c.lower() in CSV_TOKEN_COLUMNS]
            found |= {str(v) for row in rel.select(*cols).fetchall() for v in row if v} if cols else set()
        elif name.endswith(".csv"):
            for row in csv.DictReader(_text(path).splitlines()):
                found |= {v for k, v in row.items() if k and k.strip().lower() in CSV_TOKEN_COLUMNS and v}
        else:
            found |= set(JSON_KEYS.findall(_text(path).replace('\\"', '"')))
    evse_uids = {row["evse_uid"] for row in csv.DictReader(_text(landing / "registry" / "evses.csv").splitlines())}
    return {t.strip().upper() for t in found - evse_uids if len(t.strip()) >= 6}


def _pattern(tokens: set[str]) -> str:
    return "|".join(re.escape(t) for t in sorted(tokens))


def leaks(conn, pattern: str, schemas_excluded: set[str]) -> dict[str, int]:
    """``schema.table.column`` -> rows whose text holds one of the tokens."""
    out: dict[str, int] = {}
    for rel in relations(conn):
        schema, _, table = rel.partition(".")
        if schema in schemas_excluded:
            continue
        cols = [c for c, t in conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = $s and table_name = $t", {"s": schema, "t": table}).fetchall()
            if not t.startswith(NOT_TEXT)]
        if not cols:
            continue
        counts = conn.execute("select " + ", ".join(
            f'count(*) filter (where regexp_matches(upper(cast("{c}" as varchar)), $p))' for c in cols)
            + f' from "{schema}"."{table}"', {"p": pattern}).fetchall()[0]
        out.update({f"{rel}.{c}": n for c, n in zip(cols, counts, strict=True) if n})
    return out


@pytest.fixture(scope="module")
def network():
    out = generated_network()
    tokens = landing_token_ids(out / "landing")
    with connect(out / "w.duckdb") as conn:
        yield conn, tokens


def test_landing_files_hold_token_ids_that_the_raw_layer_keeps(network):
    conn, tokens = network
    assert len(tokens) >= 20
    # the scan itself works: the records as received still hold them
    found = leaks(conn, _pattern(tokens), set())
    assert any(k.startswith("raw.ocpp_frames.") for k in found)
    assert any(k.startswith("raw.tokens.") for k in found)
    assert any(k.startswith("raw.cdrs.") for k in found)


def test_no_raw_token_id_outside_raw_and_quarantine(network):
    conn, tokens = network
    assert leaks(conn, _pattern(tokens), RAW_SCHEMAS) == {}
