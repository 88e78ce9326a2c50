"""Consumer orders routed to the local partner (CHANNEL.md section 4): the acceptance walk over HTTP, routing,
refusals, the confirmation code's limit, the pass-on job, shipping through the ledger and the split."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from app.accounts.models import User
from app.channel.models import Territory
from app.core.clock import now_utc
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import StockMovement, Warehouse
from app.inventory.services import get_level
from app.orders import consumer_orders
from app.orders.models import CommissionEntry, ConsumerOrder, ConsumerOrderEvent
from app.scans.books import verify_stock
from tests.conftest import hq_login, mp_login
from tests.consumer_orders.helpers import HQ, MP, ship, take
from tests.helpers import table_counts


def _messages(fake_wechat) -> list[dict]:
    return requests.get(fake_wechat.url("/_fake/messages"), timeout=5).json()


def _stock(world, code: str, sku: str) -> int:
    wh = db.session.get(Warehouse, world["warehouses"][code])
    return get_level(location_id=wh.location_id, sku_id=world["skus"][sku]).on_hand


def test_acceptance_walk_across_regions_with_the_split(app, client, world, fake_wechat):
    """A Hangzhou partner takes an order for a Chengdu address; D5 (holding Chengdu) accepts, HQ ships, D5
    completes with the consumer's code; the commission report shows both shares summing to the margin."""
    d1, d5, hq = mp_login(client, "demo_distributor"), mp_login(client, "demo_distributor_5"), hq_login(client)
    resp = take(client, d1, world)
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    code = order["confirmation_code"]
    assert order["status"] == "routed" and order["serving"]["partner_id"] == world["partners"]["D5"]
    assert order["brought_by"]["partner_id"] == world["partners"]["D1"]
    assert order["brought_by"]["agent_id"] == world["partners"]["A1"] and order["serving"]["agent_id"] is None
    assert order["customer"]["phone"] == "13900000001" and order["total_fen"] == 2 * 6000 + 7500
    assert "成都蓉城分销" in order["message"] and order["accept_by_at"]
    assert any(m["touser"] == "demo_distributor_5" and m["template_id"] == "tmpl_consumer_order_new"
               for m in _messages(fake_wechat))
    # Each side finds it in its own list; the serving side does not see it as brought, nor the reverse.
    serving = client.get(f"{MP}/consumer-orders?role=serving", headers=d5).get_json()
    assert [o["id"] for o in serving["items"]] == [order["id"]]
    assert client.get(f"{MP}/consumer-orders?role=brought", headers=d5).get_json()["items"] == []
    assert [o["id"] for o in client.get(f"{MP}/consumer-orders?role=brought", headers=d1).get_json()["items"]] \
        == [order["id"]]
    assert "confirmation_code" not in serving["items"][0]

    resp = client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=d5)
    assert resp.status_code == 200 and resp.get_json()["status"] == "accepted"
    with app.app_context():
        central_milk = _stock(world, "WH-CENTRAL", "MILK250")
    resp = ship(client, hq, app, world, order)
    assert resp.status_code == 200, resp.get_json()
    shipped = resp.get_json()
    # No sub-warehouse serves Chengdu: the central warehouse ships.
    assert shipped["status"] == "shipped" and shipped["warehouse_id"] == world["warehouses"]["WH-CENTRAL"]
    with app.app_context():
        assert _stock(world, "WH-CENTRAL", "MILK250") == central_milk - 2
        moves = db.session.scalars(sa.select(StockMovement).where(StockMovement.ref_type == "consumer_order",
                                                                  StockMovement.ref_id == str(order["id"]))).all()
        assert sorted((m.kind, m.delta_on_hand) for m in moves) == [("ship", -2), ("ship", -1)]
        db.session.remove()

    resp = client.post(f"{MP}/consumer-orders/{order['id']}/complete", json={"confirmation_code": code}, headers=d5)
    assert resp.status_code == 200, resp.get_json()
    done = resp.get_json()
    margin = done["total_fen"] * 1000 // 10000
    assert done["status"] == "completed"
    assert {(s["partner_id"], s["role"]) for s in done["split"]} == {
        (world["partners"]["D1"], "bringer"), (world["partners"]["D5"], "servicer")}
    assert sum(s["amount_fen"] for s in done["split"]) == margin
    # Both partners see the split on the order.
    for headers in (d1, d5):
        seen = client.get(f"{MP}/consumer-orders/{order['id']}", headers=headers).get_json()
        assert sum(s["amount_fen"] for s in seen["split"]) == margin
        assert [e["action"] for e in seen["events"]] == ["create", "accept", "ship", "complete"]
    report = client.get(f"{HQ}/commissions", headers=hq).get_json()
    entries = [e for e in report["entries"] if e["consumer_order_id"] == order["id"]]
    assert {e["partner_id"] for e in entries} == {world["partners"]["D1"], world["partners"]["D5"]}
    assert sum(e["amount_fen"] for e in entries) == margin and all(e["kind"] == "consumer" for e in entries)
    assert all(e["order_number"] == order["number"] for e in entries)
    with app.app_context():
        assert verify_stock() == []
        db.session.remove()


