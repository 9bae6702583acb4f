"""Copying a warehouse for a test: the analysts' file and everything beside it."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_warehouse(src: Path, dst: Path) -> Path:
    """Copy ``src`` (``x.duckdb``) with its work file, tables, decision store to ``dst``.

    Views in the analysts' file name the Delta files by absolute path, so the copy is
    republished over its own tables.
    """
    from pipeline.publish import publish
    from pipeline.storage import TableStore

    src, dst = Path(src), Path(dst)
    for suffix in (".work.duckdb", ".review.sqlite"):
        s = src.with_name(src.stem + suffix)
        if s.exists():
            shutil.copy(s, dst.with_name(dst.stem + suffix))
    tables = src.with_name(src.stem + ".tables")
    if tables.exists():
        shutil.copytree(tables, dst.with_name(dst.stem + ".tables"))
        shutil.copy(src, dst)
        publish(TableStore(dst.with_name(dst.stem + ".tables")), dst)
    else:
        shutil.copy(src, dst)
    return dst


def work_file(warehouse: Path) -> Path:
    return Path(warehouse).with_name(Path(warehouse).stem + ".work.duckdb")
