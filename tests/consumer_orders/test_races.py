"""Consumer orders under real concurrency (PostgreSQL, threads): two partners accepting the same order, and an
acceptance racing the pass-on job. Exactly one wins each time: the status change is a compare-and-set."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from app.core.clock import now_utc
from app.core.tx import transaction
from app.errors import AppError
from app.extensions import db
from app.orders import consumer_orders
from app.orders.models import ConsumerOrder, ConsumerOrderEvent
from tests.consumer_orders.helpers import staff

ROUNDS = 5


def _hangzhou_order(world) -> int:
    """An order D2 took for a Hangzhou address: routed to D1 (under the agent A1)."""
    answer = consumer_orders.create_consumer_order(
        staff("demo_distributor_2"), request_id=f"race-{now_utc().timestamp()}", address="文三路 88 号",
        customer={"name": "周先生", "phone": "13900000009"}, region_code="330106",
        lines=[{"sku_id": world["skus"]["MILK250"], "quantity": 1}], needs_service=False)
    order_id = answer["order"].id
    db.session.remove()
    return order_id


def _run_together(app, *calls) -> list[str]:
    barrier = threading.Barrier(len(calls))
    results: list[str] = []

    def run(fn):
        with app.app_context():
            barrier.wait()
            try:
                fn()
                results.append("ok")
            except AppError as exc:
                results.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return sorted(results)


def test_two_partners_accept_the_same_order_at_once(postgres, world):
    app = postgres
    with app.app_context():
        d1, a1 = staff("demo_distributor"), staff("demo_agent")
        db.session.remove()
    for _ in range(ROUNDS):
        with app.app_context():
            order_id = _hangzhou_order(world)
        results = _run_together(app, lambda oid=order_id: consumer_orders.accept_consumer_order(d1, oid),
                                lambda oid=order_id: consumer_orders.accept_consumer_order(a1, oid))
        assert results == ["consumer_order_cannot_accept", "ok"], results
        with app.app_context():
            assert db.session.get(ConsumerOrder, order_id).status == "accepted"
            assert db.session.scalar(sa.select(sa.func.count(ConsumerOrderEvent.id)).where(
                ConsumerOrderEvent.consumer_order_id == order_id, ConsumerOrderEvent.action == "accept")) == 1
            db.session.remove()


def test_an_acceptance_racing_the_pass_on_job_has_one_outcome(postgres, world):
    app = postgres
    with app.app_context():
        d1 = staff("demo_distributor")
        db.session.remove()
    for _ in range(ROUNDS):
        with app.app_context():
            order_id = _hangzhou_order(world)
            with transaction():
                db.session.execute(sa.update(ConsumerOrder).where(ConsumerOrder.id == order_id).values(
                    accept_by_at=now_utc() - timedelta(seconds=1)))
            db.session.remove()
        results = _run_together(app, lambda oid=order_id: consumer_orders.accept_consumer_order(d1, oid),
                                consumer_orders.sweep_consumer_orders)
        with app.app_context():
            row = db.session.get(ConsumerOrder, order_id)
            d1_id = staff("demo_distributor").partner_id
            if results == ["ok", "ok"]:
                # D1 accepted first: the job found nothing left to pass on.
                assert (row.status, row.serving_partner_id) == ("accepted", d1_id)
            else:
                # The job passed it on first: D1's acceptance lost the compare-and-set (or, reading after the
                # commit, D1 no longer sees the order at all).
                assert results in (["consumer_order_cannot_accept", "ok"], ["ok", "out_of_scope"]), results
                assert row.status == "routed" and row.serving_partner_id != d1_id
            assert db.session.scalar(sa.select(sa.func.count(ConsumerOrderEvent.id)).where(
                ConsumerOrderEvent.consumer_order_id == order_id,
                ConsumerOrderEvent.action.in_(("accept", "pass_on")))) == 1
            db.session.remove()
