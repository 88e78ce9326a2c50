"""Seed the demo: the channel, catalog and warehouses here, then the steps in `EXTRA_SEEDS`.

Seeding is idempotent: a database that already has the demo HQ partner is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Membership, User
from app.accounts.roles import DISTRIBUTOR_STAFF, HQ_ADMIN, HQ_ANALYST, STORE_CLERK, STORE_OWNER, WAREHOUSE_OPERATOR
from app.accounts.services import create_hq_user
from app.catalog import services as catalog
from app.catalog.gtin import make_gtin
from app.channel import services as channel
from app.channel.models import Partner
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.demo import assessment as demo_assessment
from app.demo import codes as demo_codes
from app.demo import consumer_orders as demo_consumer_orders
from app.demo import history as demo_history
from app.demo import orders as demo_orders
from app.demo import referrals as demo_referrals
from app.demo import registrations as demo_registrations
from app.demo import targets as demo_targets
from app.demo import training as demo_training
from app.extensions import db
from app.inventory import services as inventory

# The modules that seed their area's part of the demo, in order; each has `seed(ctx: DemoContext)`.
EXTRA_SEEDS = (demo_codes, demo_history, demo_orders, demo_registrations, demo_consumer_orders, demo_targets,
               demo_training, demo_referrals, demo_assessment)

HQ_CODE = "HQ"

# Who seeds the demo: the system itself, with HQ's whole-network rights and no user of its own (the demo's users
# are made by the seed; nothing the foundation writes names the person who did it).
SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]


@dataclass
class DemoContext:
    """What the foundation seed made, by demo name, for the seeds that follow."""

    partners: dict[str, Partner] = field(default_factory=dict)
    stores: dict[str, Any] = field(default_factory=dict)
    skus: dict[str, Any] = field(default_factory=dict)
    tiers: dict[str, Any] = field(default_factory=dict)
    warehouses: dict[str, Any] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


# (code, name, region, distributor, tier, owner, phone, address)
STORES = [
    ("S1", "老王便利店", "330106", "D1", "retail", "王建国", "13800000001", "杭州市西湖区文三路 88 号"),
    ("S2", "李姐烟酒店", "440305", "D2", "retail", "李秀英", "13800000002", "深圳市南山区南海大道 1001 号"),
    ("S3", "西溪好邻居超市", "330106", "D1", "retail", "陈明", "13800000003", "杭州市西湖区西溪路 12 号"),
    ("S4", "拱墅百货", "330105", "D1", "wholesale", "赵军", "13800000004", "杭州市拱墅区莫干山路 300 号"),
    ("S5", "宁波海曙副食店", "330203", "D3", "retail", "周芳", "13800000005", "宁波市海曙区中山西路 50 号"),
    ("S6", "福田社区店", "440304", "D2", "retail", "吴刚", "13800000006", "深圳市福田区福华路 66 号"),
    ("S7", "天河食品商行", "440106", "D4", "wholesale", "郑丽", "13800000007", "广州市天河区天河路 208 号"),
    ("S8", "越秀小卖部", "440104", "D4", "retail", "孙伟", "13800000008", "广州市越秀区北京路 19 号"),
    ("S9", "武侯便民超市", "510107", "D5", "retail", "何平", "13800000009", "成都市武侯区武侯祠大街 1 号"),
    ("S10", "锦江烟酒副食", "510104", "D5", "retail", "马超", "13800000010", "成都市锦江区春熙路 35 号"),
]

# (code, name, spec, unit, gtin prefix, case_pack, moq, serialized, retail price fen, wholesale fen)
# `unit` is what a code and a scan count (one 提 of 12 cartons of milk); each ships in a 箱 of `case_pack` units,
# and the minimum order is a whole number of cases (每箱 6 提, at least 6 提).
SKUS = [
    ("MILK250", "山泉纯牛奶", "250ml×12盒", "提", "690123456789", 6, 6, True, 4800, 4500),
    ("YOG200", "原味酸奶", "200g×10杯", "组", "690123456790", 8, 8, True, 5600, 5200),
    ("TEA500", "茉莉花茶", "500ml×15瓶", "提", "690123456791", 4, 4, True, 6000, 5600),
    ("BISC", "散装苏打饼干", "1kg", "袋", "690123456792", 10, 10, False, 1800, 1600),
]

SUB_WAREHOUSES = [
    ("WH-HZ", "杭州分仓", "330100", ["330100", "330200"]),
    ("WH-SZ", "深圳分仓", "440300", ["440300", "440100"]),
]


def seed(*, only_if_empty: bool = False, extras: bool = True) -> str:
    """Load the demo into this database unless it is already there (`extras=False`: the foundation's part only)."""
    if db.session.scalar(sa.select(Partner.id).where(Partner.code == HQ_CODE)):
        return "demo data already present: nothing changed"
    if only_if_empty and db.session.scalar(sa.select(sa.func.count(User.id))):
        return "database has users but no demo: not seeding"
    ctx = DemoContext()
    _seed_foundation(ctx)
    for step in EXTRA_SEEDS if extras else ():
        step.seed(ctx)
    return "demo data seeded"


def _seed_foundation(ctx: DemoContext) -> None:
    """The catalog, channel and warehouses through their use cases (each its own transaction, as the system);
    then the opening stock and the people in one transaction."""
    tiers = ctx.tiers
    tiers["retail"] = catalog.create_price_tier(SYSTEM, code="retail", name="零售门店价")
    tiers["wholesale"] = catalog.create_price_tier(SYSTEM, code="wholesale", name="批发门店价")

    hq = channel.create_partner(SYSTEM, code=HQ_CODE, name="品牌总部", kind="hq")
    east = channel.create_partner(SYSTEM, code="A1", name="华东区域代理", kind="agent", parent_id=hq.id,
                                  territories=[{"region_code": "330000", "kind": "shared"}])
    south = channel.create_partner(SYSTEM, code="A2", name="华南区域代理", kind="agent", parent_id=hq.id,
                                   territories=[{"region_code": "440000", "kind": "shared"}])
    ctx.partners.update(HQ=hq, A1=east, A2=south)
    # Territory assignments: the agents share their provinces; Hangzhou and Shenzhen are held exclusively; Chengdu
    # (510100) is only shared, so HQ can still assign it exclusively (to D5, say) by hand.
    for code, name, parent, region, kind in [
        ("D1", "杭州西湖分销", east, "330100", "exclusive"), ("D3", "宁波甬城分销", east, "330200", "shared"),
        ("D2", "深圳南山分销", south, "440300", "exclusive"), ("D4", "广州天河分销", south, "440100", "shared"),
        ("D5", "成都蓉城分销", hq, "510100", "shared"),
    ]:
        ctx.partners[code] = channel.create_partner(SYSTEM, code=code, name=name, kind="distributor",
                                                    parent_id=parent.id,
                                                    territories=[{"region_code": region, "kind": kind}])

    for code, name, region, dist, tier, owner, phone, address in STORES:
        ctx.stores[code] = channel.create_store(
            SYSTEM, code=code, name=name, region_code=region, distributor_id=ctx.partners[dist].id,
            price_tier_id=tiers[tier].id, owner_name=owner, phone=phone, address=address, industry="convenience")

    product_names = {"MILK250": "山泉牛奶", "YOG200": "山泉酸奶", "TEA500": "山泉茶饮", "BISC": "山泉饼干"}
    for code, name, spec, unit, prefix, case_pack, moq, serialized, retail, wholesale in SKUS:
        product = catalog.create_product(SYSTEM, name=product_names[code], brand="山泉", category="食品饮料")
        ctx.skus[code] = catalog.create_sku(
            SYSTEM, product_id=product.id, code=code, name=name, gtin=make_gtin(prefix), specification=spec, unit=unit,
            case_unit="箱", case_pack=case_pack, min_order_quantity=moq, serialized=serialized,
            prices={tiers["retail"].id: retail, tiers["wholesale"].id: wholesale})

    central = inventory.create_warehouse(SYSTEM, code="WH-CENTRAL", name="中央仓", kind="central",
                                         city_code="410100")
    ctx.warehouses["central"] = central
    for code, name, city, serves in SUB_WAREHOUSES:
        ctx.warehouses[code] = inventory.create_warehouse(SYSTEM, code=code, name=name, kind="sub", city_code=city,
                                                          serves=serves)
    with transaction():
        _seed_stock_and_people(ctx)


def _seed_stock_and_people(ctx: DemoContext) -> None:
    central = ctx.warehouses["central"]
    # Opening stock: the central warehouse is well stocked, the sub-warehouses hold some.
    for sku in ctx.skus.values():
        inventory.move_stock(location_id=central.location_id, sku_id=sku.id, on_hand=2400, kind="seed",
                             reason="期初库存")
        for wh_code, units in (("WH-HZ", 240), ("WH-SZ", 120)):
            inventory.move_stock(location_id=ctx.warehouses[wh_code].location_id, sku_id=sku.id, on_hand=units,
                                 kind="seed", reason="期初库存")
        if not sku.serialized:
            # Unserialized goods are stocked by count; the serialized ones arrive in the stores by scan.
            for store_code in ("S1", "S2"):
                inventory.move_stock(location_id=ctx.stores[store_code].location_id, sku_id=sku.id, on_hand=30,
                                     kind="seed", reason="期初库存")

    # People. The mini-program users are bound by openid; WeChat's fake logs in `demo:<openid>` as <openid>.
    def mp_user(openid: str, name: str, role: str, **scope) -> User:
        user = User(openid=openid, display_name=name)
        user.memberships.append(Membership(role=role, **scope))
        db.session.add(user)
        ctx.users[openid] = user
        return user

    mp_user("demo_store_owner", "王建国", STORE_OWNER, store_id=ctx.stores["S1"].id)
    mp_user("demo_store_owner_2", "李秀英", STORE_OWNER, store_id=ctx.stores["S2"].id)
    mp_user("demo_store_clerk", "小王", STORE_CLERK, store_id=ctx.stores["S1"].id)
    mp_user("demo_distributor", "张经理", DISTRIBUTOR_STAFF, partner_id=ctx.partners["D1"].id)
    mp_user("demo_distributor_2", "刘经理", DISTRIBUTOR_STAFF, partner_id=ctx.partners["D2"].id)
    mp_user("demo_agent", "钱总", "agent_staff", partner_id=ctx.partners["A1"].id)

    password = current_app.config["DEMO_ADMIN_PASSWORD"]
    ctx.users["admin"] = create_hq_user(username="admin", password=password, role=HQ_ADMIN, display_name="总部管理员")
    ctx.users["analyst"] = create_hq_user(username="analyst", password=password, role=HQ_ANALYST,
                                          display_name="总部分析员")
    ctx.users["warehouse"] = create_hq_user(username="warehouse", password=password, role=WAREHOUSE_OPERATOR,
                                            display_name="仓库操作员（各仓）")
    # An operator tied to the Hangzhou sub-warehouse: sees and ships only the orders allocated there.
    ctx.users["warehouse_hz"] = create_hq_user(username="warehouse_hz", password=password, role=WAREHOUSE_OPERATOR,
                                               display_name="杭州分仓操作员",
                                               warehouse_id=ctx.warehouses["WH-HZ"].id)
    db.session.flush()
