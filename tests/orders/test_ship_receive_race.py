"""HQ ships one case of an order while the store scans in another case of the same order (PostgreSQL, real threads):
both go through, every time, and the books stay exact."""

from __future__ import annotations

import threading
import uuid

import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.roles import HQ_ADMIN, STORE_OWNER
from app.channel.models import Store
from app.codes.models import Code, CodeBatch
from app.codes.services import generate_batch, put_away
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import Warehouse
from app.inventory.services import get_level, transit_location_id, verify_ledger
from app.orders import fulfilment, payments, services
from app.orders.models import Order
from app.scans.services import ScanInput, scan
from tests.orders.conftest import rid

TRIALS = 8


def _principals(demo_ids) -> tuple[Principal, Principal]:
    admin = db.session.scalar(sa.select(User.id).where(User.username == "admin"))
    owner = db.session.scalar(sa.select(User.id).where(User.openid == "demo_store_owner"))
    return (Principal(admin, "hq", (Binding(HQ_ADMIN),)),
            Principal(owner, "mp", (Binding(STORE_OWNER, store_id=demo_ids["stores"]["S1"]),)))


def _fresh_cases(sku_id: int, case_size: int, n: int, warehouse_id: int) -> list[str]:
    """n new cases of the SKU put away (and booked) in the warehouse."""
    with transaction():
        batch = CodeBatch(sku_id=sku_id, quantity=n * case_size, case_size=case_size, status="pending")
        db.session.add(batch)
    generate_batch(batch.id)
    cases = list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id, Code.kind == "case")
                                    .order_by(Code.id)))
    put_away(Principal(None, "hq", (Binding(HQ_ADMIN),)), serials=cases, warehouse_id=warehouse_id,  # type: ignore[arg-type]
             add_stock=True)
    return cases


def _at_once(app, calls):
    """Run the calls at the same moment, each in a thread with its own app context and connection; their results,
    or the exceptions they raised (a 500 at the HTTP edge)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def work(i):
        with app.app_context():
            try:
                barrier.wait()
                results[i] = calls[i]()
            except Exception as exc:  # reported by the test
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_shipping_case_b_while_the_store_scans_in_case_a(postgres, demo_ids):
    app = postgres
    milk, hz, s1 = demo_ids["skus"]["MILK250"], demo_ids["warehouses"]["WH-HZ"], demo_ids["stores"]["S1"]
    with app.app_context():
        admin, owner = _principals(demo_ids)
        cases = _fresh_cases(milk, 6, 2 * TRIALS, hz)
        orders = []
        for t in range(TRIALS):
            order = services.create_order(owner, request_id=rid("race"), store_id=s1,
                                          lines=[{"sku_id": milk, "quantity": 12}])
            payments.record_offline_payment(admin, order.id, reference="T")
            fulfilment.allocate_order(admin, order.id, warehouse_id=hz)
            fulfilment.ship_order(admin, order.id, case_codes=[cases[2 * t]])
            orders.append(order.id)
        store_loc = db.session.get(Store, s1).location_id
        wh_loc = db.session.get(Warehouse, hz).location_id
        before = (get_level(location_id=store_loc, sku_id=milk).on_hand,
                  get_level(location_id=transit_location_id(store_loc), sku_id=milk).on_hand,
                  get_level(location_id=wh_loc, sku_id=milk))
        db.session.remove()

    failures = []
    for t, order_id in enumerate(orders):
        case_a, case_b = cases[2 * t], cases[2 * t + 1]
        shipped, received = _at_once(app, [
            lambda order_id=order_id, case_b=case_b: fulfilment.ship_order(admin, order_id, case_codes=[case_b]).id,
            lambda case_a=case_a: dict(scan(owner, ScanInput(request_id=uuid.uuid4().hex, code=case_a,
                                                             action="receive", scanned_at=now_utc(), store_id=s1))),
        ])
        for name, r in (("ship", shipped), ("receive", received)):
            if isinstance(r, Exception):
                failures.append(f"trial {t} {name}: {type(r).__name__}: {str(r).splitlines()[0]}")
        if not isinstance(received, Exception):
            assert (received["status"], received["quantity"]) == ("accepted", 6), received
    assert not failures, f"{len(failures)} failed calls in {TRIALS} trials: {failures}"

    with app.app_context():
        n = 6 * TRIALS
        after = (get_level(location_id=store_loc, sku_id=milk).on_hand,
                 get_level(location_id=transit_location_id(store_loc), sku_id=milk).on_hand,
                 get_level(location_id=wh_loc, sku_id=milk))
        # Case A of each order arrived (in transit → store); case B left the warehouse (warehouse → in transit).
        assert after[0] == before[0] + n
        assert after[1] == before[1] - n + n
        assert (after[2].on_hand, after[2].reserved) == (before[2].on_hand - n, before[2].reserved - n)
        states = dict(db.session.execute(sa.select(Code.serial, Code.state).where(Code.serial.in_(cases))).all())
        assert {states[c] for c in cases[0::2]} == {"in_store"} and {states[c] for c in cases[1::2]} == {"in_transit"}
        for order_id in orders:
            order = db.session.get(Order, order_id)
            assert order.status == "shipped"
            line = order.lines[0]
            assert (line.shipped_quantity, line.received_quantity, line.reserved_quantity) == (12, 6, 0)
        assert verify_ledger() == []
        db.session.remove()
