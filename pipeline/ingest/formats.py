"""How each landing file is read: per-source settings, OCPP text-log line patterns.

``[ingest.sources.<name>]`` entries in the configuration carry a ``glob`` (matched against
the file's path below the landing folder, ``*`` also crossing ``/``) and any reading
setting. Every entry whose glob matches applies, in configuration order, a later one
overriding the keys of an earlier one: defaults first, a user's file after them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

# Line shapes of OCPP text logs seen in the field. Each regex has named groups `time`,
# `direction`, `frame` and optionally `charger`; a line it does not match is not a frame
# (a notice, a prose line) and is counted, not rejected. The frame group takes the rest of
# the line, so a cut or garbled frame on a frame line is still rejected with its reason.
LOG_PRESETS: dict[str, dict[str, Any]] = {
    # The `ocpp` Python package's logger (also the Home Assistant OCPP integration):
    # "2024-01-30 15:29:16.767 INFO (MainThread) [ocpp] CP-1: receive message [2,...]".
    "ocpp_package": {
        "pattern": r"^(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+\w+\s+\([^)]*\)\s+"
                   r"\[[^\]]*\]\s+(?P<charger>[^:\s]+):\s+(?P<direction>receive message|send)\s+(?P<frame>.*?)\s*$",
        "direction_in": ["receive message"],
        "direction_out": ["send"],
    },
    # The OCPP compliance test tool (OCTT) testing a charging station: it plays the CSMS, so
    # its msg-in is charger -> CSMS. "[2024-05-17T09:20:43:730] [msg-in] [3, ...]"; the
    # milliseconds follow a colon; the clock is UTC. The log names no charger: it comes
    # from the folder the file sits in.
    "octt": {
        "pattern": r"^\[(?P<time>[^\]]+)\]\s+\[(?P<direction>msg-in|msg-out)\]\s+(?P<frame>.*?)\s*$",
        "time_format": "%Y-%m-%dT%H:%M:%S:%g",
        "time_zone": "UTC",
        "direction_in": ["msg-in"],
        "direction_out": ["msg-out"],
        "charger_from_path": r"(?P<charger>[^/]+)/[^/]+$",
    },
    # Python `websockets` debug lines: "... [websockets.server] < TEXT '[2,...]' [318 bytes]".
    # The library cuts long frames in the middle: those lines are rejected, not guessed at.
    "websockets_debug": {
        "pattern": r"^(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+\w+\s+\([^)]*\)\s+"
                   r"\[websockets\.\w+\]\s+(?P<direction>[<>])\s+TEXT\s+'(?P<frame>.*)'\s+\[\d+ bytes\]\s*$",
        "direction_in": ["<"],
        "direction_out": [">"],
        "charger_from_path": r"(?P<charger>[^/]+)/[^/]+$",
    },
}
DEFAULT_LOG_PRESET = "ocpp_package"
_FIELDS = ("time", "direction", "charger", "frame")


# The keys an [ingest.sources.<name>] entry may have (documented in defaults.toml).
SOURCE_KEYS = frozenset({
    "glob", "columns", "shape", "constants", "delimiter", "quote", "decimal", "timestamp_format",
    "null_values", "log_preset", "log_pattern", "log_time_format", "log_time_zone", "log_direction_in",
    "log_direction_out", "log_charger_from_path", "log_ocpp_version",
})


def unknown_source_keys(options: dict) -> list[str]:
    """Dotted names of keys in ``[ingest.sources.*]`` entries that are not settings.

    Entry names and their ``columns``/``constants`` tables are the user's own; the keys of
    an entry are not: a misspelt ``delimter`` would otherwise be ignored silently.
    """
    sources = (options.get("ingest") or {}).get("sources") or {}
    out = []
    for name, entry in sources.items():
        if not isinstance(entry, dict):
            out.append(f"ingest.sources.{name}")
            continue
        out += [f"ingest.sources.{name}.{k}" for k in entry if k not in SOURCE_KEYS]
    return out


def source_settings(opts: dict, rel: str) -> dict[str, Any]:
    """The merged ``[ingest.sources.*]`` settings whose glob matches ``rel``."""
    out: dict[str, Any] = {}
    for name, entry in (opts.get("sources") or {}).items():
        if not isinstance(entry, dict) or "glob" not in entry:
            raise ValueError(f"[ingest.sources.{name}] needs a glob")
        if fnmatch.fnmatchcase(rel, entry["glob"]):
            out |= {k: v for k, v in entry.items() if k != "glob"}
    return out


@dataclass(frozen=True)
class LogPattern:
    """One OCPP text-log line shape, ready for DuckDB's ``regexp_extract``."""

    pattern: str  # the configured regex, wrapped so every field has a group
    names: tuple[str, ...]  # one name per capture group, in order (DuckDB's struct fields)
    time_format: str  # DuckDB strptime format; empty: the text is ISO 8601 already
    time_zone: str
    direction_in: tuple[str, ...]
    direction_out: tuple[str, ...]
    ocpp_version: str | None
    charger_from_path: str | None

    def path_charger(self, rel: str) -> str | None:
        if not self.charger_from_path:
            return None
        m = re.search(self.charger_from_path, rel)
        if not m:
            return None
        return m.groupdict().get("charger") or (m.group(1) if m.re.groups else m.group(0)) or None

    def params(self) -> dict[str, Any]:
        # strptime needs a valid constant format even where it is not used
        return {"pattern": self.pattern, "names": list(self.names), "parse_time": bool(self.time_format),
                "time_format": self.time_format or "%Y-%m-%d",
                "time_zone": self.time_zone, "dir_in": [d.lower() for d in self.direction_in],
                "dir_out": [d.lower() for d in self.direction_out], "ocpp_version": self.ocpp_version}


def log_pattern(opts: dict, rel: str) -> LogPattern:
    """The line pattern for one ``.log`` file: its source settings over a preset."""
    settings = source_settings(opts, rel)
    preset_name = settings.get("log_preset", DEFAULT_LOG_PRESET)
    if preset_name not in LOG_PRESETS:
        raise ValueError(f"unknown log_preset {preset_name!r} for {rel} (known: {', '.join(LOG_PRESETS)})")
    cfg = {**LOG_PRESETS[preset_name], **{k.removeprefix("log_"): v for k, v in settings.items()
                                          if k.startswith("log_") and k != "log_preset"}}
    regex = cfg["pattern"]
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"log_pattern for {rel} is not a regex: {exc}") from exc
    if "frame" not in compiled.groupindex:
        raise ValueError(f"log_pattern for {rel} needs a named group 'frame'")
    # DuckDB names capture groups by position: give every group a name, and add an empty
    # group for each field the pattern leaves out, so the SQL can always read all four.
    by_no = {no: name for name, no in compiled.groupindex.items()}
    names = [by_no.get(i, f"_g{i}") for i in range(1, compiled.groups + 1)]
    missing = [f for f in _FIELDS if f not in compiled.groupindex]
    wrapped = f"(?:{regex})" + "".join("()" for _ in missing)
    names += missing
    # the ocpp package's zone stays the long-standing key, so existing settings still apply
    zone = cfg.get("time_zone") or opts.get("ocpp_log_time_zone", "UTC")
    return LogPattern(
        pattern=wrapped, names=tuple(names), time_format=cfg.get("time_format", ""), time_zone=zone,
        direction_in=tuple(cfg.get("direction_in", ())), direction_out=tuple(cfg.get("direction_out", ())),
        ocpp_version=cfg.get("ocpp_version"), charger_from_path=cfg.get("charger_from_path"),
    )