def test_routed_to_d5_once_d5_holds_chengdu(app, client, world):
    d1 = mp_login(client, "demo_distributor")
    with app.app_context(), transaction():
        db.session.execute(sa.delete(Territory).where(Territory.partner_id == world["partners"]["D5"]))
    before = take(client, d1, world).get_json()
    assert before["status"] == "with_hq" and before["serving"] is None and before["hq_reason"] == "no_territory"
    with app.app_context(), transaction():
        db.session.add(Territory(partner_id=world["partners"]["D5"], region_code="510100"))
    after = take(client, d1, world).get_json()
    assert after["status"] == "routed" and after["serving"]["partner_id"] == world["partners"]["D5"]
    with app.app_context():
        row = db.session.get(ConsumerOrder, after["id"])
        assert row.assignment_id == db.session.scalar(sa.select(Territory.id).where(
            Territory.partner_id == world["partners"]["D5"]))
        # The earlier order stays with HQ: moving a territory changes the future only.
        assert db.session.get(ConsumerOrder, before["id"]).status == "with_hq"
        db.session.remove()


def test_an_address_outside_every_territory_goes_to_hq_and_says_so(app, client, world, fake_wechat):
    with app.app_context(), transaction():
        db.session.execute(sa.update(User).where(User.username == "admin").values(openid="hq_admin_openid"))
    resp = take(client, mp_login(client, "demo_distributor"), world, region_code="110105")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["status"] == "with_hq" and body["with_hq"] and body["serving"] is None
    assert body["message"] == "地址不在任何伙伴的服务区域，订单已转总部处理"
    assert any(m["touser"] == "hq_admin_openid" and m["template_id"] == "tmpl_consumer_order_hq"
               for m in _messages(fake_wechat))
    # HQ ships it and completes it itself; with one partner in it (the bringer) the margin is that partner's.
    hq = hq_login(client)
    assert ship(client, hq, app, world, body).status_code == 200
    resp = client.post(f"{MP}/consumer-orders/{body['id']}/complete",
                       json={"confirmation_code": body["confirmation_code"]}, headers=hq)
    assert resp.status_code == 200, resp.get_json()
    assert [(s["role"], s["amount_fen"]) for s in resp.get_json()["split"]] == [
        ("sole", body["total_fen"] * 1000 // 10000)]


def test_accepting_an_order_routed_to_someone_else_is_refused(app, client, world):
    d1 = mp_login(client, "demo_distributor")
    order = take(client, d1, world).get_json()
    with app.app_context():
        before = table_counts()
        db.session.remove()
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=d1)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "not_routed_to_you"
    assert resp.get_json()["error"]["message"] == "这张订单没有派给你，不能处理"
    # A partner on neither side does not get to know more.
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=mp_login(client, "demo_distributor_2"))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "out_of_scope"
    assert client.get(f"{MP}/consumer-orders/{order['id']}",
                      headers=mp_login(client, "demo_distributor_2")).status_code == 403
    with app.app_context():
        assert table_counts() == before
        assert db.session.get(ConsumerOrder, order["id"]).status == "routed"
        db.session.remove()
    # A store owner takes no consumer orders.
    resp = take(client, mp_login(client, "demo_store_owner"), world)
    assert resp.status_code == 403


