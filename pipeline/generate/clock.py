"""Fast UTC timestamp formatting for the generator's hot paths.

Frames are written by the million, so times travel as float epoch seconds and are
formatted with cached day prefixes instead of ``datetime.isoformat`` per frame.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC

# Charger timestamp styles seen in the field; all are valid RFC 3339 except +0000,
# which many chargers still send and parsers must accept.
STYLES = ("ms_z", "s_z", "ms_plus", "s_plus0000")

_DAY_CACHE: dict[int, str] = {}


def _day_prefix(day_no: int) -> str:
    prefix = _DAY_CACHE.get(day_no)
    if prefix is None:
        prefix = (dt.date(1970, 1, 1) + dt.timedelta(days=day_no)).isoformat() + "T"
        _DAY_CACHE[day_no] = prefix
    return prefix


def iso(t: float, style: str = "ms_z") -> str:
    """Format epoch seconds as an ISO 8601 UTC timestamp.

    Parameters
    ----------
    t : float
        Seconds since the epoch (may be negative-free only; 1970 values are fine).
    style : str
        One of ``STYLES``: milliseconds or whole seconds, and the UTC suffix.

    Returns
    -------
    str
        e.g. ``2026-11-16T08:00:01.123Z``.
    """
    ms_total = int(t * 1000.0 + 0.5)
    sec, ms = divmod(ms_total, 1000)
    day_no, s = divmod(sec, 86400)
    hms = f"{_day_prefix(day_no)}{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    if style == "ms_z":
        return f"{hms}.{ms:03d}Z"
    if style == "s_z":
        return f"{hms}Z"
    if style == "ms_plus":
        return f"{hms}.{ms:03d}+00:00"
    return f"{hms}+0000"


def iso_s(t: float) -> str:
    """Whole-second ISO UTC with ``Z`` (OCPI and backend style)."""
    return iso(float(int(t + 0.5)), "s_z")


def log_ts(t: float) -> str:
    """The ``ocpp`` logger's ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC host clock)."""
    return iso(t, "ms_z")[:-1].replace("T", " ")


def local_dt(t: float, tz: ZoneInfo) -> dt.datetime:
    """Epoch seconds as an aware local datetime."""
    return dt.datetime.fromtimestamp(t, tz)


def local_iso(t: float, tz: ZoneInfo, with_offset: bool = True) -> str:
    """Local wall-clock ISO string, with or without the UTC offset."""
    d = dt.datetime.fromtimestamp(int(t + 0.5), tz)
    return d.isoformat() if with_offset else d.replace(tzinfo=None).isoformat()


def epoch(d: dt.datetime) -> float:
    """Aware datetime to epoch seconds."""
    return d.timestamp()


def local_midnight(day: dt.date, tz: ZoneInfo) -> float:
    """Epoch seconds of local midnight starting ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
