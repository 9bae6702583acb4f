"""A night over data of any date, whose files touch scattered days, always completes.

The landing folder holds three small generated networks side by side (2019, 2024, 2035,
each under its own sub-folder of every source) plus files whose days are far from any
session: a Location snapshot pulled months earlier and a tariff published weeks before it
applies. ``chargeline run`` then makes one reconcile run per contiguous range of days.
The generator gives every network the same site, charger, location and CDR ids, and NL
tariff ids, so the 2024 and 2035 copies are renamed here (in content and paths); the
generator itself is left as it is.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main as chargeline
from pipeline.day_partitions import contiguous
from tests.support.warehouse_copy import copy_warehouse, work_file

pytestmark = pytest.mark.slow

NETWORKS = {  # sub-folder: (first day, seed, id tag)
    "net2019": (date(2019, 3, 10), 3, ""),
    "net2024": (date(2024, 6, 3), 5, "B"),
    "net2035": (date(2035, 1, 15), 7, "C"),
}
OLD_SNAPSHOT_DAY = date(2018, 12, 1)


def _renamer(tag: str):
    """Text -> text with this network's ids made its own (same length where formats care)."""
    if not tag:
        return lambda text: text
    digit = {"B": "7", "C": "8"}[tag]
    subs = [
        (re.compile(r"\bSITE-(?=\d)"), f"SITE-{tag}"),
        (re.compile(r"\bLOC-(?=\d)"), f"LOC-{tag}"),
        (re.compile(r"\bCP-(?=\d)"), f"CP-{tag}"),
        (re.compile(r"\bCDR-(?=\d)"), f"CDR-{tag}"),
        (re.compile(r"\bBK-"), f"BK-{tag}"),
        (re.compile(r"\*E0"), f"*E{digit}"),  # eMI3 EVSE ids embed the site number
        (re.compile(r'"([A-Z]{2})-(AC|DC|MG|FLEET)"'), rf'"\1-\2-{tag}"'),  # tariff ids
    ]

    def rename(text: str) -> str:
        for pattern, repl in subs:
            text = pattern.sub(repl, text)
        return text

    return rename


