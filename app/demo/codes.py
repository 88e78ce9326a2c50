"""Demo codes: serialized SKUs with codes issued, some received into S1's and S2's stock, some on the way to S1."""

from __future__ import annotations

import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN, STORE_OWNER
from app.codes import services as codes
from app.codes.models import Code, CodeBatch
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.inventory.services import move_stock, transit_location_id
from app.scans.services import ScanInput, scan

# Per SKU, in cases: 7 into the Hangzhou sub-warehouse (3 received by S1, 2 on their way to S1, 2 left to ship),
# 4 into Shenzhen (3 received by S2, 1 left), 3 into the central warehouse, 2 still unplaced (packed).
CASES_PER_SKU = 16


def _issue(sku, user_id) -> list[str]:
    with transaction():
        batch = CodeBatch(sku_id=sku.id, quantity=CASES_PER_SKU * sku.case_pack, case_size=sku.case_pack,
                          status="pending", created_by_id=user_id)
        db.session.add(batch)
    codes.generate_batch(batch.id)
    return list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id, Code.kind == "case")
                                   .order_by(Code.id)))


def _ship(case_serials, warehouse, store, user_id, sku) -> None:
    with transaction():
        per_sku = codes.ship_codes(serials=case_serials, from_location_id=warehouse.location_id,
                                   to_store_id=store.id, order_id=None, user_id=user_id)
        transit = transit_location_id(store.location_id)
        for sku_id, n in per_sku.items():
            move_stock(location_id=warehouse.location_id, sku_id=sku_id, on_hand=-n, kind="ship",
                       ref_type="demo", user_id=user_id, reason="演示发货")
            move_stock(location_id=transit, sku_id=sku_id, on_hand=n, kind="ship", ref_type="demo",
                       user_id=user_id, reason="演示发货")


def seed(ctx) -> None:
    """Issue, put away, ship and receive the demo codes (a few hundred), silently."""
    admin = ctx.users["admin"].id
    hq = Principal(user_id=admin, kind="hq", bindings=(Binding(role=HQ_ADMIN),))
    hz, sz = ctx.warehouses["WH-HZ"], ctx.warehouses["WH-SZ"]
    s1, s2 = ctx.stores["S1"], ctx.stores["S2"]
    owners = {s1.id: ctx.users["demo_store_owner"].id, s2.id: ctx.users["demo_store_owner_2"].id}
    received_at = now_utc()
    for sku in ctx.skus.values():
        if not sku.serialized:
            continue
        cases = _issue(sku, admin)
        # Booked in as they are put away, on top of the warehouses' opening stock by count: a warehouse's stock
        # of a coded SKU is its codes on the shelf plus that opening (what `flask stock verify` proves).
        codes.put_away(hq, serials=cases[:7], warehouse_id=hz.id, add_stock=True)
        codes.put_away(hq, serials=cases[7:11], warehouse_id=sz.id, add_stock=True)
        codes.put_away(hq, serials=cases[11:14], warehouse_id=ctx.warehouses["central"].id, add_stock=True)
        _ship(cases[:5], hz, s1, admin, sku)
        _ship(cases[7:10], sz, s2, admin, sku)
        for store, batch in ((s1, cases[:3]), (s2, cases[7:10])):
            principal = Principal(user_id=owners[store.id], kind="mp",
                                  bindings=(Binding(role=STORE_OWNER, store_id=store.id),))
            for serial in batch:
                scan(principal, ScanInput(request_id=f"demo-receive-{serial}", code=serial, action="receive",
                                          scanned_at=received_at, store_id=store.id))
