"""Partners (a tree with materialized paths), stores (with region validation), warehouses and their cities."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.catalog.models import PriceTier
from app.channel.models import Partner, Store
from app.extensions import db
from app.inventory.models import Location, Warehouse
from tests.helpers import assert_db_unchanged, assert_error


@pytest.fixture()
def ref(app, demo):
    with app.app_context():
        return {
            "partners": {p.code: (p.id, p.path) for p in db.session.scalars(sa.select(Partner))},
            "stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
            "tiers": dict(db.session.execute(sa.select(PriceTier.code, PriceTier.id)).all()),
        }


def test_demo_tree_paths(ref):
    p = ref["partners"]
    hq_id, hq_path = p["HQ"]
    assert hq_path == f"/{hq_id}/"
    assert p["A1"][1] == f"{hq_path}{p['A1'][0]}/"
    assert p["D1"][1] == f"{p['A1'][1]}{p['D1'][0]}/"
    assert p["D5"][1] == f"{hq_path}{p['D5'][0]}/"


def test_create_partner_under_parent(client, admin, ref):
    a1_id, a1_path = ref["partners"]["A1"]
    resp = client.post("/api/hq/v1/partners", headers=admin, json={
        "code": "D9", "name": "温州分销", "kind": "distributor", "parent_id": a1_id,
        "territories": [{"region_code": "330300"}]})
    assert resp.status_code == 201, resp.get_json()
    new = resp.get_json()
    assert new["parent_id"] == a1_id and new["territories"] == [{"region_code": "330300", "industry": None}]
    with client.application.app_context():
        assert db.session.get(Partner, new["id"]).path == f"{a1_path}{new['id']}/"


BAD_PARTNERS = [
    ({"code": "D1"}, 409),
    ({"parent_id": 999999}, 404),
    ({"parent_id": "1"}, 422),
    ({"kind": "hq"}, 422),
    ({"territories": [{"region_code": "999999"}]}, 422),
    ({"territories": [{"region_code": "33"}]}, 422),
    ({"territories": "330300"}, 422),
    ({"name": ""}, 422),
    ({"unknown": 1}, 422),
]


def test_bad_partner_changes_nothing(client, admin, ref):
    for change, status in BAD_PARTNERS:
        body = {"code": "D9", "name": "温州分销", "kind": "distributor", "parent_id": ref["partners"]["A1"][0],
                **change}
        with assert_db_unchanged():
            resp = client.post("/api/hq/v1/partners", json=body, headers=admin)
            assert resp.status_code == status, (change, resp.get_json())
            assert_error(resp, status)


def test_distributor_cannot_be_a_parent(client, admin, ref):
    body = {"code": "D9", "name": "x", "kind": "distributor", "parent_id": ref["partners"]["D1"][0]}
    with assert_db_unchanged():
        assert_error(client.post("/api/hq/v1/partners", json=body, headers=admin), 422)


def test_partner_list_scoped(client, admin, distributor, ref):
    everything = client.get("/api/hq/v1/partners?page_size=200", headers=admin).get_json()
    assert everything["total"] == len(ref["partners"])
    mine = client.get("/api/hq/v1/partners", headers=distributor).get_json()
    assert [p["code"] for p in mine["items"]] == ["D1"]


# --- stores ----------------------------------------------------------------------------------------------------

def _store(ref, **over):
    body = {"code": "S99", "name": "新门店", "region_code": "330106", "distributor_id": ref["partners"]["D1"][0],
            "price_tier_id": ref["tiers"]["retail"], "owner_name": "新店主", "phone": "13900000000",
            "address": "文一路 1 号", "industry": "convenience"}
    body.update(over)
    return body


def test_create_store(client, admin, ref):
    resp = client.post("/api/hq/v1/stores", json=_store(ref), headers=admin)
    assert resp.status_code == 201, resp.get_json()
    store = resp.get_json()
    assert (store["province_code"], store["city_code"], store["district_code"]) == ("330000", "330100", "330106")
    assert store["city_name"] == "杭州市"
    with client.application.app_context():
        loc = db.session.get(Location, db.session.get(Store, store["id"]).location_id)
        assert loc.kind == "store" and loc.city_code == "330100"


def test_store_in_a_municipality_district(client, admin, ref):
    resp = client.post("/api/hq/v1/stores", json=_store(ref, region_code="110105"), headers=admin)
    assert resp.status_code == 201
    assert resp.get_json()["city_code"] == "110100" and resp.get_json()["city_name"] == "北京市"


def test_store_at_city_level(client, admin, ref):
    resp = client.post("/api/hq/v1/stores", json=_store(ref, region_code="330100"), headers=admin)
    assert resp.status_code == 201 and resp.get_json()["district_code"] is None


BAD_STORES = [
    ({"region_code": "330000"}, 422, "unknown_region"),
    ({"region_code": "999999"}, 422, "unknown_region"),
    ({"region_code": "3301"}, 422, "validation_failed"),
    ({"region_code": 330106}, 422, "validation_failed"),
    ({"distributor_id": 999999}, 404, "distributor_not_found"),
    ({"distributor_id": "1"}, 422, "validation_failed"),
    ({"price_tier_id": 999999}, 404, "price_tier_not_found"),
    ({"code": "S1"}, 409, "store_code_taken"),
    ({"phone": "12345"}, 422, "validation_failed"),
    ({"name": None}, 422, "validation_failed"),
    ({"hacker": True}, 422, "validation_failed"),
]


def test_bad_store_changes_nothing(client, admin, ref):
    for change, status, code in BAD_STORES:
        with assert_db_unchanged():
            resp = client.post("/api/hq/v1/stores", json=_store(ref, **change), headers=admin)
            assert resp.status_code == status, (change, resp.get_json())
            assert_error(resp, status, code)


def test_store_under_an_agent_is_refused(client, admin, ref):
    with assert_db_unchanged():
        assert_error(client.post("/api/hq/v1/stores", json=_store(ref, distributor_id=ref["partners"]["A1"][0]),
                                 headers=admin), 404, "distributor_not_found")


def test_store_list_scoped_and_filtered(client, admin, distributor, owner, ref):
    assert client.get("/api/hq/v1/stores?page_size=200", headers=admin).get_json()["total"] == 10
    d1 = client.get("/api/hq/v1/stores?page_size=200", headers=distributor).get_json()
    assert sorted(s["code"] for s in d1["items"]) == ["S1", "S3", "S4"]
    assert [s["code"] for s in client.get("/api/hq/v1/stores", headers=owner).get_json()["items"]] == ["S1"]
    hz = client.get("/api/hq/v1/stores?region=330100&page_size=200", headers=admin).get_json()
    assert sorted(s["code"] for s in hz["items"]) == ["S1", "S3", "S4"]
    assert client.get("/api/hq/v1/stores?page=0", headers=admin).status_code == 422
    assert client.get("/api/hq/v1/stores?page_size=201", headers=admin).status_code == 422


# --- warehouses ------------------------------------------------------------------------------------------------

def test_demo_warehouses(client, admin):
    whs = {w["code"]: w for w in client.get("/api/hq/v1/warehouses", headers=admin).get_json()}
    assert whs["WH-CENTRAL"]["kind"] == "central" and whs["WH-CENTRAL"]["stock_units"] > 0
    assert sorted(whs["WH-HZ"]["serves"]) == ["330100", "330200"] and whs["WH-HZ"]["city_name"] == "杭州市"


def test_create_sub_warehouse(client, admin):
    resp = client.post("/api/hq/v1/warehouses", headers=admin, json={
        "code": "WH-CD", "name": "成都分仓", "kind": "sub", "city_code": "510100", "serves": ["510100", "500100"]})
    assert resp.status_code == 201, resp.get_json()
    assert sorted(resp.get_json()["serves"]) == ["500100", "510100"] and resp.get_json()["stock_units"] == 0
    with client.application.app_context():
        wh = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == "WH-CD"))
        assert db.session.get(Location, wh.location_id).kind == "warehouse"


BAD_WAREHOUSES = [
    ({"serves": ["330100"]}, 409, "city_already_served"),          # Hangzhou is WH-HZ's
    ({"serves": ["510100", "510100"]}, 409, "city_already_served"),  # twice in one request
    ({"code": "WH-HZ"}, 409, "warehouse_code_taken"),
    ({"city_code": "510104"}, 422, "unknown_region"),                # a district is not a city
    ({"serves": ["999900"]}, 422, "unknown_region"),
    ({"serves": "510100"}, 422, "validation_failed"),
    ({"kind": "mega"}, 422, "validation_failed"),
    ({"serves": ["510100"] * 501}, 422, "validation_failed"),
]


def test_bad_warehouse_changes_nothing(client, admin):
    for change, status, code in BAD_WAREHOUSES:
        body = {"code": "WH-CD", "name": "成都分仓", "kind": "sub", "city_code": "510100", "serves": ["510100"],
                **change}
        with assert_db_unchanged():
            resp = client.post("/api/hq/v1/warehouses", json=body, headers=admin)
            assert resp.status_code == status, (change, resp.get_json())
            assert_error(resp, status, code)


def test_warehouse_write_needs_hq_write(client, analyst):
    body = {"code": "WH-CD", "name": "成都分仓", "kind": "sub", "city_code": "510100", "serves": ["510100"]}
    with assert_db_unchanged():
        assert_error(client.post("/api/hq/v1/warehouses", json=body, headers=analyst), 403)
