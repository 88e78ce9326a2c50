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
    db.session.remove()
    return out
