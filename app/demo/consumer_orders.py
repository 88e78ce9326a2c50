"""Demo consumer orders: a consumer price tier, the Chengdu distributor's staff, and three orders a Hangzhou partner
took: one for a Chengdu address routed to D5, accepted, shipped and completed with its split; one for Shenzhen
waiting for D2 to accept; one for Beijing, where nobody holds the territory, with HQ."""

from __future__ import annotations

from app.accounts.models import Membership, User
from app.accounts.roles import DISTRIBUTOR_STAFF, HQ_ADMIN
from app.catalog import services as catalog
from app.codes import services as codes
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.orders import consumer_orders

# The consumer price (建议零售价) per demo SKU, in fen.
CONSUMER_PRICES = {"MILK250": 6000, "YOG200": 7000, "TEA500": 7500, "BISC": 2250}


def seed(ctx) -> None:
    """Through the real use cases, as the demo's people."""
    admin = Principal(ctx.users["admin"].id, "hq", (Binding(HQ_ADMIN),))
    tier = catalog.create_price_tier(admin, code=consumer_orders.CONSUMER_TIER, name="建议零售价")
    for code, price in CONSUMER_PRICES.items():
        catalog.update_sku(admin, ctx.skus[code].id, prices={tier.id: price})
    d1, d5 = ctx.partners["D1"], ctx.partners["D5"]
    with transaction():
        staff5 = User(openid="demo_distributor_5", display_name="赵经理")
        staff5.memberships.append(Membership(role=DISTRIBUTOR_STAFF, partner_id=d5.id))
        db.session.add(staff5)
        db.session.flush()
        ctx.users["demo_distributor_5"] = staff5
    taker = Principal(ctx.users["demo_distributor"].id, "mp", (
        Binding(DISTRIBUTOR_STAFF, partner_id=d1.id, partner_path=d1.path),))
    server = Principal(staff5.id, "mp", (Binding(DISTRIBUTOR_STAFF, partner_id=d5.id, partner_path=d5.path),))
    milk, tea = ctx.skus["MILK250"].id, ctx.skus["TEA500"].id

    # 1. Across regions: a Hangzhou partner's customer lives in Chengdu; D5 serves and completes it.
    done = consumer_orders.create_consumer_order(
        taker, request_id="demo-consumer-1", customer={"name": "刘女士", "phone": "139 0000 0001"},
        address="成都市武侯区人民南路四段 12 号", region_code="510107",
        lines=[{"sku_id": milk, "quantity": 2}, {"sku_id": tea, "quantity": 1}], needs_service=True)
    order_id = done["order"].id
    consumer_orders.accept_consumer_order(server, order_id)
    # HQ picks its units off the central warehouse's shelf (Chengdu has no sub-warehouse), by their codes.
    consumer_orders.ship_consumer_order(admin, order_id, codes=[
        serial for sku_id, n in ((milk, 2), (tea, 1))
        for serial in codes.warehouse_codes_available(ctx.warehouses["central"].location_id, sku_id, n)])
    consumer_orders.complete_consumer_order(server, order_id, confirmation_code=done["confirmation_code"])
    # 2. Waiting for the Shenzhen distributor to accept.
    consumer_orders.create_consumer_order(
        taker, request_id="demo-consumer-2", customer={"name": "陈先生", "phone": "13900000002"},
        address="深圳市南山区科技园南区 8 栋", region_code="440305", lines=[{"sku_id": milk, "quantity": 1}],
        needs_service=False)
    # 3. Nobody holds Beijing: the order is with HQ.
    consumer_orders.create_consumer_order(
        taker, request_id="demo-consumer-3", customer={"name": "王先生", "phone": "13900000003"},
        address="北京市朝阳区建国路 88 号", region_code="110105", lines=[{"sku_id": tea, "quantity": 2}],
        needs_service=False)
