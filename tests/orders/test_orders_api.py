"""The order routes: creation rules, scope, the proxy flow, payments by credit and offline, illegal moves."""

from __future__ import annotations

import requests
import sqlalchemy as sa

from app.extensions import db
from app.orders.models import Order, OrderEvent, Payment
from tests.conftest import hq_login, mp_login
from tests.orders.conftest import HQ, MP, fake_messages, place, rid


def _count(app, model):
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(model))
        db.session.remove()
    return n


def test_owner_order_locks_tier_price_and_waits_for_payment(client, owner, demo_ids):
    s1, skus = demo_ids["stores"]["S1"], demo_ids["skus"]
    resp = place(client, owner, s1, [{"sku_id": skus["MILK250"], "quantity": 12}, {"sku_id": skus["TEA500"],
                                                                                   "quantity": 4}], note="周五送")
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    assert order["status"] == "awaiting_payment" and not order["is_proxy"]
    assert order["total_fen"] == 12 * 4800 + 4 * 6000
    assert [line["unit_price_fen"] for line in order["lines"]] == [4800, 6000]
    assert len(order["number"]) == 15 and order["number_display"].count("-") == 2


def test_request_id_replay_returns_the_first_order(app, client, owner, demo_ids):
    body = {"request_id": rid(), "store_id": demo_ids["stores"]["S1"],
            "lines": [{"sku_id": demo_ids["skus"]["MILK250"], "quantity": 6}]}
    before = _count(app, Order)
    first = client.post(f"{MP}/orders", json=body, headers=owner)
    second = client.post(f"{MP}/orders", json=body, headers=owner)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    assert _count(app, Order) == before + 1
    other = client.post(f"{MP}/orders", json={**body, "store_id": demo_ids["stores"]["S3"]}, headers=owner)
    assert other.status_code == 403


def test_minimum_quantity_and_case_pack(client, owner, demo_ids):
    s1, skus = demo_ids["stores"]["S1"], demo_ids["skus"]
    resp = place(client, owner, s1, [{"sku_id": skus["BISC"], "quantity": 4}])  # MOQ 10 (one case of 10)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "below_minimum_quantity"
    resp = place(client, owner, s1, [{"sku_id": skus["BISC"], "quantity": 15}])
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "not_case_multiple"
    resp = place(client, owner, s1, [{"sku_id": 999999, "quantity": 10}])
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "sku_not_found"
    resp = place(client, owner, s1, [{"sku_id": skus["BISC"], "quantity": 10}, {"sku_id": skus["BISC"],
                                                                               "quantity": 10}])
    assert resp.get_json()["error"]["code"] == "duplicate_sku"


def test_bad_input_changes_nothing(app, client, owner, demo_ids):
    before = _count(app, Order)
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    for body in (
        {"request_id": rid(), "store_id": str(s1), "lines": [{"sku_id": milk, "quantity": 6}]},
        {"request_id": rid(), "store_id": s1, "lines": [{"sku_id": milk, "quantity": "6"}]},
        {"request_id": rid(), "store_id": s1, "lines": []},
        {"request_id": rid(), "store_id": s1},
        {"request_id": rid(), "store_id": s1, "lines": [{"sku_id": milk, "quantity": 6}], "extra": 1},
        {"request_id": rid(), "store_id": s1, "lines": [{"sku_id": milk, "quantity": 6}] * 101},
    ):
        resp = client.post(f"{MP}/orders", json=body, headers=owner)
        assert resp.status_code == 422, (body, resp.get_json())
        assert resp.get_json()["error"]["code"] == "validation_failed"
    assert client.post(f"{MP}/orders", data="{", headers={**owner, "Content-Type": "application/json"}
                       ).status_code == 400
    assert client.post(f"{MP}/orders", json={"request_id": rid(), "store_id": 999999, "lines": [
        {"sku_id": milk, "quantity": 6}]}, headers=owner).status_code in (403, 404)
    assert _count(app, Order) == before
    assert client.get(f"{MP}/orders/999999", headers=owner).status_code == 404
    assert client.post(f"{MP}/orders", json={"request_id": rid(), "store_id": s1, "lines": [
        {"sku_id": milk, "quantity": 6}]}).status_code == 401


