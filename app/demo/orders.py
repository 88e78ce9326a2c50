"""Demo orders: a proxy order waiting for S1's owner, a paid and allocated one, and a completed one for S2."""

from __future__ import annotations

from app.accounts.roles import DISTRIBUTOR_STAFF, HQ_ADMIN, STORE_OWNER
from app.core.security import Binding, Principal
from app.orders import commission, fulfilment, payments, services


def seed(ctx) -> None:
    """Three small orders through the real use cases (their messages are queued as any order's, in the app's
    JOBS_MODE)."""
    d1, s1, s2 = ctx.partners["D1"], ctx.stores["S1"], ctx.stores["S2"]
    distributor = Principal(ctx.users["demo_distributor"].id, "mp", (
        Binding(DISTRIBUTOR_STAFF, partner_id=d1.id, partner_path=d1.path),))
    owner1 = Principal(ctx.users["demo_store_owner"].id, "mp", (Binding(STORE_OWNER, store_id=s1.id),))
    owner2 = Principal(ctx.users["demo_store_owner_2"].id, "mp", (Binding(STORE_OWNER, store_id=s2.id),))
    admin = Principal(ctx.users["admin"].id, "hq", (Binding(HQ_ADMIN),))
    milk, bisc = ctx.skus["MILK250"], ctx.skus["BISC"]
    commission.set_commission_rule(admin, margin_bp=1000, bringer_share_bp=5000)
    # 1. The distributor ordered for S1; the owner has not confirmed yet.
    services.create_order(distributor, request_id="demo-proxy-1", store_id=s1.id, note="张经理代下单",
                          lines=[{"sku_id": milk.id, "quantity": 12}, {"sku_id": bisc.id, "quantity": 10}])
    # 2. S1's own order, paid offline and allocated to the Hangzhou sub-warehouse.
    paid = services.create_order(owner1, request_id="demo-own-1", store_id=s1.id,
                                 lines=[{"sku_id": milk.id, "quantity": 6}])
    payments.record_offline_payment(admin, paid.id, reference="DEMO-BANK-0001")
    fulfilment.allocate_order(admin, paid.id)
    # 3. S2's order of unserialized biscuits: paid, shipped and received, so completed.
    done = services.create_order(owner2, request_id="demo-own-2", store_id=s2.id,
                                 lines=[{"sku_id": bisc.id, "quantity": 10}])
    payments.record_offline_payment(admin, done.id, reference="DEMO-BANK-0002")
    fulfilment.allocate_order(admin, done.id)
    fulfilment.ship_order(admin, done.id, case_codes=[])
    fulfilment.confirm_receipt(owner2, done.id)
