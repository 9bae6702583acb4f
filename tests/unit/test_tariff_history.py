"""One definition of a tariff version: its id, when it is in force, and whether two price alike.

``pipeline.tariffs.history`` defines them; ``staging.tariff_versions`` (SQL) must give the same
answers, since the pricing step and the tariff checks read its columns.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from assets.staging import stage_all
from pipeline.config import load_options
from pipeline.ingest.run import ingest_landing
from pipeline.tariffs.history import price_content, same_prices, tariff_version_id, versions
from pipeline.tariffs.model import tariff_from_ocpi
from pipeline.warehouse import connect

BASE = {
    "country_code": "DE", "party_id": "ABC", "id": "T", "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 19, "step_size": 1}],
                  "restrictions": {"start_time": "08:00", "end_time": "20:00"}},
                 {"price_components": [{"type": "ENERGY", "price": 0.29, "vat": 19, "step_size": 1}]}],
    "last_updated": "2024-03-01T00:00:00Z",
}


def _v(**changes) -> dict:
    obj = copy.deepcopy(BASE)
    obj.update(changes)
    return obj


def test_republication_with_a_new_last_updated_prices_alike():
    a = tariff_from_ocpi(BASE)
    b = tariff_from_ocpi(_v(last_updated="2024-04-01T00:00:00Z", type="REGULAR",
                            tariff_alt_text=[{"language": "en", "text": "same"}]))
    c = tariff_from_ocpi(json.loads(json.dumps(BASE).replace("0.39", "0.390")))  # 0.390 == 0.39
    assert tariff_version_id(a) != tariff_version_id(b)
    assert same_prices(a, b) and same_prices(a, c)


def test_any_price_relevant_change_is_a_different_price():
    a = tariff_from_ocpi(BASE)
    changed = []
    for path, value in [
        (("elements", 0, "price_components", 0, "price"), 0.41),
        (("elements", 0, "price_components", 0, "step_size"), 100),
        (("elements", 0, "price_components", 0, "vat"), 7),
        (("elements", 0, "restrictions", "end_time"), "21:00"),
        (("currency",), "CHF"),
    ]:
        obj = copy.deepcopy(BASE)
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        changed.append(obj)
    changed.append(_v(max_price={"excl_vat": 20, "incl_vat": 23.8}))
    changed.append(_v(elements=list(reversed(BASE["elements"]))))  # order decides which element prices
    for obj in changed:
        assert not same_prices(a, tariff_from_ocpi(obj)), obj
    assert len({price_content(tariff_from_ocpi(o)) for o in changed}) == len(changed)


def test_staging_sql_and_history_agree_on_version_ids_and_validity(tmp_path):
    objs = [
        BASE,
        _v(last_updated="2024-03-10T12:00:00Z"),                                   # re-published
        _v(last_updated="2024-03-05T00:00:00Z", start_date_time="2024-04-01T00:00:00Z"),  # announced
        _v(last_updated="2024-04-20T00:00:00+02:00", end_date_time="2024-05-01T00:00:00Z"),
        _v(id="U", last_updated="2019-11-04T06:03:35"),                             # no zone: UTC
    ]
    landing = tmp_path / "landing" / "tariffs"
    landing.mkdir(parents=True)
    (landing / "tariffs.json").write_text(json.dumps(objs))
    conn = connect(tmp_path / "w.duckdb")
    ingest_landing(conn, tmp_path / "landing", load_options()["ingest"])
    stage_all(conn, load_options())
    staged = {r[0]: r[1:] for r in conn.sql(
        "select version_id, valid_from_at, valid_to_at from staging.tariff_versions").fetchall()}
    expected = {
        tariff_version_id(v.tariff): (v.valid_from, v.valid_to)
        for chain in versions(tariff_from_ocpi(o) for o in objs).values() for v in chain
    }
    assert staged == expected
    assert "DE:ABC:U@2019-11-04T06:03:35Z" in staged
    assert staged["DE:ABC:T@2024-04-19T22:00:00Z"][1] == datetime(2024, 5, 1, tzinfo=UTC)