def test_scope_matrix(client, demo_ids):
    owner = mp_login(client, "demo_store_owner")
    owner2 = mp_login(client, "demo_store_owner_2")
    clerk = mp_login(client, "demo_store_clerk")
    dist1 = mp_login(client, "demo_distributor")
    dist2 = mp_login(client, "demo_distributor_2")
    agent = mp_login(client, "demo_agent")
    s1, s2, milk = demo_ids["stores"]["S1"], demo_ids["stores"]["S2"], demo_ids["skus"]["MILK250"]
    line = [{"sku_id": milk, "quantity": 6}]
    assert place(client, owner, s2, line).get_json()["error"]["code"] == "out_of_scope"
    assert place(client, dist1, s2, line).status_code == 403
    assert place(client, dist2, s1, line).status_code == 403
    assert place(client, clerk, s1, line).status_code == 403
    order = place(client, dist1, s1, line).get_json()
    for headers, status in ((owner, 200), (clerk, 200), (dist1, 200), (agent, 200), (owner2, 403), (dist2, 403)):
        assert client.get(f"{MP}/orders/{order['id']}", headers=headers).status_code == status
        ids_seen = [o["id"] for o in client.get(f"{MP}/orders?page_size=200", headers=headers).get_json()["items"]]
        assert (order["id"] in ids_seen) == (status == 200)
    assert client.get(f"{MP}/orders?store_id={s1}", headers=owner2).status_code == 403
    # Only the owner confirms; the distributor who placed it cannot confirm for them.
    for headers in (dist1, clerk, owner2):
        assert client.post(f"{MP}/orders/{order['id']}/confirm", json={}, headers=headers).status_code == 403
    assert client.post(f"{MP}/orders/{order['id']}/cancel", json={}, headers=owner2).status_code == 403
    assert client.post(f"{HQ}/orders/{order['id']}/allocate", json={}, headers=owner).status_code in (401, 403)


def test_confirm_may_lower_quantities(client, owner, distributor, demo_ids):
    s1, skus = demo_ids["stores"]["S1"], demo_ids["skus"]
    order = place(client, distributor, s1, [{"sku_id": skus["MILK250"], "quantity": 12},
                                            {"sku_id": skus["BISC"], "quantity": 20}]).get_json()
    up = client.post(f"{MP}/orders/{order['id']}/confirm", json={"lines": [{"sku_id": skus["BISC"], "quantity": 30}]},
                     headers=owner)
    assert up.status_code == 422 and up.get_json()["error"]["code"] == "quantity_not_lowered"
    resp = client.post(f"{MP}/orders/{order['id']}/confirm", json={"lines": [
        {"sku_id": skus["BISC"], "quantity": 10}, {"sku_id": skus["MILK250"], "quantity": 0}]}, headers=owner)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "awaiting_payment" and body["total_fen"] == 10 * 1800
    assert [(line["sku_id"], line["quantity"]) for line in body["lines"]] == [(skus["BISC"], 10)]
    again = client.post(f"{MP}/orders/{order['id']}/confirm", json={}, headers=owner)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "order_cannot_confirm"


def test_reject_and_illegal_moves(client, owner, distributor, demo_ids):
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    order = place(client, distributor, s1, [{"sku_id": milk, "quantity": 6}]).get_json()
    assert client.post(f"{MP}/orders/{order['id']}/reject", json={}, headers=owner).status_code == 422
    resp = client.post(f"{MP}/orders/{order['id']}/reject", json={"reason": "这周不要"}, headers=owner)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    assert resp.get_json()["reject_reason"] == "这周不要"
    for path, body in (("confirm", {}), ("reject", {"reason": "x"}), ("cancel", {}),
                       ("payments", {"method": "credit"})):
        resp = client.post(f"{MP}/orders/{order['id']}/{path}", json=body, headers=owner)
        assert resp.status_code == 409, (path, resp.get_json())
        assert resp.get_json()["error"]["code"].startswith("order_cannot_")
    own = place(client, owner, s1, [{"sku_id": milk, "quantity": 6}]).get_json()
    resp = client.post(f"{MP}/orders/{own['id']}/reject", json={"reason": "x"}, headers=owner)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "order_cannot_reject"
    admin = hq_login(client)
    resp = client.post(f"{HQ}/orders/{own['id']}/allocate", json={}, headers=admin)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "order_cannot_allocate"


