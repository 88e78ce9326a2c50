"""WeChat Pay: prepay, the signed callback (refusals and exactly-once), query-on-return, reconciliation, refunds."""

from __future__ import annotations

import json
import threading
import time

import requests
import sqlalchemy as sa

from app.extensions import db
from app.integrations.fake_wechat.server import build_notification
from app.integrations.wechatpay import generate_pay_keys
from app.orders.models import Order, Payment, PaymentNotification, Refund
from tests.conftest import hq_login
from tests.orders.conftest import HQ, MP, fake_pay, place

NOTIFY = "/api/wechat/pay/notify"


def _wechat_order(client, owner, demo_ids, quantity=6):
    order = place(client, owner, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                            "quantity": quantity}]).get_json()
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"}, headers=owner)
    assert resp.status_code == 200, resp.get_json()
    return order


def _paid_notice(fake_wechat, number):
    """The fake's real signed TRANSACTION.SUCCESS for `number`, captured instead of delivered."""
    paid = fake_pay(fake_wechat, number, notify=False)
    return paid["headers"], paid["body"].encode(), paid["transaction_id"]


def _state(app, order_id):
    with app.app_context():
        order = db.session.get(Order, order_id)
        out = (order.status, order.paid_fen,
               db.session.scalar(sa.select(sa.func.count(Payment.id)).where(Payment.order_id == order_id)),
               db.session.scalar(sa.select(sa.func.count(PaymentNotification.id))))
        db.session.remove()
    return out


def test_signed_callback_pays_once(app, client, owner, demo_ids, fake_wechat):
    order = _wechat_order(client, owner, demo_ids)
    headers, body, _ = _paid_notice(fake_wechat, order["number"])
    for _ in range(3):
        resp = client.post(NOTIFY, data=body, headers=headers)
        assert resp.status_code == 204
    status, paid_fen, payments, _ = _state(app, order["id"])
    assert (status, paid_fen, payments) == ("paid", order["total_fen"], 1)
    # The same payment found again by the query route books nothing more.
    resp = client.post(f"{MP}/orders/{order['id']}/payments/check", headers=owner)
    assert resp.status_code == 200 and resp.get_json()["status"] == "paid"
    assert _state(app, order["id"])[2] == 1


def test_refused_callbacks_change_nothing(app, client, owner, demo_ids, fake_wechat, pay_keys):
    order = _wechat_order(client, owner, demo_ids)
    headers, body, _ = _paid_notice(fake_wechat, order["number"])
    before = _state(app, order["id"])
    resource = {"out_trade_no": order["number"], "transaction_id": "4200000000202611230000000001",
                "trade_state": "SUCCESS", "amount": {"total": order["total_fen"], "payer_total": order["total_fen"]}}
    forger = {**generate_pay_keys(), "public_key_id": pay_keys["public_key_id"], "apiv3_key": pay_keys["apiv3_key"]}
    forged = build_notification(forger, "TRANSACTION.SUCCESS", resource)
    stale = build_notification(pay_keys, "TRANSACTION.SUCCESS", resource, timestamp=int(time.time()) - 600)
    wrong_amount = build_notification(pay_keys, "TRANSACTION.SUCCESS", {**resource, "amount": {"total": 1}})
    unknown = build_notification(pay_keys, "TRANSACTION.SUCCESS", {**resource, "out_trade_no": "202611239999990"})
    envelope = json.loads(body)
    envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][:-8] + "AAAAAAA="
    tampered = (headers, json.dumps(envelope).encode())
    no_headers = ({"Content-Type": "application/json"}, body)
    for name, (h, b) in {"forged": forged, "stale": stale, "wrong_amount": wrong_amount, "unknown": unknown,
                         "tampered": tampered, "no_headers": no_headers}.items():
        resp = client.post(NOTIFY, data=b, headers=h)
        assert 400 <= resp.status_code < 600, name
        assert resp.get_json() == {"code": "FAIL", "message": "失败"}, name
        assert _state(app, order["id"]) == before, name
    # The genuine one still works afterwards.
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    assert _state(app, order["id"])[0] == "paid"


def test_prepay_timeout_is_clear_and_a_retry_works(app, client, owner, demo_ids, fake_wechat):
    order = place(client, owner, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                            "quantity": 6}]).get_json()
    requests.post(fake_wechat.url("/_fake/faults"), json={"path_prefix": "/v3/pay/transactions/jsapi",
                                                          "mode": "timeout", "times": 1, "seconds": 3}, timeout=5)
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"}, headers=owner)
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "pay_unavailable"
    assert resp.get_json()["error"]["message"]
    with app.app_context():
        assert db.session.get(Order, order["id"]).status == "awaiting_payment"
        db.session.remove()
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"}, headers=owner)
    assert resp.status_code == 200 and resp.get_json()["request_payment"]["paySign"]


