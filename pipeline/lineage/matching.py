"""Scoring candidate pairs and choosing at most one partner per record.

SQL generates the candidates set-based (equi-join on the EVSE and a time bucket) with their
raw evidence; these functions turn the evidence into a rule and a confidence and pick the
accepted links. They see only the candidate set, never whole tables, so they stay cheap.

Candidate frame columns
-----------------------
left_id, right_id : str
    The two records (e.g. an OCPP transaction ref and a backend session id).
exact_rule : str or null
    The identifier rule that joined them (``exact_transaction_id``, ...), null when they
    met only on EVSE and time.
start_diff_s, stop_diff_s : float or null
    Absolute start and stop differences in seconds (null when a side lacks the time).
energy_left_kwh, energy_right_kwh : float or null
    Energy as each side reports it.
token_match : bool or null
    Whether the tokens agree (null when either side has none).
prefer : int, optional
    Lower wins among otherwise equal tiers (used to let a live CDR take a session's slot
    before a credited one).
"""

from __future__ import annotations

import polars as pl

#: Weights of the fuzzy score. Time carries most: it is always present and is what
#: separates back-to-back sessions; energy and token break ties and catch swaps.
W_TIME, W_ENERGY, W_TOKEN = 0.5, 0.3, 0.2
#: A fuzzy link is never as certain as an identifier match.
MAX_FUZZY_CONFIDENCE = 0.99
#: Energies below this (kWh) are compared against it, so that 0.1 vs 0.2 kWh is not a
#: 50 % disagreement that sinks an otherwise perfect match.
ENERGY_FLOOR_KWH = 1.0

CANDIDATE_SCHEMA = {
    "left_id": pl.String,
    "right_id": pl.String,
    "exact_rule": pl.String,
    "start_diff_s": pl.Float64,
    "stop_diff_s": pl.Float64,
    "energy_left_kwh": pl.Float64,
    "energy_right_kwh": pl.Float64,
    "token_match": pl.Boolean,
    "prefer": pl.Int32,
}


def _closeness(col: str, window_s: float) -> pl.Expr:
    return (1.0 - pl.col(col) / window_s).clip(0.0, 1.0)


def score_candidates(candidates: pl.DataFrame, window_s: float) -> pl.DataFrame:
    """Add ``rule``, ``confidence`` and the score components to a candidate frame.

    Parameters
    ----------
    candidates : pl.DataFrame
        See the module docstring.
    window_s : float
        Match window in seconds: a time difference of ``window_s`` or more scores 0.

    Returns
    -------
    pl.DataFrame
        The input plus ``time_score``, ``energy_score``, ``token_score``, ``rule`` and
        ``confidence`` (1.0 for identifier rules, at most ``MAX_FUZZY_CONFIDENCE`` else).
    """
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    df = candidates
    if "prefer" not in df.columns:
        df = df.with_columns(pl.lit(0, dtype=pl.Int32).alias("prefer"))
    start = _closeness("start_diff_s", window_s)
    stop = _closeness("stop_diff_s", window_s)
    time_score = (
        pl.when(pl.col("start_diff_s").is_not_null() & pl.col("stop_diff_s").is_not_null())
        .then((start + stop) / 2.0)
        .otherwise(pl.coalesce(start, stop, pl.lit(0.0)))
    )
    e_l, e_r = pl.col("energy_left_kwh"), pl.col("energy_right_kwh")
    scale = pl.max_horizontal(e_l.abs(), e_r.abs(), pl.lit(ENERGY_FLOOR_KWH))
    energy_score = (
        pl.when(e_l.is_null() | e_r.is_null())
        .then(0.5)
        .otherwise(1.0 - ((e_l - e_r).abs() / scale).clip(0.0, 1.0))
    )
    token_score = (
        pl.when(pl.col("token_match").is_null())
        .then(0.5)
        .when(pl.col("token_match"))
        .then(1.0)
        .otherwise(0.0)
    )
    df = df.with_columns(
        time_score.alias("time_score"),
        energy_score.alias("energy_score"),
        token_score.alias("token_score"),
    )
    fuzzy = (
        W_TIME * pl.col("time_score") + W_ENERGY * pl.col("energy_score") + W_TOKEN * pl.col("token_score")
    ).clip(0.0, MAX_FUZZY_CONFIDENCE)
    return df.with_columns(
        pl.when(pl.col("exact_rule").is_not_null())
        .then(pl.col("exact_rule"))
        .when(pl.col("token_match").fill_null(False))
        .then(pl.lit("evse_time_token"))
        .otherwise(pl.lit("evse_time"))
        .alias("rule"),
        pl.when(pl.col("exact_rule").is_not_null())
        .then(1.0)
        .otherwise(fuzzy.round(4))
        .alias("confidence"),
    )


def assign_one_to_one(scored: pl.DataFrame, min_confidence: float = 0.0) -> pl.DataFrame:
    """Greedy one-to-one assignment: best pairs first, no record used twice.

    Identifier links go before fuzzy ones whatever their scores, so a fuzzy neighbour can
    never take the slot of a record its own id points at. Within a tier, ``prefer`` then
    confidence then the smaller start difference win; ids break the remaining ties so the
    result does not depend on row order.

    Parameters
    ----------
    scored : pl.DataFrame
        Output of :func:`score_candidates`.
    min_confidence : float
        Fuzzy pairs below this are never accepted.

    Returns
    -------
    pl.DataFrame
        The accepted rows of ``scored`` (same columns).
    """
    if scored.is_empty():
        return scored
    ordered = (
        scored.filter(pl.col("exact_rule").is_not_null() | (pl.col("confidence") >= min_confidence))
        .with_columns(
            pl.col("exact_rule").is_null().alias("_fuzzy"),
            pl.col("start_diff_s").fill_null(float("inf")).alias("_start"),
        )
        .sort(
            ["_fuzzy", "prefer", "confidence", "_start", "left_id", "right_id"],
            descending=[False, False, True, False, False, False],
        )
    )
    used_left: set[str] = set()
    used_right: set[str] = set()
    keep: list[bool] = []
    for left, right in zip(ordered["left_id"].to_list(), ordered["right_id"].to_list(), strict=True):
        ok = left not in used_left and right not in used_right
        if ok:
            used_left.add(left)
            used_right.add(right)
        keep.append(ok)
    return ordered.filter(pl.Series(keep, dtype=pl.Boolean)).drop("_fuzzy", "_start")