def test_proxy_order_notifies_owner_and_43101_is_not_an_error(client, owner, distributor, demo_ids, fake_wechat):
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    place(client, distributor, s1, [{"sku_id": milk, "quantity": 6}])
    msgs = [m for m in fake_messages(fake_wechat) if m["touser"] == "demo_store_owner"]
    assert msgs and msgs[-1]["template_id"] == "tmpl_order_confirm"
    requests.post(fake_wechat.url("/_fake/not-subscribed"), json={"openid": "demo_store_owner"}, timeout=5)
    before = len(fake_messages(fake_wechat))
    resp = place(client, distributor, s1, [{"sku_id": milk, "quantity": 6}])
    assert resp.status_code == 201
    assert len(fake_messages(fake_wechat)) == before


def test_wechat_outage_never_blocks_an_order(app, client, distributor, demo_ids, fake_wechat):
    from app.integrations.wechat import WeChatError
    from app.orders.notifications import send_order_message

    requests.post(fake_wechat.url("/_fake/faults"), json={"path_prefix": "/cgi-bin/message/subscribe/send",
                                                          "mode": "error", "times": 1}, timeout=5)
    resp = place(client, distributor, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                                 "quantity": 6}])
    assert resp.status_code == 201 and resp.get_json()["status"] == "awaiting_confirmation"
    # The job itself raises on such a failure, so the queue retries it (43101 returns quietly instead).
    requests.post(fake_wechat.url("/_fake/faults"), json={"path_prefix": "/cgi-bin/message/subscribe/send",
                                                          "mode": "busy", "times": 1}, timeout=5)
    with app.app_context():
        try:
            send_order_message(resp.get_json()["id"], "order_awaiting_confirmation")
            raised = False
        except WeChatError:
            raised = True
        db.session.remove()
    assert raised
    with app.app_context():
        assert send_order_message(resp.get_json()["id"], "order_awaiting_confirmation") == 1
        db.session.remove()