def test_a_wrong_confirmation_code_is_refused_and_limited(app, client, world):
    d1, d5, hq = mp_login(client, "demo_distributor"), mp_login(client, "demo_distributor_5"), hq_login(client)
    order = take(client, d1, world).get_json()
    client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=d5)
    ship(client, hq, app, world, order)
    wrong = "000000" if order["confirmation_code"] != "000000" else "111111"
    for left in (4, 3, 2, 1):
        resp = client.post(f"{MP}/consumer-orders/{order['id']}/complete", json={"confirmation_code": wrong},
                           headers=d5)
        assert resp.status_code == 422, resp.get_json()
        error = resp.get_json()["error"]
        assert error["code"] == "wrong_confirmation_code" and error["details"]["tries_left"] == left
        assert error["message"] == f"确认码不对，还可以试 {left} 次"
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/complete", json={"confirmation_code": wrong}, headers=d5)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "confirmation_locked"
    # Locked: even the right code is refused now, and nothing was booked.
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/complete",
                       json={"confirmation_code": order["confirmation_code"]}, headers=d5)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "confirmation_locked"
    with app.app_context():
        row = db.session.get(ConsumerOrder, order["id"])
        assert (row.status, row.confirmation_tries) == ("shipped", 5)
        assert db.session.scalar(sa.select(sa.func.count(CommissionEntry.id)).where(
            CommissionEntry.consumer_order_id == order["id"])) == 0
        assert db.session.scalar(sa.select(sa.func.count(ConsumerOrderEvent.id)).where(
            ConsumerOrderEvent.consumer_order_id == order["id"], ConsumerOrderEvent.action == "wrong_code")) == 5
        db.session.remove()
    # HQ routes it again (the partner meets the consumer anew): the count starts over.
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/route",
                       json={"partner_id": world["partners"]["D5"], "reason": "顾客记错了确认码，重新上门"}, headers=hq)
    assert resp.status_code == 200 and resp.get_json()["confirmation_tries_left"] == 5
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/complete",
                       json={"confirmation_code": f" {order['confirmation_code']} "}, headers=d5)
    assert resp.status_code == 200 and resp.get_json()["status"] == "completed"


def test_bad_input_is_refused_and_changes_nothing(app, client, world):
    d1 = mp_login(client, "demo_distributor")
    with app.app_context():
        before = table_counts()
        db.session.remove()
    cases = [
        ({"customer": {"name": "刘女士", "phone": "12345"}}, 422, "bad_phone"),
        ({"region_code": "510000"}, 422, "bad_region"),
        ({"region_code": "999999"}, 422, "bad_region"),
        ({"address": "   "}, 422, "address_required"),
        ({"lines": [{"sku_id": world["skus"]["MILK250"], "quantity": 1},
                     {"sku_id": world["skus"]["MILK250"], "quantity": 1}]}, 422, "duplicate_sku"),
        ({"lines": [{"sku_id": 10**12, "quantity": 1}]}, 422, "sku_not_found"),
    ]
    for extra, status, code in cases:
        resp = take(client, d1, world, **extra)
        assert resp.status_code == status, (extra, resp.get_json())
        assert resp.get_json()["error"]["code"] == code, (extra, resp.get_json())
    with app.app_context():
        assert table_counts() == before
        db.session.remove()