def _place(generated: Path, landing: Path, folder: str, tag: str) -> None:
    """Copy a generated landing folder to ``landing/<source>/<folder>/...``, ids renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rename = _renamer(tag)
    for path in sorted(p for p in generated.rglob("*") if p.is_file()):
        source, *rest = path.relative_to(generated).parts
        target = landing / source / folder / rename("/".join(rest))
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            cols = [pa.array([rename(v) if isinstance(v, str) else v for v in c.to_pylist()], type=c.type)
                    if pa.types.is_string(c.type) else c for c in table.columns]
            pq.write_table(pa.table(cols, names=table.column_names), target)
        else:
            target.write_text(rename(path.read_text(encoding="utf-8")), encoding="utf-8")


def _scattered_files(generated: Path, landing: Path) -> None:
    """Files of the 2019 network whose days are nowhere near its sessions."""
    # a nightly pull of the Locations from three months earlier: every EVSE last changed then
    snapshot = sorted((generated / "locations").rglob("*.json"))[0]
    stamp = f"{OLD_SNAPSHOT_DAY.isoformat()}T06:00:00Z"
    text = re.sub(r'"last_updated": ?"[^"]+"', f'"last_updated":"{stamp}"', snapshot.read_text())
    (landing / "locations" / "pulled").mkdir(parents=True)
    (landing / "locations" / "pulled" / f"{OLD_SNAPSHOT_DAY.isoformat()}.json").write_text(text)
    # a tariff version published on 10 February that comes into force on 10 March
    tariff_file = sorted((generated / "tariffs").glob("*_v1.json"))[0]
    doc = json.loads(tariff_file.read_text())
    body = doc["data"][0] if isinstance(doc, dict) and "data" in doc else doc
    body.update(id="NL-EARLYBIRD", last_updated="2019-02-10T09:00:00Z", start_date_time="2019-03-10T00:00:00Z")
    (landing / "tariffs" / "published_early").mkdir(parents=True)
    (landing / "tariffs" / "published_early" / "NL-EARLYBIRD_v1.json").write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("anydate")
    landing = root / "landing"
    for folder, (start, seed, tag) in NETWORKS.items():
        out = root / folder
        assert chargeline(["generate", "--out", str(out), "--quiet", "--evses", "20", "--days", "1",
                           "--seed", str(seed), "--start", start.isoformat(), "--fault-rate", "0.05",
                           "--workers", "1"]) == 0
        _place(out / "landing", landing, folder, tag)
    _scattered_files(root / "net2019" / "landing", landing)
    warehouse = root / "w.duckdb"
    return {"root": root, "landing": landing, "warehouse": warehouse}


def _run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = chargeline(["run", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_night_of_scattered_days_from_2019_to_2035_reconciles_every_day(night, capsys, monkeypatch):
    monkeypatch.setenv("CHARGELINE_REPORTS", str(night["root"] / "reports"))
    code, out, err = _run(capsys, "--landing", str(night["landing"]), "--warehouse", str(night["warehouse"]))
    assert code == 0, err
    assert "failed in" not in err
    with duckdb.connect(str(night["warehouse"]), read_only=True) as conn:
        touched = [r[0] for r in conn.execute(
            "select distinct day from meta.file_days where day is not null order by day").fetchall()]
        pending = conn.execute("select count(*) from meta.pending_days").fetchone()[0]
        # a session linked to its backend session and its CDR: each source of that year staged
        session_days = {r[0] for r in conn.execute(
            "select distinct cast(started_at as date) from lineage.sessions "
            "where cdr_id is not null and backend_session_id is not null").fetchall()}
        implausible = conn.execute("select count(*) from quarantine.rejects "
                                   "where len(list_filter(reasons, lambda r: r like '%plausible_time')) > 0").fetchone()[0]
        flag_days = {r[0] for r in conn.execute("""
            select distinct cast(s.started_at as date) from recon.flags as f
            join lineage.sessions as s using (session_key)""").fetchall()}
        integrity = conn.execute("select check_name, asset, days, passed, details from meta.integrity_results "
                                 "order by checked_at").fetchall()
    ranges = contiguous(touched)
    # the scattered files make several runs: before, within and after the networks' days
    assert len(ranges) >= 4, ranges
    assert any(OLD_SNAPSHOT_DAY in (a, b) for a, b in ranges)
    assert f"reconciled days: {touched[0]} .. {touched[-1]} ({len(touched)} days, {len(ranges)} runs)" in err
    assert pending == 0  # every day touched was reconciled
    assert implausible == 0
    for start, _, _ in NETWORKS.values():
        assert start in session_days, f"no sessions on {start}"
        assert start in flag_days, f"no findings on {start}"
    # each range judged its own days, and all of them held
    by_range = [r for r in integrity if r[0] == "transactions_account_for_events"]
    assert sorted((min(d), max(d)) for _, _, d, _, _ in by_range) == ranges
    assert all(passed for *_, passed, _ in integrity), [r for r in integrity if not r[3]]
    assert f"Integrity checks: {len(integrity)} passed, 0 failed" in out


def test_a_failed_integrity_check_is_reported_and_the_findings_are_still_written(night, capsys, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("CHARGELINE_REPORTS", str(tmp_path / "reports"))
    warehouse = copy_warehouse(night["warehouse"], tmp_path / "w.duckdb")
    day = NETWORKS["net2024"][0]
    with duckdb.connect(str(work_file(warehouse))) as conn:
        # one record of a CDR file was read but is neither staged nor quarantined any more
        (lost_file,) = conn.execute("""
            update meta.files set records_read = records_read + 1
            where source_file = (select min(source_file) from meta.files where source = 'cdrs')
            returning source_file""").fetchone()
    # the day's findings are gone from the published table: the run must write them again
    from deltalake import DeltaTable

    DeltaTable(str(warehouse.with_name("w.tables") / "recon" / "flags")).delete(f"part_day = '{day.isoformat()}'")
    code, out, err = _run(capsys, "--landing", str(night["landing"]), "--warehouse", str(warehouse),
                          "--from", day.isoformat())
    assert code == 0, err
    assert "FAILED integrity check accounting_balances on stg_cdrs (days all): files=" in out
    assert "files_unbalanced=1" in out
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (details,) = conn.execute("""
            select details from meta.integrity_results
            where check_name = 'accounting_balances' and asset = 'stg_cdrs' and not passed""").fetchone()
        flags = conn.execute("""
            select count(*) from recon.flags as f join lineage.sessions as s using (session_key)
            where cast(s.started_at as date) = $d""", {"d": day}).fetchone()[0]
        review = conn.execute("select count(*) from recon.review").fetchone()[0]
    assert json.loads(details)["unbalanced"][0]["source_file"] == lost_file
    assert flags > 0  # the day's findings were written again despite the failed check
    assert review > 0
