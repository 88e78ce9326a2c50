"""The channel's guards under real concurrency, against the server as `scripts/run` starts it (gunicorn, several
workers and threads), on either engine: on the embedded default (SQLite) each is the write lock `BEGIN IMMEDIATE`
takes before the use case reads, on PostgreSQL the lock or compare-and-set of its own. Two HQ users assigning
overlapping exclusive territories at once: one wins. Two of the serving partner's people accepting one consumer
order at once: one wins. A store owner rating twice at once: one rating. (Two partners registering one shop at
once: `test_registration_walk.py`.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Partner, Territory
from app.extensions import db
from app.orders.models import ConsumerOrder
from app.ratings.models import StoreRating
from tests.concurrency.clients import Call, fire

ASSIGN = "/api/hq/v1/territory-assignments"


def _partners(live_server) -> dict[str, int]:
    with live_server.db():
        return dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())


def test_overlapping_exclusive_assignments_at_once_one_wins(live_server):
    """Ningbo (330200) and its district Haishu (330203), exclusively, for two partners at once, in rounds of a
    fresh industry each: exactly one assignment per round, the other refused naming its holder."""
    hq = live_server.hq_login()
    partners = _partners(live_server)
    now = datetime.now(UTC).isoformat()
    for round_ in range(4):
        industry = f"race{round_}-{uuid.uuid4().hex[:6]}"
        calls = [Call("POST", ASSIGN, {"partner_id": partners[code], "region_code": region, "industry": industry,
                                      "kind": "exclusive", "valid_from": now}, tuple(hq.items()))
                 for code, region in (("D3", "330200"), ("D4", "330203"), ("D1", "330200"))]
        replies = fire(live_server.base_url, calls, processes=2)
        assert sorted(r.status for r in replies) == [201, 409, 409], [(r.status, r.body) for r in replies]
        assert {r.error_code for r in replies if r.status == 409} == {"territory_taken"}
        with live_server.db():
            held = db.session.scalar(sa.select(sa.func.count(Territory.id)).where(
                Territory.industry == industry, Territory.kind == "exclusive"))
        assert held == 1


def test_two_people_of_the_serving_partner_accept_one_order_at_once_one_wins(live_server):
    d1, d5 = live_server.login("demo_distributor"), live_server.login("demo_distributor_5")
    with live_server.db():
        milk = db.session.scalar(sa.select(Sku.id).where(Sku.code == "MILK250"))
    for round_ in range(4):
        made = live_server.request("POST", "/api/mp/v1/consumer-orders", {
            "request_id": uuid.uuid4().hex, "customer": {"name": "顾客", "phone": f"1390000{round_:04d}"},
            "address": "成都市武侯区武侯祠大街 1 号", "region_code": "510107",
            "lines": [{"sku_id": milk, "quantity": 1}], "needs_service": False}, headers=d1)
        assert made.status == 201 and made.body["serving"]["partner_name"] == "成都蓉城分销", made.body
        path = f"/api/mp/v1/consumer-orders/{made.body['id']}/accept"
        replies = fire(live_server.base_url, [Call("POST", path, {}, tuple(d5.items())) for _ in range(3)],
                       processes=2)
        assert sorted(r.status for r in replies) == [200, 409, 409], [(r.status, r.body) for r in replies]
        assert {r.error_code for r in replies if r.status == 409} == {"consumer_order_cannot_accept"}
        with live_server.db():
            order = db.session.get(ConsumerOrder, made.body["id"])
            assert order.status == "accepted" and [e.action for e in order.events].count("accept") == 1


def test_one_owner_rating_twice_at_once_counts_once(live_server):
    """S1's owner sends this month's rating from two phones at once (two requests): one rating, one refusal. S1 did
    business this month in the demo (its orders), so the rating is allowed."""
    owner = live_server.login("demo_store_owner")
    calls = [Call("POST", "/api/mp/v1/ratings", {"request_id": uuid.uuid4().hex, "score": score},
                  tuple(owner.items())) for score in (5, 4, 3)]
    replies = fire(live_server.base_url, calls, processes=2)
    assert sorted(r.status for r in replies) == [201, 409, 409], [(r.status, r.body) for r in replies]
    assert {r.error_code for r in replies if r.status == 409} == {"already_rated"}
    with live_server.db():
        assert db.session.scalar(sa.select(sa.func.count(StoreRating.id))) == 1
