"""Running the lineage build: SQL for the volume, Python only on the candidate sets.

``build_links`` writes ``lineage.match_*`` (records shaped for matching),
``lineage.link_candidates`` (every scored candidate, accepted or not) and
``lineage.links``; ``build_sessions`` writes ``lineage.sessions`` from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from pipeline.lineage.matching import CANDIDATE_SCHEMA, assign_one_to_one, score_candidates
from pipeline.privacy import DEFAULT_TOKEN_HASH_KEY, token_hash_key, token_hash_params
from pipeline.sql import build_table, execute, query, table_sql

#: Defaults of the ``[lineage]`` options (see pipeline/defaults.toml).
DEFAULT_WINDOW_S = 900.0
DEFAULT_MIN_CONFIDENCE = 0.2
DEFAULT_DUPLICATE_TOLERANCE_S = 120.0


@dataclass(frozen=True)
class LinkOptions:
    """Matching tolerances.

    Attributes
    ----------
    window_s : float
        Largest start difference a fuzzy link may bridge (charger clock skew, backend drift).
    min_confidence : float
        Fuzzy candidates scoring below this are never accepted.
    duplicate_tolerance_s : float
        Start and stop difference within which a second CDR on the same EVSE with the same
        energy counts as a duplicate of the linked one.
    token_key : str
        Key of the token hash (``privacy.token_hash_key``, see ``pipeline.privacy``).
    """

    window_s: float = DEFAULT_WINDOW_S
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    duplicate_tolerance_s: float = DEFAULT_DUPLICATE_TOLERANCE_S
    token_key: str = DEFAULT_TOKEN_HASH_KEY

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> LinkOptions:
        lineage = options.get("lineage", {}) or {}
        return cls(
            window_s=float(lineage.get("match_window_s", DEFAULT_WINDOW_S)),
            min_confidence=float(lineage.get("min_confidence", DEFAULT_MIN_CONFIDENCE)),
            duplicate_tolerance_s=float(lineage.get("duplicate_tolerance_s", DEFAULT_DUPLICATE_TOLERANCE_S)),
            token_key=token_hash_key(options),
        )

    def params(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "duplicate_tolerance_s": self.duplicate_tolerance_s,
            **token_hash_params(self.token_key),
        }


@dataclass(frozen=True)
class LinkReport:
    candidates_ocpp_backend: int
    candidates_session_cdr: int
    links_by_rule: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates_ocpp_backend": self.candidates_ocpp_backend,
            "candidates_session_cdr": self.candidates_session_cdr,
            "links_by_rule": dict(self.links_by_rule),
        }


_DETAIL = ["start_diff_s", "stop_diff_s", "energy_left_kwh", "energy_right_kwh", "token_match",
           "time_score", "energy_score", "token_score"]


def _assign(conn: duckdb.DuckDBPyConnection, candidates: str, stage: str, opts: LinkOptions) -> pl.DataFrame:
    """Score and assign one candidate table; store every candidate with its verdict."""
    raw = query(conn, f"select * from {candidates}")
    raw = raw.cast({k: v for k, v in CANDIDATE_SCHEMA.items() if k in raw.columns}) if raw.height else pl.DataFrame(
        schema=CANDIDATE_SCHEMA)
    scored = score_candidates(raw, opts.window_s)
    accepted = assign_one_to_one(scored, opts.min_confidence)
    accepted = accepted.with_columns(pl.struct(_DETAIL).struct.json_encode().alias("score_detail"))
    keys = accepted.select("left_id", "right_id").with_columns(pl.lit(True).alias("accepted"))
    verdicts = (
        scored.join(keys, on=["left_id", "right_id"], how="left")
        .with_columns(pl.col("accepted").fill_null(False), pl.lit(stage).alias("stage"))
    )
    conn.register("_verdicts", verdicts.to_arrow())
    execute(conn, "insert into lineage.link_candidates by name select * from _verdicts")
    conn.unregister("_verdicts")
    return accepted.select("left_id", "right_id", "rule", "confidence", "score_detail")


def _write(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    conn.register("_frame", frame.to_arrow())
    execute(conn, f"create or replace table {table} as select * from _frame")
    conn.unregister("_frame")


_CANDIDATES_DDL = """
create or replace table lineage.link_candidates (
    stage varchar, left_id varchar, right_id varchar, exact_rule varchar,
    start_diff_s double, stop_diff_s double, energy_left_kwh double, energy_right_kwh double,
    token_match boolean, prefer integer, time_score double, energy_score double,
    token_score double, rule varchar, confidence double, accepted boolean
)
"""


def build_links(conn: duckdb.DuckDBPyConnection, opts: LinkOptions | None = None) -> LinkReport:
    """Build ``lineage.links`` (and its helper tables) from lineage.transactions and staging.

    Parameters
    ----------
    conn : duckdb.DuckDBPyConnection
        Warehouse connection with ``lineage.transactions``, ``staging.backend_sessions``,
        ``staging.cdrs`` and ``staging.evses``.
    opts : LinkOptions, optional
        Tolerances; defaults when not given.

    Returns
    -------
    LinkReport
        Candidate counts and accepted links per rule.
    """
    opts = opts or LinkOptions()
    params = opts.params()
    for table in ("match_ocpp", "match_backend", "match_cdrs"):
        build_table(conn, f"lineage.{table}", params)
    execute(conn, _CANDIDATES_DDL)

    n_ob = build_table(conn, "lineage.candidates_ocpp_backend", params)
    _write(conn, "lineage.link_ocpp_backend", _assign(conn, "lineage.candidates_ocpp_backend", "ocpp_backend", opts))

    build_table(conn, "lineage.stage_sessions", params)
    n_sc = build_table(conn, "lineage.candidates_session_cdr", params)
    _write(conn, "lineage.link_session_cdr", _assign(conn, "lineage.candidates_session_cdr", "session_cdr", opts))

    build_table(conn, "lineage.links", params)
    by_rule = dict(conn.execute("select rule, count(*) from lineage.links group by rule order by rule").fetchall())
    return LinkReport(n_ob, n_sc, by_rule)


def build_sessions(conn: duckdb.DuckDBPyConnection) -> int:
    """Build ``lineage.sessions`` from ``lineage.links``; returns its row count."""
    return build_table(conn, "lineage.sessions")


def sessions_sql() -> str:
    """The SELECT behind ``lineage.sessions`` (for docs and ad-hoc runs)."""
    return table_sql("lineage", "sessions")
