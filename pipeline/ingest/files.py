"""Finding landing files, hashing them and reading them (gzip or not)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Which file endings each landing sub-folder accepts (a trailing .gz is always allowed).
SOURCE_PATTERNS: dict[str, tuple[str, ...]] = {
    "registry": (".csv",),
    "ocpp": (".jsonl", ".log"),
    "backend": (".csv", ".parquet"),
    "cdrs": (".json", ".jsonl"),
    "tariffs": (".json", ".jsonl"),
    "ems": (".csv", ".parquet"),
    "locations": (".json", ".jsonl"),
    "tokens": (".json", ".jsonl"),
}
# Registry files are few and everything else joins to them: load them first.
SOURCE_ORDER = tuple(SOURCE_PATTERNS)


@dataclass(frozen=True)
class DataFile:
    source: str
    path: Path
    rel: str  # relative to the landing folder, forward slashes

    @property
    def is_gzip(self) -> bool:
        return self.path.name.endswith(".gz")

    @property
    def kind(self) -> str:
        """The ending that decides the reader (``.csv``, ``.jsonl`` ...), without ``.gz``."""
        name = self.path.name[:-3] if self.is_gzip else self.path.name
        return Path(name).suffix.lower()

    @property
    def stem(self) -> str:
        name = self.path.name[:-3] if self.is_gzip else self.path.name
        return Path(name).stem.lower()

    def content_hash(self) -> str:
        h = hashlib.sha256()
        with self.path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def read_bytes(self) -> bytes:
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.is_gzip else data


def discover(landing: Path) -> list[DataFile]:
    """Every file below each known source folder, in a stable order.

    Files with an ending the source does not accept are still returned (with their
    source), so the loader can reject them by name instead of losing them silently.
    """
    out: list[DataFile] = []
    for source in SOURCE_ORDER:
        root = landing / source
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name.startswith("."):
                continue
            out.append(DataFile(source, path, path.relative_to(landing).as_posix()))
    return out


def iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """1-based line numbers and raw lines, CRLF tolerated, trailing empty line dropped."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for no, line in enumerate(lines, start=1):
        yield no, line.rstrip(b"\r")
