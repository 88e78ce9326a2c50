"""Production suggestions say how many stores sold each product in the window (not a zero for every product)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.analytics.models import DailySales
from app.analytics.production import production_suggestions
from app.core.clock import today_business
from app.core.tx import transaction
from app.extensions import db

API = "/api/hq/v1"


def _selling_stores(sku_id: int, days: int = 28) -> int:
    end = today_business() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    per_store = (sa.select(DailySales.store_id).where(DailySales.sku_id == sku_id, DailySales.day >= start,
                                                       DailySales.day <= end)
                 .group_by(DailySales.store_id).having(sa.func.sum(DailySales.units) > 0).subquery())
    return db.session.scalar(sa.select(sa.func.count()).select_from(per_store))


def test_each_product_counts_the_stores_that_sold_it(client, admin):
    rows = client.get(f"{API}/production-suggestions", headers=admin).get_json()["items"]
    assert rows
    expected = {r["sku_id"]: _selling_stores(r["sku_id"]) for r in rows}
    assert any(expected.values()), expected  # the demo history sells every product somewhere
    assert {r["sku_id"]: r["stores"] for r in rows} == expected
    # The shelves' stock is reported beside it, and counts toward the network only when asked.
    with_shelves = {r["sku_id"]: r for r in production_suggestions(include_stores=True)}
    for r in rows:
        assert r["network_units"] == r["central"] + r["sub_warehouses"] + r["in_transit"]
        s = with_shelves[r["sku_id"]]
        assert s["network_units"] == r["network_units"] + s["store_units"] and s["stores"] == r["stores"]


def test_a_product_nobody_sold_counts_no_store(client, admin):
    from app.catalog.models import Product, Sku

    with transaction():
        product = db.session.scalar(sa.select(Product).order_by(Product.id))
        db.session.add(Sku(product_id=product.id, code="NEW1", name="新品", specification="1", unit="件",
                           gtin="06901234567994", case_pack=1, min_order_quantity=1, serialized=False))
    rows = {r["sku_id"]: r for r in client.get(f"{API}/production-suggestions", headers=admin).get_json()["items"]}
    new = db.session.scalar(sa.select(Sku.id).where(Sku.code == "NEW1"))
    assert rows[new]["stores"] == 0 and rows[new]["suggested_units"] == 0
