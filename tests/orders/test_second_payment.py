"""A second payment for an order already paid: only that payment goes back, by its own amount.

The owner starts a WeChat payment, HQ records the cash the owner also brought, then the WeChat payment lands:
the order stays paid with the cash payment, the WeChat payment alone is refunded through WeChat Pay, and the
order's events say so.
"""

from __future__ import annotations

import requests
import sqlalchemy as sa

from app.extensions import db
from app.orders.models import Order, Payment, Refund
from tests.conftest import hq_login
from tests.orders.conftest import HQ, MP, fake_pay, place

NOTIFY = "/api/wechat/pay/notify"


def _prepaid_order(client, owner, demo_ids):
    order = place(client, owner, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                            "quantity": 6}]).get_json()
    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"}, headers=owner)
    assert resp.status_code == 200, resp.get_json()
    return order


def _fake_refunds(fake_wechat, number):
    return requests.get(fake_wechat.url(f"/_fake/orders/{number}"), timeout=5).json()


def test_wechat_payment_after_cash_refunds_only_itself(app, client, owner, demo_ids, fake_wechat):
    admin = hq_login(client)
    order = _prepaid_order(client, owner, demo_ids)
    # The owner pays in WeChat; the notification is still on its way when HQ records the cash.
    paid = fake_pay(fake_wechat, order["number"], notify=False)
    resp = client.post(f"{HQ}/orders/{order['id']}/offline-payments",
                       json={"reference": "CASH-1", "amount_fen": order["total_fen"]}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["status"] == "paid"
    assert client.post(NOTIFY, data=paid["body"].encode(), headers=paid["headers"]).status_code == 204

    with app.app_context():
        row = db.session.get(Order, order["id"])
        assert (row.status, row.payment_method) == ("paid", "offline")
        payments = {p.method: p for p in db.session.scalars(sa.select(Payment).where(Payment.order_id == row.id))}
        refunds = list(db.session.scalars(sa.select(Refund).where(Refund.order_id == row.id)))
        # One refund, of the WeChat payment, by its own amount; the cash stays with the order.
        assert [(r.payment_id, r.amount_fen) for r in refunds] == [(payments["wechat"].id, order["total_fen"])]
        assert refunds[0].status == "processing"  # WeChat Pay was asked after the commit
        out_refund_no = refunds[0].out_refund_no
        story = [(e.action, e.from_status, e.to_status, e.note) for e in row.events]
        db.session.remove()
    surplus = [e for e in story if e[0] == "refund_surplus"]
    assert len(surplus) == 1 and surplus[0][1:3] == ("paid", "paid")
    assert "退回" in surplus[0][3] and paid["transaction_id"] in surplus[0][3]
    # WeChat Pay refunds exactly that transaction.
    assert _fake_refunds(fake_wechat, order["number"])["trade_state"] == "REFUND"
    done = requests.post(fake_wechat.url(f"/_fake/refunds/{out_refund_no}/complete"), json={"notify": False},
                         timeout=5).json()
    assert client.post(NOTIFY, data=done["body"].encode(), headers=done["headers"]).status_code == 204
    detail = client.get(f"{HQ}/orders/{order['id']}", headers=admin).get_json()
    assert detail["status"] == "paid"
    assert (detail["paid_fen"], detail["refunded_fen"]) == (2 * order["total_fen"], order["total_fen"])
    assert [(r["amount_fen"], r["status"]) for r in detail["refunds"]] == [(order["total_fen"], "succeeded")]
    # The order goes on with the cash payment: it can be allocated and shipped.
    assert client.post(f"{HQ}/orders/{order['id']}/allocate", json={}, headers=admin).status_code == 200


def test_redelivered_second_payment_is_refunded_once(app, client, owner, demo_ids, fake_wechat):
    admin = hq_login(client)
    order = _prepaid_order(client, owner, demo_ids)
    paid = fake_pay(fake_wechat, order["number"], notify=False)
    client.post(f"{HQ}/orders/{order['id']}/offline-payments",
                json={"reference": "CASH-2", "amount_fen": order["total_fen"]}, headers=admin)
    for _ in range(3):
        assert client.post(NOTIFY, data=paid["body"].encode(), headers=paid["headers"]).status_code == 204
    with app.app_context():
        refunds = list(db.session.scalars(sa.select(Refund).where(Refund.order_id == order["id"])))
        assert [r.amount_fen for r in refunds] == [order["total_fen"]]
        db.session.remove()


def test_cash_payment_closes_the_open_wechat_order(app, client, owner, demo_ids, fake_wechat):
    """Recording cash while a WeChat prepay is open closes it, so the owner cannot pay a second time there."""
    admin = hq_login(client)
    order = _prepaid_order(client, owner, demo_ids)
    resp = client.post(f"{HQ}/orders/{order['id']}/offline-payments",
                       json={"reference": "CASH-3", "amount_fen": order["total_fen"]}, headers=admin)
    assert resp.status_code == 200
    assert _fake_refunds(fake_wechat, order["number"])["trade_state"] == "CLOSED"
    late = requests.post(fake_wechat.url(f"/_fake/pay/{order['number']}/pay"), json={"notify": True}, timeout=10)
    assert late.status_code == 409


def test_refunding_the_order_later_returns_the_cash_once_more_only(app, client, owner, demo_ids, fake_wechat):
    admin = hq_login(client)
    order = _prepaid_order(client, owner, demo_ids)
    paid = fake_pay(fake_wechat, order["number"], notify=False)
    client.post(f"{HQ}/orders/{order['id']}/offline-payments",
                json={"reference": "CASH-4", "amount_fen": order["total_fen"]}, headers=admin)
    assert client.post(NOTIFY, data=paid["body"].encode(), headers=paid["headers"]).status_code == 204
    resp = client.post(f"{HQ}/orders/{order['id']}/refund", json={"reason": "门店关门"}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    with app.app_context():
        refunds = {db.session.get(Payment, r.payment_id).method: (r.amount_fen, r.status) for r in db.session.scalars(
            sa.select(Refund).where(Refund.order_id == order["id"]))}
        out_refund_no = db.session.scalar(sa.select(Refund.out_refund_no).join(
            Payment, Payment.id == Refund.payment_id).where(Refund.order_id == order["id"],
                                                            Payment.method == "wechat"))
        db.session.remove()
    assert refunds == {"wechat": (order["total_fen"], "processing"), "offline": (order["total_fen"], "succeeded")}
    done = requests.post(fake_wechat.url(f"/_fake/refunds/{out_refund_no}/complete"), json={"notify": False},
                         timeout=5).json()
    assert client.post(NOTIFY, data=done["body"].encode(), headers=done["headers"]).status_code == 204
    detail = client.get(f"{HQ}/orders/{order['id']}", headers=admin).get_json()
    assert detail["status"] == "refunded" and detail["refunded_fen"] == detail["paid_fen"] == 2 * order["total_fen"]


def test_wechat_payment_whose_notice_was_lost_is_found_and_refunded(app, client, owner, demo_ids, fake_wechat):
    """The owner paid in WeChat, the notice never came, HQ recorded cash: closing the WeChat order finds it paid."""
    admin = hq_login(client)
    order = _prepaid_order(client, owner, demo_ids)
    paid = fake_pay(fake_wechat, order["number"], notify=False)  # never delivered
    resp = client.post(f"{HQ}/orders/{order['id']}/offline-payments",
                       json={"reference": "CASH-5", "amount_fen": order["total_fen"]}, headers=admin)
    assert resp.status_code == 200
    with app.app_context():
        row = db.session.get(Order, order["id"])
        payments = {p.method: p for p in db.session.scalars(sa.select(Payment).where(Payment.order_id == row.id))}
        refunds = [(r.payment_id, r.amount_fen, r.status) for r in db.session.scalars(
            sa.select(Refund).where(Refund.order_id == row.id))]
        status = row.status
        db.session.remove()
    assert status == "paid" and payments["wechat"].transaction_id == paid["transaction_id"]
    assert refunds == [(payments["wechat"].id, order["total_fen"], "processing")]
