"""A SKU's sellable unit and its case are distinct: sentences read "每箱 6 提", the minimum order is a whole number
of cases, and totals over several SKUs are totals per unit ("120 提 · 30 袋"), never one number of mixed units."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.catalog import services as catalog
from app.catalog.gtin import make_gtin
from app.catalog.models import Product, Sku
from app.catalog.units import by_unit_text, cases_text, pack_text, sum_by_unit
from app.errors import ValidationFailed
from app.extensions import db
from tests.helpers import assert_db_unchanged, assert_error, console_login
from tests.orders.conftest import MP, place


def test_the_phrases():
    assert pack_text(6, "提") == "每箱 6 提"
    assert pack_text(24, "瓶", "件") == "每件 24 瓶"
    assert cases_text(12, 6, "提") == "12 提（2 箱）"
    assert cases_text(5, 6, "提") == "5 提" and cases_text(3, 1, "箱") == "3 箱"
    groups = sum_by_unit([("箱", 100), ("袋", 30), ("箱", 20), ("提", 0)])
    assert groups == [{"unit": "箱", "quantity": 120}, {"unit": "袋", "quantity": 30}, {"unit": "提", "quantity": 0}]
    assert by_unit_text(groups[:2]) == "120 箱 · 30 袋" and by_unit_text([]) == "0"


def test_the_demo_catalog_keeps_the_rules(app_ctx, demo):
    skus = list(db.session.scalars(sa.select(Sku)))
    assert skus
    for s in skus:
        assert s.min_order_quantity % s.case_pack == 0, s.code
        assert s.case_pack == 1 or s.unit != s.case_unit, s.code
    milk = next(s for s in skus if s.code == "MILK250")
    assert (milk.unit, milk.case_unit, milk.case_pack) == ("提", "箱", 6)


def _product() -> int:
    return db.session.scalar(sa.select(Product.id).order_by(Product.id))


@pytest.mark.parametrize(("packing", "code", "field"), [
    ({"unit": "提", "case_pack": 6, "min_order_quantity": 5}, "min_order_not_whole_cases", "min_order_quantity"),
    ({"unit": "提", "case_pack": 6, "min_order_quantity": 9}, "min_order_not_whole_cases", "min_order_quantity"),
    ({"unit": "箱", "case_unit": "箱", "case_pack": 6, "min_order_quantity": 6}, "case_unit_same_as_unit",
     "case_unit"),
    ({"unit": " ", "case_pack": 1, "min_order_quantity": 1}, "unit_missing", "unit"),
])
def test_the_service_refuses_packing_that_cannot_be_ordered(app_ctx, demo, packing, code, field):
    from app.demo.seed import SYSTEM

    with assert_db_unchanged("skus"), pytest.raises(ValidationFailed) as err:
        catalog.create_sku(SYSTEM, product_id=_product(), code="NEWX", name="新品", gtin=make_gtin("690999000011"),
                           **packing)
    assert err.value.code == code and field in err.value.details["fields"]


def test_the_refusal_names_the_cases(app_ctx, demo):
    from app.demo.seed import SYSTEM

    with pytest.raises(ValidationFailed) as err:
        catalog.create_sku(SYSTEM, product_id=_product(), code="NEWX", name="新品", gtin=make_gtin("690999000011"),
                           unit="提", case_pack=6, min_order_quantity=9)
    assert err.value.message == "起订量要是整箱：每箱 6 提，可以写 6 或 12 提"
    ok = catalog.create_sku(SYSTEM, product_id=_product(), code="NEWY", name="新品", gtin=make_gtin("690999000012"),
                            unit="瓶", case_unit="件", case_pack=24, min_order_quantity=48)
    assert (ok.unit, ok.case_unit, ok.min_order_quantity) == ("瓶", "件", 48)


def test_the_hq_api_refuses_a_minimum_that_is_not_whole_cases(client, admin, app):
    with app.app_context():
        product = db.session.scalar(sa.select(Product.id).order_by(Product.id))
        milk = db.session.scalar(sa.select(Sku).where(Sku.code == "MILK250"))
        milk_id = milk.id
    body = {"product_id": product, "code": "NEW9", "name": "新品", "gtin": make_gtin("690999000013"), "unit": "提",
            "case_pack": 6, "min_order_quantity": 4}
    with app.app_context(), assert_db_unchanged("skus"):
        err = assert_error(client.post("/api/hq/v1/skus", json=body, headers=admin), 422,
                           "min_order_not_whole_cases")
        assert "每箱 6 提" in err["message"] and "min_order_quantity" in err["details"]["fields"]
        # Changing the case pack alone, so the minimum it has no longer fits, is refused too.
        assert_error(client.patch(f"/api/hq/v1/skus/{milk_id}", json={"case_pack": 4}, headers=admin), 422,
                     "min_order_not_whole_cases")
        assert_error(client.patch(f"/api/hq/v1/skus/{milk_id}", json={"case_unit": "提"}, headers=admin), 422,
                     "case_unit_same_as_unit")
    resp = client.patch(f"/api/hq/v1/skus/{milk_id}", json={"case_pack": 3, "min_order_quantity": 6},
                        headers=admin)
    assert resp.status_code == 200 and resp.get_json()["case_unit"] == "箱"
    created = client.post("/api/hq/v1/skus", json={**body, "min_order_quantity": 12}, headers=admin)
    assert created.status_code == 201 and created.get_json()["case_unit"] == "箱"


def test_order_sentences_name_the_unit_and_the_case(client, app, demo):
    from tests.conftest import mp_login

    owner = mp_login(client, "demo_store_owner")
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Sku.code, Sku.id)).all())
        from app.channel.models import Store
        s1 = db.session.scalar(sa.select(Store.id).where(Store.code == "S1"))
    err = assert_error(place(client, owner, s1, [{"sku_id": ids["MILK250"], "quantity": 9}]), 422,
                       "not_case_multiple")
    assert err["message"] == "山泉纯牛奶要按整箱订，每箱 6 提"
    err = assert_error(place(client, owner, s1, [{"sku_id": ids["BISC"], "quantity": 5}]), 422,
                       "below_minimum_quantity")
    assert err["message"] == "散装苏打饼干至少订 10 袋（1 箱）"
    catalog_items = client.get(f"{MP}/catalog", query_string={"store_id": s1}, headers=owner).get_json()["items"]
    milk = next(i for i in catalog_items if i["code"] == "MILK250")
    assert (milk["unit"], milk["case_unit"], milk["case_pack"], milk["min_order_quantity"]) == ("提", "箱", 6, 6)


def test_the_overview_totals_are_per_unit(client, admin, app):
    from datetime import timedelta

    from app.analytics import rollups
    from app.channel.models import Store
    from app.core.clock import now_utc
    from app.core.tx import transaction
    from app.scans.inbox import note_sale

    with app.app_context():  # yesterday S1 sold 12 提 of milk and 30 袋 of biscuits, S2 sold 6 提
        ids = dict(db.session.execute(sa.select(Sku.code, Sku.id)).all())
        stores = dict(db.session.execute(sa.select(Store.code, Store.id)).all())
        at = now_utc() - timedelta(days=1)
        with transaction():
            for n, (store, sku, quantity) in enumerate([("S1", "MILK250", 12), ("S1", "BISC", 30),
                                                        ("S2", "MILK250", 6)]):
                note_sale(store_id=stores[store], sku_id=ids[sku], quantity=quantity, at=at,
                          amount_fen=quantity * 100, event_id=900_000 + n)
        db.session.remove()
        rollups.fold()
    overview = client.get("/api/hq/v1/overview", headers=admin).get_json()
    cities = {r["label"]: r["units_by_unit"] for r in overview["top_cities"]}
    assert cities["杭州市"] == [{"unit": "袋", "quantity": 30}, {"unit": "提", "quantity": 12}], cities
    assert cities["深圳市"] == [{"unit": "提", "quantity": 6}]
    ranking = client.get("/api/hq/v1/distributor-ranking", headers=admin).get_json()["items"]
    assert ranking[0]["units_by_unit"] == [{"unit": "袋", "quantity": 30}, {"unit": "提", "quantity": 12}]
    days = client.get("/api/hq/v1/sell-through", query_string={"group_by": "day"}, headers=admin).get_json()
    assert [r["units_by_unit"] for r in days["items"] if r["units"]] == [
        [{"unit": "袋", "quantity": 30}, {"unit": "提", "quantity": 18}]]
    totals = overview["totals"]
    groups = totals["units_by_unit"]
    assert groups == [{"unit": "袋", "quantity": 30}, {"unit": "提", "quantity": 18}], groups
    assert totals["units"] == 48  # the same sales, counted alike
    assert console_login(client).status_code == 302
    html = client.get("/hq/").get_data(as_text=True)
    shown = " · ".join(f"{g['quantity']:,} {g['unit']}" for g in groups)
    assert f'<div class="value units-by-unit">{shown}</div>' in html
    kpis = html.split('<div class="grid k4">')[1].split('<div class="card"><h2>')[0]
    assert shown == "30 袋 · 18 提" and ">48<" not in kpis  # the mixed number is not shown as a quantity
    html = client.get("/hq/sell-through?group_by=city").get_data(as_text=True)
    assert '<td class="n">30 袋 · 12 提</td>' in html and '<td class="n">6 提</td>' in html
    sheet = client.get("/hq/api/sell-through?group_by=city&format=csv").get_data(as_text=True)
    assert "销量（按单位）" in sheet and "30 袋 · 12 提" in sheet
