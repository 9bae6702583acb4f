"""Score ``recon.flags`` against a generated network's planted faults (``truth/faults.csv``).

A flag matches a truth row when the check is the same and the subject is:
- session checks: any of (charge_point_id + ocpp_transaction_id), backend_session_id, cdr_id;
- charger checks: charge_point_id;
- site-interval findings (a truth row with ``interval_start`` and no session ids): site_id and
  interval_start;
- EVSE checks: evse_uid, and interval_start within ``evse_interval_tolerance_s`` when the
  truth row gives one (status episodes start where each side first saw the disagreement).

Per check: TP = truth rows matched by a flag, FN = truth rows matched by none, FP = flags
matching no truth row; precision = matched flags / flags, recall = TP / truth rows (both 1.0
when there is nothing to count). The report is data first (``to_dict``), text last (``render``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.tariffs.model import parse_datetime

CHARGER_CHECKS = frozenset({"charger_clock_skew", "auth_latency"})
EVSE_CHECKS = frozenset({"status_mismatch", "capability_mismatch"})
SAMPLES = 5


def _s(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _instant(value: Any) -> datetime | None:
    """An ISO text or datetime as an aware UTC instant (naive reads as UTC)."""
    dt = parse_datetime(value if isinstance(value, datetime) else _s(value))
    return dt.astimezone(UTC) if dt else None


def level(check: str, row: Mapping[str, Any]) -> str:
    """``session``, ``charger``, ``evse`` or ``site_interval``: what the row is about."""
    if check in CHARGER_CHECKS:
        return "charger"
    if check in EVSE_CHECKS:
        return "evse"
    has_session_ids = any(_s(row.get(k)) for k in ("ocpp_transaction_id", "backend_session_id", "cdr_id"))
    if _s(row.get("interval_start")) and not has_session_ids:
        return "site_interval"
    return "session"


def matches(check: str, flag: Mapping[str, Any], truth: Mapping[str, Any],
            evse_interval_tolerance_s: float = 900) -> bool:
    """Whether one flag is about the subject of one truth row (same check assumed)."""
    lvl = level(check, truth)
    if lvl == "charger":
        return bool(_s(truth.get("charge_point_id"))) and _s(flag.get("charge_point_id")) == _s(truth.get("charge_point_id"))
    if lvl == "evse":
        if not _s(truth.get("evse_uid")) or _s(flag.get("evse_uid")) != _s(truth.get("evse_uid")):
            return False
        t_at = _instant(truth.get("interval_start"))
        if t_at is None:
            return True
        f_at = _instant(flag.get("interval_start"))
        return f_at is not None and abs((f_at - t_at).total_seconds()) <= evse_interval_tolerance_s
    if lvl == "site_interval":
        return (_s(flag.get("site_id")) == _s(truth.get("site_id"))
                and _instant(flag.get("interval_start")) == _instant(truth.get("interval_start")))
    tx = _s(truth.get("ocpp_transaction_id"))
    if tx and _s(flag.get("ocpp_transaction_id")) == tx and _s(flag.get("charge_point_id")) == _s(truth.get("charge_point_id")):
        return True
    for key in ("backend_session_id", "cdr_id"):
        value = _s(truth.get(key))
        if value and _s(flag.get(key)) == value:
            return True
    return False


@dataclass(frozen=True)
class CheckScore:
    """How one check's flags compare with the truth rows of that check."""

    check: str
    flags: int
    truth: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    fp_samples: tuple[Mapping[str, Any], ...] = ()
    fn_samples: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "flags": self.flags, "truth": self.truth, "tp": self.tp, "fp": self.fp,
            "fn": self.fn, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
            "fp_samples": [dict(x) for x in self.fp_samples], "fn_samples": [dict(x) for x in self.fn_samples],
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Scores per check, in check order."""

    scores: tuple[CheckScore, ...]

    def score(self, check: str) -> CheckScore | None:
        return next((s for s in self.scores if s.check == check), None)

    def failing(self, checks: Iterable[str], min_precision: float = 0.95, min_recall: float = 0.95) -> list[CheckScore]:
        """Scores of ``checks`` below either threshold (a check absent from both sides passes)."""
        out = []
        for check in checks:
            s = self.score(check)
            if s is not None and (s.precision < min_precision or s.recall < min_recall):
                out.append(s)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [s.to_dict() for s in self.scores]}

    def render(self) -> str:
        """A fixed-width table, one line per check."""
        head = f"{'check':<32} {'flags':>6} {'truth':>6} {'tp':>6} {'fp':>6} {'fn':>6} {'precision':>9} {'recall':>7}"
        lines = [head, "-" * len(head)]
        for s in self.scores:
            lines.append(f"{s.check:<32} {s.flags:>6} {s.truth:>6} {s.tp:>6} {s.fp:>6} {s.fn:>6} "
                         f"{s.precision:>9.3f} {s.recall:>7.3f}")
        return "\n".join(lines)


def evaluate_rows(flags: Iterable[Mapping[str, Any]], truth: Iterable[Mapping[str, Any]],
                  evse_interval_tolerance_s: float = 900) -> EvaluationReport:
    """Score flag rows (``recon.flags`` columns) against truth rows (``faults.csv`` columns)."""
    by_check_flags: dict[str, list[Mapping[str, Any]]] = {}
    by_check_truth: dict[str, list[Mapping[str, Any]]] = {}
    for f in flags:
        by_check_flags.setdefault(_s(f.get("check")), []).append(f)
    for t in truth:
        by_check_truth.setdefault(_s(t.get("check")), []).append(t)
    scores = []
    for check in sorted(set(by_check_flags) | set(by_check_truth)):
        fs, ts = by_check_flags.get(check, []), by_check_truth.get(check, [])
        index = _Index(check, ts)
        flag_hits = [index.hits(f, evse_interval_tolerance_s) for f in fs]
        matched_truth = set().union(*flag_hits) if flag_hits else set()
        unmatched_flags = [f for f, hit in zip(fs, flag_hits, strict=True) if not hit]
        missed = [t for i, t in enumerate(ts) if i not in matched_truth]
        scores.append(CheckScore(
            check=check, flags=len(fs), truth=len(ts), tp=len(matched_truth), fp=len(unmatched_flags),
            fn=len(missed),
            precision=(len(fs) - len(unmatched_flags)) / len(fs) if fs else 1.0,
            recall=len(matched_truth) / len(ts) if ts else 1.0,
            fp_samples=tuple(_brief(f) for f in unmatched_flags[:SAMPLES]),
            fn_samples=tuple(_brief(t) for t in missed[:SAMPLES]),
        ))
    return EvaluationReport(tuple(scores))


class _Index:
    """Truth rows of one check, indexed by subject so that matching stays linear."""

    def __init__(self, check: str, rows: list[Mapping[str, Any]]):
        self.check, self.rows = check, rows
        self.keys: dict[tuple[str, ...], set[int]] = {}
        for i, t in enumerate(rows):
            for key in self._keys(t):
                self.keys.setdefault(key, set()).add(i)

    @staticmethod
    def _keys(row: Mapping[str, Any]) -> list[tuple[str, ...]]:
        keys = []
        if _s(row.get("charge_point_id")):
            keys.append(("cp", _s(row["charge_point_id"])))
        for k in ("backend_session_id", "cdr_id", "evse_uid", "site_id"):
            if _s(row.get(k)):
                keys.append((k, _s(row[k])))
        return keys

    def hits(self, flag: Mapping[str, Any], tol: float) -> set[int]:
        candidates: set[int] = set()
        for key in self._keys(flag):
            candidates |= self.keys.get(key, set())
        return {i for i in candidates if matches(self.check, flag, self.rows[i], tol)}


def _brief(row: Mapping[str, Any]) -> dict[str, str]:
    keys = ("check", "session_key", "gen_session_id", "site_id", "charge_point_id", "evse_uid",
            "ocpp_transaction_id", "backend_session_id", "cdr_id", "interval_start", "detail")
    return {k: _s(row.get(k)) for k in keys if _s(row.get(k))}


def read_truth(path: str | Path) -> list[dict[str, str]]:
    """``faults.csv`` rows (``path`` is the file or the ``truth`` folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "faults.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_flags(conn) -> list[dict[str, Any]]:
    """``recon.flags`` rows as dicts."""
    cur = conn.execute(
        'select "check", session_key, severity, site_id, charge_point_id, evse_uid, ocpp_transaction_id, '
        "backend_session_id, cdr_id, interval_start from recon.flags"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def evaluate(conn, truth: str | Path, evse_interval_tolerance_s: float = 900) -> EvaluationReport:
    """Score the warehouse's ``recon.flags`` against ``truth`` (folder or ``faults.csv``)."""
    return evaluate_rows(read_flags(conn), read_truth(truth), evse_interval_tolerance_s)