def test_query_on_return_and_reconciliation(app, client, owner, demo_ids, fake_wechat):
    from datetime import timedelta

    from app.orders.payments import reconcile_payments

    first = _wechat_order(client, owner, demo_ids)
    second = _wechat_order(client, owner, demo_ids, quantity=12)
    resp = client.post(f"{MP}/orders/{first['id']}/payments/check", headers=owner)
    assert resp.get_json()["status"] == "awaiting_payment"  # not paid yet: nothing changes
    fake_pay(fake_wechat, first["number"], notify=False)
    fake_pay(fake_wechat, second["number"], notify=False)
    resp = client.post(f"{MP}/orders/{first['id']}/payments/check", headers=owner)
    assert resp.status_code == 200 and resp.get_json()["status"] == "paid"
    with app.app_context():
        counts = reconcile_payments(older_than=timedelta(0))
        db.session.remove()
    assert counts["paid"] == 1
    assert _state(app, second["id"])[:3] == ("paid", second["total_fen"], 1)


def test_refund_through_wechat_after_allocation(app, client, owner, demo_ids, fake_wechat):
    from app.inventory.models import Warehouse
    from app.inventory.services import get_level

    admin = hq_login(client)
    order = _wechat_order(client, owner, demo_ids)
    headers, body, _ = _paid_notice(fake_wechat, order["number"])
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 204
    milk = demo_ids["skus"]["MILK250"]
    with app.app_context():
        loc = db.session.get(Warehouse, demo_ids["warehouses"]["WH-HZ"]).location_id
        reserved_before = get_level(location_id=loc, sku_id=milk).reserved
        db.session.remove()
    assert client.post(f"{HQ}/orders/{order['id']}/allocate", json={}, headers=admin).status_code == 200
    resp = client.post(f"{HQ}/orders/{order['id']}/refund", json={"reason": "门店关门"}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    detail = resp.get_json()
    assert detail["status"] == "cancelled"
    with app.app_context():
        assert get_level(location_id=loc, sku_id=milk).reserved == reserved_before
        refund = db.session.scalar(sa.select(Refund).where(Refund.order_id == order["id"]))
        assert refund.status == "processing"  # the queued job asked WeChat Pay after the commit
        out_refund_no = refund.out_refund_no
        db.session.remove()
    done = requests.post(fake_wechat.url(f"/_fake/refunds/{out_refund_no}/complete"), json={"notify": False},
                         timeout=5).json()
    for _ in range(2):  # a redelivery is answered, not redone
        resp = client.post(NOTIFY, data=done["body"].encode(), headers=done["headers"])
        assert resp.status_code == 204
    detail = client.get(f"{HQ}/orders/{order['id']}", headers=admin).get_json()
    assert detail["status"] == "refunded" and detail["refunded_fen"] == order["total_fen"]
    assert detail["refunds"][0]["status"] == "succeeded"
    again = client.post(f"{HQ}/orders/{order['id']}/refund", json={"reason": "x"}, headers=admin)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "order_cannot_refund"


def test_cancel_unpaid_wechat_order_closes_it(app, client, owner, demo_ids, fake_wechat):
    order = _wechat_order(client, owner, demo_ids)
    resp = client.post(f"{MP}/orders/{order['id']}/cancel", json={}, headers=owner)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    state = requests.get(fake_wechat.url(f"/_fake/orders/{order['number']}"), timeout=5).json()
    assert state["trade_state"] == "CLOSED"


def test_same_callback_ten_times_at_once(postgres, client, owner, demo_ids, fake_wechat):
    app = postgres
    order = _wechat_order(client, owner, demo_ids)
    headers, body, _ = _paid_notice(fake_wechat, order["number"])
    barrier = threading.Barrier(10)
    codes: list[int] = []

    def deliver():
        c = app.test_client()
        barrier.wait()
        codes.append(c.post(NOTIFY, data=body, headers=headers).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert codes == [204] * 10
    status, paid_fen, payments, notifications = _state(app, order["id"])
    assert (status, paid_fen, payments) == ("paid", order["total_fen"], 1)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(PaymentNotification.id))) == notifications
        events = db.session.get(Order, order["id"]).events
        assert [e.action for e in events].count("pay") == 1
        db.session.remove()
