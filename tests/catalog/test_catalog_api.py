"""HQ manages the catalog; the mini-program sees it at its store's prices."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.catalog.gtin import make_gtin
from app.catalog.models import PriceTier, Product, Sku
from app.channel.models import Store
from app.extensions import db
from tests.helpers import assert_db_unchanged, assert_error


@pytest.fixture()
def ref(app, demo):
    with app.app_context():
        return {
            "stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
            "tiers": dict(db.session.execute(sa.select(PriceTier.code, PriceTier.id)).all()),
            "product": db.session.scalar(sa.select(Product.id).order_by(Product.id)),
            "skus": dict(db.session.execute(sa.select(Sku.code, Sku.id)).all()),
            "gtins": dict(db.session.execute(sa.select(Sku.code, Sku.gtin)).all()),
        }


def _new_sku(ref, **over):
    body = {"product_id": ref["product"], "code": "NEW1", "name": "新品", "gtin": make_gtin("690999000001"),
            "specification": "1L", "unit": "瓶", "case_pack": 12, "min_order_quantity": 24, "serialized": True,
            "prices": [{"price_tier_id": ref["tiers"]["retail"], "price_fen": 1234},
                       {"price_tier_id": ref["tiers"]["wholesale"], "price_fen": 1100}]}
    body.update(over)
    return body


def test_hq_creates_product_sku_and_tier(client, admin, ref):
    product = client.post("/api/hq/v1/products", json={"name": "新产品", "brand": "山泉"}, headers=admin)
    assert product.status_code == 201
    tier = client.post("/api/hq/v1/price-tiers", json={"code": "vip", "name": "大客户价"}, headers=admin)
    assert tier.status_code == 201
    body = _new_sku(ref, product_id=product.get_json()["id"],
                    prices=[{"price_tier_id": tier.get_json()["id"], "price_fen": 999}])
    sku = client.post("/api/hq/v1/skus", json=body, headers=admin)
    assert sku.status_code == 201, sku.get_json()
    out = sku.get_json()
    assert out["gtin"] == "0" + body["gtin"] and out["case_pack"] == 12 and out["min_order_quantity"] == 24
    assert out["unit"] == "瓶" and out["case_unit"] == "箱"
    assert out["prices"] == [{"price_tier_id": tier.get_json()["id"], "price_fen": 999}]
    got = client.get(f"/api/hq/v1/skus/{out['id']}", headers=admin).get_json()
    assert got == out
    assert any(s["id"] == out["id"] for s in client.get("/api/hq/v1/skus?page_size=200",
                                                         headers=admin).get_json()["items"])


def test_gtin14_and_gtin8_accepted(client, admin, ref):
    assert client.post("/api/hq/v1/skus", json=_new_sku(ref, code="G14", gtin="10614141000415"),
                       headers=admin).status_code == 201
    assert client.post("/api/hq/v1/skus", json=_new_sku(ref, code="G8", gtin="96385074"),
                       headers=admin).status_code == 201


def test_bad_check_digit(client, admin, ref):
    gtin = make_gtin("690999000001")
    wrong = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    with assert_db_unchanged():
        err = assert_error(client.post("/api/hq/v1/skus", json=_new_sku(ref, gtin=wrong), headers=admin), 422,
                           "invalid_gtin")
    assert "gtin" in err["details"]["fields"]


def test_duplicate_gtin_409(client, admin, ref):
    taken = ref["gtins"]["MILK250"]
    with assert_db_unchanged():
        assert_error(client.post("/api/hq/v1/skus", json=_new_sku(ref, gtin=taken), headers=admin), 409, "sku_taken")
        # The same GTIN-13 written without its leading zero is the same product.
        assert_error(client.post("/api/hq/v1/skus", json=_new_sku(ref, gtin=taken.lstrip("0")), headers=admin), 409,
                     "sku_taken")
        assert_error(client.post("/api/hq/v1/skus", json=_new_sku(ref, code="MILK250"), headers=admin), 409,
                     "sku_taken")


def test_patch_sku(client, admin, ref):
    sku_id = ref["skus"]["TEA500"]
    resp = client.patch(f"/api/hq/v1/skus/{sku_id}", headers=admin,
                        json={"name": "茉莉花茶（新）", "prices": [{"price_tier_id": ref["tiers"]["retail"],
                                                                  "price_fen": 6100}]})
    assert resp.status_code == 200
    prices = {p["price_tier_id"]: p["price_fen"] for p in resp.get_json()["prices"]}
    assert prices[ref["tiers"]["retail"]] == 6100 and prices[ref["tiers"]["wholesale"]] == 5600
    with assert_db_unchanged("skus", "sku_prices"):
        assert_error(client.patch(f"/api/hq/v1/skus/{sku_id}", json={"gtin": ref["gtins"]["MILK250"]},
                                  headers=admin), 409, "sku_taken")
        assert_error(client.patch(f"/api/hq/v1/skus/{sku_id}", json={"gtin": "123"}, headers=admin), 422)
        assert_error(client.patch(f"/api/hq/v1/skus/{sku_id}", json={"case_pack": 0}, headers=admin), 422)
        assert_error(client.patch(f"/api/hq/v1/skus/{sku_id}", json={"code": "X"}, headers=admin), 422)
        assert_error(client.patch("/api/hq/v1/skus/999999", json={"name": "x"}, headers=admin), 404)
        # A price for a tier that does not exist: nothing of the change is kept.
        assert_error(client.patch(f"/api/hq/v1/skus/{sku_id}", headers=admin,
                                  json={"name": "半截修改", "prices": [{"price_tier_id": 999999, "price_fen": 1}]}),
                     404, "price_tier_not_found")


BAD_SKU_CHANGES = [
    {"product_id": "1"}, {"product_id": None}, {"case_pack": 0}, {"case_pack": "6"}, {"min_order_quantity": 0},
    {"serialized": "yes"}, {"prices": [{"price_tier_id": 1, "price_fen": -1}]},
    {"prices": [{"price_tier_id": 1, "price_fen": 1.5}]}, {"prices": [{"price_tier_id": 1}]},
    {"prices": {"1": 100}}, {"code": ""}, {"name": "x" * 101}, {"gtin": "abc"}, {"colour": "red"},
]


def test_bad_sku_bodies_change_nothing(client, admin, ref):
    for change in BAD_SKU_CHANGES:
        with assert_db_unchanged():
            resp = client.post("/api/hq/v1/skus", json=_new_sku(ref, **change), headers=admin)
            assert resp.status_code == 422, (change, resp.get_json())
            assert_error(resp, 422)


def test_unknown_product_and_tier(client, admin, ref):
    with assert_db_unchanged():
        assert_error(client.post("/api/hq/v1/skus", json=_new_sku(ref, product_id=999999), headers=admin), 404,
                     "product_not_found")
        assert_error(client.post("/api/hq/v1/skus", headers=admin,
                                 json=_new_sku(ref, prices=[{"price_tier_id": 999999, "price_fen": 1}])), 404,
                     "price_tier_not_found")


def test_catalog_writes_need_hq_write(client, analyst, distributor, ref):
    for headers in (analyst, distributor):
        with assert_db_unchanged():
            assert_error(client.post("/api/hq/v1/products", json={"name": "x"}, headers=headers), 403)
            assert_error(client.post("/api/hq/v1/skus", json=_new_sku(ref), headers=headers), 403)
            assert_error(client.post("/api/hq/v1/price-tiers", json={"code": "x", "name": "x"}, headers=headers), 403)


# --- mini-program catalog --------------------------------------------------------------------------------------

def _prices(resp):
    assert resp.status_code == 200, resp.get_json()
    return {item["code"]: item["price_fen"] for item in resp.get_json()["items"]}


def test_mp_catalog_uses_the_store_tier(client, owner, distributor, ref):
    s1 = _prices(client.get("/api/mp/v1/catalog", headers=owner))
    assert s1 == {"MILK250": 4800, "YOG200": 5600, "TEA500": 6000, "BISC": 1800}
    assert _prices(client.get(f"/api/mp/v1/catalog?store_id={ref['stores']['S1']}", headers=owner)) == s1
    # S4 (served by D1) buys at the wholesale tier.
    s4 = _prices(client.get(f"/api/mp/v1/catalog?store_id={ref['stores']['S4']}", headers=distributor))
    assert s4 == {"MILK250": 4500, "YOG200": 5200, "TEA500": 5600, "BISC": 1600}


def test_mp_catalog_item_fields(client, owner):
    item = client.get("/api/mp/v1/catalog", headers=owner).get_json()["items"][0]
    for key in ("sku_id", "name", "gtin", "unit", "case_pack", "min_order_quantity", "price_fen"):
        assert key in item


def test_mp_catalog_other_store_403(client, owner, ref):
    assert_error(client.get(f"/api/mp/v1/catalog?store_id={ref['stores']['S2']}", headers=owner), 403,
                 "out_of_scope")
    assert_error(client.get("/api/mp/v1/catalog?store_id=999999", headers=owner), 404, "store_not_found")


def test_mp_catalog_hides_inactive_skus(client, admin, owner, ref):
    client.patch(f"/api/hq/v1/skus/{ref['skus']['BISC']}", json={"is_active": False}, headers=admin)
    assert "BISC" not in _prices(client.get("/api/mp/v1/catalog", headers=owner))


def test_mp_catalog_needs_a_store(client, admin):
    assert_error(client.get("/api/mp/v1/catalog", headers=admin), 422, "store_required")