def test_a_sku_without_a_consumer_price_cannot_be_ordered(app, client, world):
    with app.app_context(), transaction():
        db.session.execute(sa.text(
            "DELETE FROM sku_prices WHERE sku_id = :sku AND price_tier_id = (SELECT id FROM price_tiers"
            " WHERE code = 'consumer')"), {"sku": world["skus"]["BISC"]})
    resp = take(client, mp_login(client, "demo_distributor"), world,
                lines=[{"sku_id": world["skus"]["BISC"], "quantity": 5}])
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "no_consumer_price"


def test_a_repeated_request_answers_the_first_order_and_its_code(app, client, world):
    d1 = mp_login(client, "demo_distributor")
    body = {"request_id": "same-1", "customer": {"name": "刘女士", "phone": "+86 139 0000 0001"},
            "address": "人民南路", "region_code": "510107",
            "lines": [{"sku_id": world["skus"]["MILK250"], "quantity": 1}], "needs_service": False}
    first = client.post(f"{MP}/consumer-orders", json=body, headers=d1).get_json()
    again = client.post(f"{MP}/consumer-orders", json=body, headers=d1).get_json()
    assert first["id"] == again["id"] and first["confirmation_code"] == again["confirmation_code"]
    assert first["customer"]["phone"] == "13900000001"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ConsumerOrder.id))) == 1
        db.session.remove()


def test_the_pass_on_job_goes_to_the_next_candidate_then_hq(app, client, world, fake_wechat):
    """Hangzhou's candidates are D1 (the city) then A1 (the province): each lets the time run out in turn."""
    d2 = mp_login(client, "demo_distributor_2")
    order = take(client, d2, world, region_code="330106").get_json()
    assert order["serving"]["partner_id"] == world["partners"]["D1"]
    with app.app_context(), transaction():
        db.session.execute(sa.update(User).where(User.username == "admin").values(openid="hq_admin_openid"))

    def due(minutes: int) -> None:
        with app.app_context(), transaction():
            db.session.execute(sa.update(ConsumerOrder).where(ConsumerOrder.id == order["id"]).values(
                accept_by_at=now_utc() + timedelta(minutes=minutes)))

    # Twenty minutes before the deadline: D1's staff are reminded, once.
    due(20)
    with app.app_context():
        assert consumer_orders.sweep_consumer_orders() == {"passed_on": 0, "reminded": 1}
        assert consumer_orders.sweep_consumer_orders() == {"passed_on": 0, "reminded": 0}
        db.session.remove()
    assert any(m["touser"] == "demo_distributor" and m["template_id"] == "tmpl_consumer_order_reminder"
               for m in _messages(fake_wechat))
    due(-1)
    with app.app_context():
        assert consumer_orders.sweep_consumer_orders()["passed_on"] == 1
        row = db.session.get(ConsumerOrder, order["id"])
        assert (row.status, row.serving_partner_id) == ("routed", world["partners"]["A1"])
        assert row.passed_partner_ids == [world["partners"]["D1"]] and row.accept_by_at > now_utc()
        db.session.remove()
    assert any(m["touser"] == "demo_agent" and m["template_id"] == "tmpl_consumer_order_new"
               for m in _messages(fake_wechat))
    due(-1)
    with app.app_context():
        assert consumer_orders.sweep_consumer_orders()["passed_on"] == 1
        row = db.session.get(ConsumerOrder, order["id"])
        assert (row.status, row.serving_partner_id, row.hq_reason) == ("with_hq", None, "nobody_accepted")
        events = [(e.action, e.to_status) for e in row.events]
        assert events == [("create", "routed"), ("remind", "routed"), ("pass_on", "routed"), ("pass_on", "with_hq")]
        assert consumer_orders.sweep_consumer_orders() == {"passed_on": 0, "reminded": 0}
        db.session.remove()
    assert any(m["touser"] == "hq_admin_openid" and m["template_id"] == "tmpl_consumer_order_hq"
               for m in _messages(fake_wechat))
    # The partner passed over neither sees it nor accepts it any more.
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=mp_login(client, "demo_distributor"))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "out_of_scope"


