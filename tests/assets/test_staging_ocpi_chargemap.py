"""Real OCPI 2.1.1 payloads (ChargeMap, tests/fixtures/external/chargemap-ocpi-2.1.1) ingest.

A 2019 CDR, CDRs with empty or absent tariffs, real Location listings, Locations whose
last_updated has no time zone and an EVSE status PATCH: each is staged with its values, or
rejected with a precise reason where it cannot be used; counts balance per file; a night's
lineage and checks run over them.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.clock import build_charger_clock
from assets.lineage_transactions import build_transactions
from assets.staging import stage_all
from assets.staging_ocpp import stage_ocpp
from checks import collect_rules
from pipeline.config import load_options
from pipeline.flags import build_flags
from pipeline.ingest.run import ingest_landing
from pipeline.lineage.build import build_links, build_sessions
from pipeline.quarantine import file_accounting
from pipeline.tariffs.session_prices import build_session_prices
from pipeline.warehouse import connect
from tests.fixtures.ocpp.frames import rows

V211 = (Path(__file__).resolve().parent.parent / "fixtures" / "external" / "chargemap-ocpi-2.1.1"
        / "tests" / "Versions" / "V2_1_1")
VERSAILLES = V211 / "Common/Factories/Payloads/Cdr/2dafe2cf-cbd7-4430-9a1a-c9b01abac372.json"
CDR_POSTS = V211 / "Server/Emsp/Cdrs/Post/payloads"
LISTING = V211 / "Client/Locations/GetListing/payloads/Valid/real_sample.json"
PUT = V211 / "Server/Emsp/Locations/Put/payloads"
PATCH = V211 / "Server/Emsp/Locations/Evses/Patch/payloads/EvsePatchStatusPayload.json"
ALL_LOCATIONS = [LISTING, PUT / "ok_real_sample_1.json", PUT / "ok_with_last_updated_without_timezone.json", PATCH]


def _stage(tmp_path: Path, cdrs: list[Path] = (), locations: list[Path] = ()):
    landing = tmp_path / "landing"
    for source, files in (("cdrs", cdrs), ("locations", locations)):
        (landing / source).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, landing / source / f.name)
    opts = load_options()
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, landing, opts["ingest"])
    stage_all(conn, opts)
    return conn


def _balanced(conn, source: str) -> None:
    acc = file_accounting(conn, source)
    assert acc.height > 0 and acc.get_column("balanced").all(), acc
    assert conn.sql("select count(*) from quarantine.rejects where len(reasons) = 0").fetchall()[0][0] == 0


def test_versailles_2019_cdr_staged_with_its_values(tmp_path):
    conn = _stage(tmp_path, cdrs=[VERSAILLES])
    _balanced(conn, "cdrs")
    (cdr,) = rows(conn, "select * from staging.cdrs")
    assert cdr["ocpi_version"] == "2.1.1" and cdr["country_code"] is None and cdr["party_id"] is None
    assert cdr["start_at"] == datetime(2019, 11, 3, 11, 55, 59, tzinfo=UTC)
    assert cdr["end_at"] == datetime(2019, 11, 4, 6, 3, 33, tzinfo=UTC)
    assert cdr["total_cost_excl_vat"] == 0 and cdr["total_energy_kwh"] == pytest.approx(54.333)
    assert cdr["total_time_h"] == pytest.approx(18.1261) and cdr["tariff_ids"] == []
    assert (cdr["latitude"], cdr["longitude"]) == (pytest.approx(48.79661), pytest.approx(2.136693))
    assert cdr["location_id"] == "FR*55C*P78000*VER*CHANTIERS"
    assert cdr["evse_uid"] == "FR*55C*E78000*48*796610*2*136693*1"
    assert "coordinates: latitude and longitude look swapped" not in cdr["dq_warnings"]
    (period,) = rows(conn, "select dimension, volume, start_at from staging.cdr_charging_periods")
    assert period == {"dimension": "TIME", "volume": pytest.approx(18.1261),
                      "start_at": datetime(2019, 11, 3, 11, 55, 59, tzinfo=UTC)}
    # the contract id is personal data: only its keyed hash is staged
    assert "FR-CMP-C10316270" not in json.dumps(cdr, default=str)


@pytest.mark.parametrize("name", ["ok_cdr_without_tariff.json", "ok_cdr_empty_tariff.json",
                                  "ok_cdr_full_payload.json"])
def test_cdr_with_absent_empty_or_embedded_tariffs_stages(tmp_path, name):
    conn = _stage(tmp_path, cdrs=[CDR_POSTS / name])
    _balanced(conn, "cdrs")
    (cdr,) = rows(conn, "select * from staging.cdrs")
    assert (cdr["cdr_id"], cdr["total_cost_excl_vat"], cdr["total_energy_kwh"]) == ("12345", 4.0, pytest.approx(15.342))
    assert cdr["tariff_ids"] == (["12"] if name == "ok_cdr_full_payload.json" else [])
    # Gent at 3.7 N, 51.0 E: the known swap of this payload is a warning, the values as sent
    assert "coordinates: latitude and longitude look swapped" in cdr["dq_warnings"]
    assert (cdr["latitude"], cdr["longitude"]) == (pytest.approx(3.729944), pytest.approx(51.047599))


def test_the_three_posts_of_one_cdr_keep_one_and_say_why(tmp_path):
    conn = _stage(tmp_path, cdrs=sorted(CDR_POSTS.glob("*.json")))
    _balanced(conn, "cdrs")
    assert conn.sql("select count(*) from staging.cdrs").fetchall()[0][0] == 1
    reasons = [r[0] for r in conn.sql("select reasons from quarantine.rejects").fetchall()]
    assert len(reasons) == 2 and all(r[0].startswith("duplicate CDR id: superseded by cdrs/") for r in reasons)


def test_locations_stage_naive_times_as_utc_with_a_warning(tmp_path):
    conn = _stage(tmp_path, locations=ALL_LOCATIONS)
    _balanced(conn, "locations")
    evses = rows(conn, "select * from staging.location_evse_status order by source_file, evse_no")
    assert [(e["source_file"].split("/")[-1], e["evse_uid"]) for e in evses] == [
        ("ok_real_sample_1.json", "FRNIS*EFR13100*22RGAL1CE*0"),
        ("ok_with_last_updated_without_timezone.json", "3256"),
        ("ok_with_last_updated_without_timezone.json", "3257"),
        ("real_sample.json", "FRNIS*EFR13100*22RGAL1CE*0"),
    ]
    nissan = evses[0]
    assert nissan["location_last_updated_at"] == datetime(2020, 12, 8, 14, 22, 3, tzinfo=UTC)
    assert nissan["snapshot_at"] == datetime(2020, 12, 3, 14, 51, 14, tzinfo=UTC)
    assert (nissan["latitude"], nissan["longitude"]) == (pytest.approx(43.528715), pytest.approx(5.431882))
    assert {"last_updated: no time zone, read as UTC", "evses.last_updated: no time zone, read as UTC"} <= set(
        nissan["dq_warnings"])
    connector = json.loads(nissan["connectors"])[0]
    assert (connector["max_voltage"], connector["max_amperage"], connector["standard"]) == (400, 125, "CHADEMO")
    gent = evses[1]
    assert gent["snapshot_at"] == datetime(2015, 6, 28, 8, 12, 1, tzinfo=UTC) and gent["time_zone"] == "Europe/Paris"
    assert "coordinates: latitude and longitude look swapped" in gent["dq_warnings"]
    assert [c["tariff_ids"] for c in json.loads(gent["connectors"])] == [["11"], ["11"]]
    assert evses[2]["status"] == "RESERVED"


def test_a_zoned_location_has_no_time_zone_warning(tmp_path):
    # the negative case of the warning: the same Location with its times in Z
    doc = json.loads((PUT / "ok_real_sample_1.json").read_text())
    doc["last_updated"] += "Z"
    doc["evses"][0]["last_updated"] += "+01:00"
    path = tmp_path / "zoned.json"
    path.write_text(json.dumps(doc))
    conn = _stage(tmp_path, locations=[path])
    (evse,) = rows(conn, "select snapshot_at, dq_warnings from staging.location_evse_status")
    assert evse == {"snapshot_at": datetime(2020, 12, 3, 13, 51, 14, tzinfo=UTC), "dq_warnings": []}


def test_evse_status_patch_body_is_rejected_with_the_reason(tmp_path):
    conn = _stage(tmp_path, locations=[PATCH])
    _balanced(conn, "locations")
    ((reasons,),) = conn.sql("select reasons from quarantine.rejects").fetchall()
    assert "EVSE status PATCH body: names no Location or EVSE (OCPI puts them in the request URL)" in reasons


def test_the_payloads_reconcile_in_a_night(tmp_path):
    conn = _stage(tmp_path, cdrs=[VERSAILLES, CDR_POSTS / "ok_cdr_full_payload.json"], locations=ALL_LOCATIONS)
    opts = load_options()
    stage_ocpp(conn, opts)
    build_transactions(conn, opts)
    build_links(conn)
    build_sessions(conn)
    build_charger_clock(conn, opts)
    build_session_prices(conn, options=opts)
    build_flags(conn, opts, collect_rules())
    sessions = rows(conn, "select cdr_id, cdr_started_at from lineage.sessions order by cdr_started_at")
    assert [s["cdr_id"] for s in sessions] == ["12345", "2dafe2cf-cbd7-4430-9a1a-c9b01abac372"]
    assert sessions[1]["cdr_started_at"].year == 2019
    # no charger and no backend sent anything: each CDR is an orphan, and nothing else is flagged
    flags = rows(conn, 'select "check", cdr_id from recon.flags order by cdr_id')
    assert flags == [{"check": "orphan_cdr", "cdr_id": "12345"},
                     {"check": "orphan_cdr", "cdr_id": "2dafe2cf-cbd7-4430-9a1a-c9b01abac372"}]
