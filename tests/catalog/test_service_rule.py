"""The one rule for services, for the catalog, channel and warehouse writes: the caller comes first, the service
checks them and owns its transaction (what it made is committed; what it refused changed nothing)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.roles import DISTRIBUTOR_STAFF, HQ_ADMIN, HQ_ANALYST
from app.catalog import services as catalog
from app.catalog.gtin import make_gtin
from app.catalog.models import PriceTier, Product
from app.channel import services as channel
from app.channel.models import Partner
from app.core.security import Binding, Principal
from app.errors import Forbidden
from app.extensions import db
from app.inventory import services as inventory
from tests.helpers import table_counts

pytestmark = pytest.mark.service

ADMIN = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]
ANALYST = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ANALYST),))  # type: ignore[arg-type]


def _partner(code: str) -> Partner:
    return db.session.scalar(sa.select(Partner).where(Partner.code == code))


def test_writes_commit_on_their_own(app_ctx, demo):
    product = catalog.create_product(ADMIN, name="新产品", brand="山泉")
    tier = catalog.create_price_tier(ADMIN, code="vip", name="大客户价")
    sku = catalog.create_sku(ADMIN, product_id=product.id, code="NEW1", name="新品", gtin=make_gtin("690999000001"),
                             prices={tier.id: 990})
    catalog.update_sku(ADMIN, sku.id, name="新品二代")
    d1 = _partner("D1")
    a1 = _partner("A1")
    store = channel.create_store(ADMIN, code="SX", name="新店", region_code="330106", distributor_id=d1.id,
                                 price_tier_id=tier.id)
    partner = channel.create_partner(ADMIN, code="DX", name="新分销", kind="distributor", parent_id=a1.id)
    warehouse = inventory.create_warehouse(ADMIN, code="WH-NB", name="宁波分仓", kind="sub", city_code="330200")
    ids = (product.id, tier.id, sku.id, store.id, partner.id, warehouse.id)
    a1_path = a1.path
    db.session.rollback()  # nothing left to commit: each use case committed its own work
    db.session.remove()
    assert db.session.get(Product, ids[0]).name == "新产品"
    assert db.session.get(PriceTier, ids[1]).code == "vip"
    assert db.session.get(Partner, ids[4]).path == f"{a1_path}{ids[4]}/"


@pytest.mark.parametrize("write", [
    lambda p, ids: catalog.create_product(p, name="x"),
    lambda p, ids: catalog.create_price_tier(p, code="x", name="x"),
    lambda p, ids: catalog.create_sku(p, product_id=ids["product"], code="X", name="x", gtin=make_gtin("690999000002")),
    lambda p, ids: catalog.update_sku(p, ids["sku"], name="x"),
    lambda p, ids: inventory.create_warehouse(p, code="WH-X", name="x", kind="sub", city_code="330200"),
    lambda p, ids: channel.create_partner(p, code="DX", name="x", kind="distributor", parent_id=ids["A2"]),
    lambda p, ids: channel.create_store(p, code="SX", name="x", region_code="440305", distributor_id=ids["D2"],
                                        price_tier_id=ids["tier"]),
], ids=["product", "tier", "sku", "patch sku", "warehouse", "partner", "store"])
def test_a_caller_without_the_right_changes_nothing(app_ctx, demo, write):
    ids = {"product": db.session.scalar(sa.select(sa.func.min(Product.id))),
           "sku": db.session.scalar(sa.text("SELECT min(id) FROM skus")),
           "tier": db.session.scalar(sa.select(sa.func.min(PriceTier.id))),
           "A2": _partner("A2").id, "D2": _partner("D2").id}
    d1 = _partner("D1")
    # An analyst reads only; D1's staff may not write to the south (A2's subtree) nor HQ's catalog.
    outsider = Principal(user_id=None, kind="mp",  # type: ignore[arg-type]
                         bindings=(Binding(DISTRIBUTOR_STAFF, partner_id=d1.id, partner_path=d1.path),))
    before = table_counts()
    for caller in (ANALYST, outsider):
        with pytest.raises(Forbidden):
            write(caller, ids)
    assert table_counts() == before


def test_the_warehouse_list_reads_no_row_twice(app, client, admin):
    """The list is one query for the page (plus one for the cities), however many warehouses there are."""
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    def selects() -> int:
        statements.clear()
        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", count)
            try:
                resp = client.get("/api/hq/v1/warehouses", headers=admin)
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", count)
        assert resp.status_code == 200
        return len(statements), len(resp.get_json())

    selects()  # the first request also reads what the process caches (the caller's token version)
    few, n_few = selects()
    with app.app_context():
        for i in range(3):
            inventory.create_warehouse(ADMIN, code=f"WH-T{i}", name=f"测试仓{i}", kind="central", city_code="330100")
    many, n_many = selects()
    assert n_many == n_few + 3
    assert many == few