def test_credit_line(app, client, owner, demo_ids):
    admin = hq_login(client)
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    order = place(client, owner, s1, [{"sku_id": milk, "quantity": 12}]).get_json()  # 57,600 fen
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "credit"}, headers=owner)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "no_credit_line"
    assert client.put(f"{HQ}/stores/{s1}/credit", json={"limit_fen": 50_000}, headers=admin).status_code == 200
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "credit"}, headers=owner)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "credit_limit_exceeded"
    assert client.put(f"{HQ}/stores/{s1}/credit", json={"limit_fen": 100_000}, headers=admin).status_code == 200
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "credit"}, headers=owner)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["order"]["status"] == "paid"
    credit = client.get(f"{HQ}/stores/{s1}/credit", headers=admin).get_json()
    assert credit["balance_fen"] == 57_600 and credit["available_fen"] == 42_400
    assert credit["ledger"][0]["kind"] == "charge"
    low = client.put(f"{HQ}/stores/{s1}/credit", json={"limit_fen": 10_000}, headers=admin)
    assert low.status_code == 409 and low.get_json()["error"]["code"] == "limit_below_balance"
    # Cancelling a paid order before shipping asks HQ; its approval gives the credit back.
    resp = client.post(f"{MP}/orders/{order['id']}/cancel", json={"reason": "订错了"}, headers=owner)
    assert resp.status_code == 202 and resp.get_json()["status"] == "paid"
    assert client.get(f"{HQ}/stores/{s1}/credit", headers=admin).get_json()["balance_fen"] == 57_600
    request_id = resp.get_json()["cancel_request"]["id"]
    resp = client.post(f"{HQ}/cancel-requests/{request_id}/approve", json={}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["order_status"] == "refunded"
    assert client.get(f"{HQ}/stores/{s1}/credit", headers=admin).get_json()["balance_fen"] == 0


def test_offline_payment_by_distributor_or_hq_only(app, client, owner, distributor, demo_ids):
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    order = place(client, owner, s1, [{"sku_id": milk, "quantity": 6}]).get_json()
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "offline", "reference": "X1"},
                       headers=owner)
    assert resp.status_code == 403
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "offline"}, headers=distributor)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "reference_required"
    admin = hq_login(client)
    resp = client.post(f"{HQ}/orders/{order['id']}/offline-payments", json={"reference": "B1", "amount_fen": 1},
                       headers=admin)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "amount_mismatch"
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "offline", "reference": "现金收据 8"},
                       headers=distributor)
    assert resp.status_code == 200 and resp.get_json()["order"]["status"] == "paid"
    with app.app_context():
        payment = db.session.scalar(sa.select(Payment).where(Payment.order_id == order["id"]))
        assert (payment.method, payment.reference, payment.amount_fen) == ("offline", "现金收据 8", 28_800)
        assert [e.action for e in db.session.scalars(sa.select(OrderEvent).where(
            OrderEvent.order_id == order["id"]).order_by(OrderEvent.id))] == ["create", "pay"]
        db.session.remove()


def test_hq_list_filters(client, admin, demo_ids):
    resp = client.get(f"{HQ}/orders?status=paid", headers=admin)
    assert resp.status_code == 200
    assert all(o["status"] == "paid" for o in resp.get_json()["items"])
    completed = client.get(f"{HQ}/orders?status=completed", headers=admin).get_json()
    assert completed["total"] >= 1
    number = completed["items"][0]["number_display"]
    assert client.get(f"{HQ}/orders?number={number}", headers=admin).get_json()["total"] == 1
    assert client.get(f"{HQ}/orders?status=bogus", headers=admin).status_code == 422


def test_demo_seed_orders(client, admin, demo_ids):
    items = client.get(f"{HQ}/orders?page_size=50", headers=admin).get_json()["items"]
    statuses = sorted(o["status"] for o in items)
    assert statuses == ["allocated", "awaiting_confirmation", "completed"]


def test_openapi_lists_the_order_routes(client):
    spec = client.get("/api/openapi.json").get_json()
    for path in ("/api/mp/v1/orders", "/api/mp/v1/orders/{order_id}/payments", "/api/mp/v1/orders/{order_id}/receive",
                 "/api/hq/v1/orders/{order_id}/allocate", "/api/hq/v1/orders/{order_id}/ship",
                 "/api/hq/v1/commissions", "/api/wechat/pay/notify"):
        assert path in spec["paths"], path
    assert spec["paths"]["/api/mp/v1/orders"]["post"]["summary"]


def test_credit_refund_after_repayment(client, owner, demo_ids):
    admin = hq_login(client)
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    client.put(f"{HQ}/stores/{s1}/credit", json={"limit_fen": 100_000}, headers=admin)
    order = place(client, owner, s1, [{"sku_id": milk, "quantity": 6}]).get_json()  # 28,800
    assert client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "credit"}, headers=owner
                       ).status_code == 200
    resp = client.post(f"{HQ}/stores/{s1}/credit/repayments", json={"amount_fen": 20_000}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["balance_fen"] == 8_800
    over = client.post(f"{HQ}/stores/{s1}/credit/repayments", json={"amount_fen": 20_000}, headers=admin)
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "repayment_exceeds_balance"
    resp = client.post(f"{HQ}/orders/{order['id']}/refund", json={"reason": "缺货"}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["status"] == "refunded"
    assert client.get(f"{HQ}/stores/{s1}/credit", headers=admin).get_json()["balance_fen"] == 0
