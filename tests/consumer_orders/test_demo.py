"""The demo's consumer orders (API.md "Demo data": a consumer order routed across regions)."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Partner
from app.codes.models import Code, ScanEvent
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders.models import CommissionEntry, ConsumerOrder
from app.scans.books import verify_stock
from tests.helpers import table_counts


def test_the_demo_has_a_cross_region_order_completed_with_its_split(demo):
    from app.demo.seed import seed

    ids = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
    orders = {o.request_id: o for o in db.session.scalars(sa.select(ConsumerOrder))}
    done = orders["demo-consumer-1"]
    assert (done.status, done.brought_by_partner_id, done.serving_partner_id) == ("completed", ids["D1"], ids["D5"])
    assert done.brought_by_agent_id == ids["A1"]
    entries = db.session.scalars(sa.select(CommissionEntry).where(CommissionEntry.consumer_order_id == done.id)).all()
    assert {(e.partner_id, e.role) for e in entries} == {(ids["D1"], "bringer"), (ids["D5"], "servicer")}
    assert sum(e.amount_fen for e in entries) == done.total_fen * 1000 // 10000
    assert (orders["demo-consumer-2"].status, orders["demo-consumer-2"].serving_partner_id) == ("routed", ids["D2"])
    assert (orders["demo-consumer-3"].status, orders["demo-consumer-3"].hq_reason) == ("with_hq", "no_territory")
    # Its coded goods (2 提 milk, 1 提 tea) left the central warehouse by their codes, sold to the consumer.
    central = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == "WH-CENTRAL"))
    shipped = db.session.execute(
        sa.select(Code.sku_id, Code.state, Code.destination_distributor_id, ScanEvent.location_id)
        .join(ScanEvent, (ScanEvent.code_id == Code.id) & (ScanEvent.action == "ship"))
        .where(Code.kind == "unit", Code.state == "sold", Code.store_id.is_(None))).all()
    skus = dict(db.session.execute(sa.select(Sku.code, Sku.id)).all())
    assert sorted(shipped) == sorted([(skus["MILK250"], "sold", ids["D5"], central.location_id)] * 2
                                     + [(skus["TEA500"], "sold", ids["D5"], central.location_id)])
    assert verify_stock() == []
    before = table_counts()
    db.session.remove()
    assert seed() == "demo data already present: nothing changed"
    assert table_counts() == before
