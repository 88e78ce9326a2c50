"""The foundation's demo plus what consumer orders need: the consumer price tier, HQ's split rule (10 % margin,
half to the bringer) and a staff user of D5 (Chengdu)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import Membership, User
from app.accounts.roles import DISTRIBUTOR_STAFF
from app.catalog import services as catalog
from app.catalog.models import Sku
from app.channel.models import Partner
from app.core.tx import transaction
from app.demo.consumer_orders import CONSUMER_PRICES
from app.demo.seed import SYSTEM
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders import commission


def put_away_cases(sku_id: int, cases_by_warehouse: dict[int, int]) -> None:
    """Issue whole cases of a serialized SKU and put them away (booked in) at each warehouse."""
    from app.codes import services as codes
    from app.codes.models import Code, CodeBatch

    sku = db.session.get(Sku, sku_id)
    with transaction():
        batch = CodeBatch(sku_id=sku.id, quantity=sum(cases_by_warehouse.values()) * sku.case_pack,
                          case_size=sku.case_pack, status="pending")
        db.session.add(batch)
    codes.generate_batch(batch.id)
    cases = list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id, Code.kind == "case")
                                    .order_by(Code.id)))
    for warehouse_id, n in cases_by_warehouse.items():
        codes.put_away(SYSTEM, serials=cases[:n], warehouse_id=warehouse_id, add_stock=True)
        cases = cases[n:]


@pytest.fixture()
def world(foundation_demo, app):
    tier = catalog.create_price_tier(SYSTEM, code="consumer", name="建议零售价")
    skus = dict(db.session.execute(sa.select(Sku.code, Sku.id)).all())
    for code, price in CONSUMER_PRICES.items():
        catalog.update_sku(SYSTEM, skus[code], prices={tier.id: price})
    commission.set_commission_rule(SYSTEM, margin_bp=1000, bringer_share_bp=5000)
    partners = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
    with transaction():
        user = User(openid="demo_distributor_5", display_name="赵经理")
        user.memberships.append(Membership(role=DISTRIBUTOR_STAFF, partner_id=partners["D5"]))
        db.session.add(user)
    out = {"skus": skus, "partners": partners,
           "warehouses": dict(db.session.execute(sa.select(Warehouse.code, Warehouse.id)).all())}
    # The coded goods ship by their codes: a few cases of each on the central and Hangzhou shelves.
    for sku_code in ("MILK250", "TEA500"):
        put_away_cases(skus[sku_code], {out["warehouses"]["WH-CENTRAL"]: 3, out["warehouses"]["WH-HZ"]: 2})
    db.session.remove()
    return out