def test_a_decline_passes_the_order_on(app, client, world):
    d5 = mp_login(client, "demo_distributor_5")
    order = take(client, mp_login(client, "demo_distributor"), world).get_json()
    resp = client.post(f"{MP}/consumer-orders/{order['id']}/decline", json={"reason": "这周人手不够"}, headers=d5)
    assert resp.status_code == 200
    body = resp.get_json()
    # Chengdu has no other candidate: HQ.
    assert body["status"] == "with_hq" and body["hq_reason"] == "nobody_accepted"
    assert body["events"][-1]["action"] == "decline" and body["events"][-1]["note"] == "这周人手不够"
    # HQ routes it back with a reason; the event says who and why.
    hq = hq_login(client)
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/route",
                       json={"partner_id": world["partners"]["D5"], "reason": "已电话沟通，D5 可以接"}, headers=hq)
    assert resp.status_code == 200 and resp.get_json()["status"] == "routed"
    assert resp.get_json()["events"][-1]["note"] == "已电话沟通，D5 可以接"
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/route", json={"partner_id": 1, "reason": " "},
                       headers=hq)
    assert resp.status_code == 422


def test_shipping_prefers_the_city_warehouse_and_refuses_what_is_not_there(app, client, world):
    hq = hq_login(client)
    order = take(client, mp_login(client, "demo_distributor_2"), world, region_code="330106").get_json()
    client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=mp_login(client, "demo_distributor"))
    resp = ship(client, hq, app, world, order, "WH-HZ")
    assert resp.status_code == 200 and resp.get_json()["warehouse_id"] == world["warehouses"]["WH-HZ"]
    # Shipping twice is refused; so is a routed order.
    resp = ship(client, hq, app, world, order, "WH-HZ")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "consumer_order_cannot_ship"
    big = take(client, mp_login(client, "demo_distributor"), world, region_code="110105",
               lines=[{"sku_id": world["skus"]["MILK250"], "quantity": 9999}]).get_json()
    resp = client.post(f"{HQ}/consumer-orders/{big['id']}/ship", json={}, headers=hq)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "insufficient_stock"
    with app.app_context():
        assert db.session.get(ConsumerOrder, big["id"]).status == "with_hq"
        assert verify_stock() == []
        db.session.remove()


def test_hq_lists_and_a_region_bound_analyst_sees_its_region(app, client, world):
    from app.accounts.services import create_hq_user

    d1 = mp_login(client, "demo_distributor")
    hz = take(client, d1, world, region_code="330106").get_json()
    cd = take(client, d1, world).get_json()
    with app.app_context(), transaction():
        create_hq_user(username="zj", password="admin", role="hq_analyst", region_code="330000")
    items = client.get(f"{HQ}/consumer-orders", headers=hq_login(client)).get_json()["items"]
    assert {o["id"] for o in items} == {hz["id"], cd["id"]}
    zj = hq_login(client, "zj")
    assert [o["id"] for o in client.get(f"{HQ}/consumer-orders", headers=zj).get_json()["items"]] == [hz["id"]]
    assert client.get(f"{HQ}/consumer-orders/{cd['id']}", headers=zj).status_code == 403
    assert client.post(f"{HQ}/consumer-orders/{hz['id']}/route",
                       json={"partner_id": world["partners"]["D3"], "reason": "x"}, headers=zj).status_code == 403


@pytest.mark.parametrize("status", ["routed", "with_hq"])
def test_hq_cancels_an_order_that_has_not_shipped(app, client, world, status):
    region = "510107" if status == "routed" else "110105"
    order = take(client, mp_login(client, "demo_distributor"), world, region_code=region).get_json()
    assert order["status"] == status
    hq = hq_login(client)
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/cancel", json={"reason": "顾客不要了"}, headers=hq)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/ship", json={}, headers=hq)
    assert resp.status_code == 409
