"""What an owner does to an order that must leave the books right: confirming receipt of coded goods receives
their codes as a scan-in would, and cancelling a paid order asks HQ, who refunds on approval."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from app.accounts.roles import STORE_OWNER
from app.channel.models import Store
from app.codes import services as codes
from app.codes.models import Code, ScanEvent
from app.core.security import Binding, Principal
from app.extensions import db
from app.inventory.models import StockMovement, Warehouse
from app.inventory.services import get_level, transit_location_id, verify_ledger
from app.orders import fulfilment, services
from app.orders.models import CreditAccount, Order, Refund
from tests.conftest import hq_login, mp_login
from tests.orders.conftest import HQ, MP, admin_principal, fake_pay, paid_order, place, rid


def _shipped_coded_order(app, demo_ids, cases: int = 2) -> tuple[int, list[str]]:
    """A paid S1 order of MILK250 shipped with `cases` fresh cases from the Hangzhou sub-warehouse."""
    milk = demo_ids["skus"]["MILK250"]
    order_id = paid_order(app, "S1", [("MILK250", 6 * cases)], demo_ids)
    with app.app_context():
        hz = db.session.get(Warehouse, demo_ids["warehouses"]["WH-HZ"])
        fulfilment.allocate_order(admin_principal(app), order_id)
        batch = codes.create_batch(admin_principal(app), sku_id=milk, quantity=6 * cases, case_size=6)
        codes.put_away(admin_principal(app), batch_id=batch.id, warehouse_id=hz.id)
        case_serials = list(db.session.scalars(sa.select(Code.serial).where(
            Code.batch_id == batch.id, Code.kind == "case").order_by(Code.id)))
        fulfilment.ship_order(admin_principal(app), order_id, case_codes=case_serials)
        db.session.remove()
    return order_id, case_serials


def _levels(app, demo_ids, sku_id):
    with app.app_context():
        s1 = db.session.get(Store, demo_ids["stores"]["S1"])
        out = (get_level(location_id=s1.location_id, sku_id=sku_id).on_hand,
               get_level(location_id=transit_location_id(s1.location_id), sku_id=sku_id).on_hand)
        db.session.remove()
    return out


def test_confirm_receipt_receives_the_codes_like_a_scan_in(app, client, demo_ids):
    milk = demo_ids["skus"]["MILK250"]
    owner = mp_login(client, "demo_store_owner")
    order_id, cases = _shipped_coded_order(app, demo_ids)
    shelf, transit = _levels(app, demo_ids, milk)
    resp = client.post(f"{MP}/orders/{order_id}/receive", headers=owner)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "completed"
    assert resp.get_json()["message"] == "收货完成：山泉纯牛奶 12 提已入库，可以售出了"
    # The twelve units are on the shelf, in the codes and in the stock, with the ledger and the events behind them.
    assert _levels(app, demo_ids, milk) == (shelf + 12, transit - 12)
    with app.app_context():
        units = list(db.session.scalars(sa.select(Code).where(Code.order_id == order_id, Code.kind == "unit")))
        assert len(units) == 12
        assert {(u.state, u.store_id) for u in units} == {("in_store", demo_ids["stores"]["S1"])}
        assert {c.state for c in db.session.scalars(sa.select(Code).where(Code.serial.in_(cases)))} == {"in_store"}
        received = db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).where(
            ScanEvent.code_id.in_([u.id for u in units]), ScanEvent.action == "receive"))
        assert received == 12
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StockMovement).where(
            StockMovement.sku_id == milk, StockMovement.kind == "receive")) >= 2
        assert verify_ledger() == []
        serial = units[0].serial
        db.session.remove()
    # Sellable at once; a second tap answers the same completed order and moves nothing.
    sold = client.post(f"{MP}/scans", json={"request_id": uuid.uuid4().hex, "code": serial, "action": "sell",
                                            "scanned_at": datetime.now(UTC).isoformat()}, headers=owner).get_json()
    assert sold["status"] == "accepted", sold
    again = client.post(f"{MP}/orders/{order_id}/receive", headers=owner)
    assert again.status_code == 200 and again.get_json()["status"] == "completed"
    assert _levels(app, demo_ids, milk) == (shelf + 11, transit - 12)


def test_confirm_receipt_after_one_case_was_scanned(app, client, demo_ids):
    milk = demo_ids["skus"]["MILK250"]
    owner = mp_login(client, "demo_store_owner")
    order_id, cases = _shipped_coded_order(app, demo_ids)
    shelf, transit = _levels(app, demo_ids, milk)
    scanned = client.post(f"{MP}/scans", json={"request_id": uuid.uuid4().hex, "code": cases[0], "action": "receive",
                                               "scanned_at": datetime.now(UTC).isoformat()}, headers=owner)
    assert scanned.get_json()["status"] == "accepted"
    assert client.get(f"{MP}/orders/{order_id}", headers=owner).get_json()["status"] == "shipped"
    resp = client.post(f"{MP}/orders/{order_id}/receive", headers=owner)
    assert resp.status_code == 200 and resp.get_json()["status"] == "completed"
    assert resp.get_json()["lines"][0]["received_quantity"] == 12
    assert _levels(app, demo_ids, milk) == (shelf + 12, transit - 12)
    with app.app_context():
        assert verify_ledger() == []
        db.session.remove()


def test_confirm_receipt_races_a_scan_in(postgres, client, demo_ids):
    """The owner taps confirm while the clerk scans a case of the same order: every unit is received once."""
    app = postgres
    milk = demo_ids["skus"]["MILK250"]
    owner, clerk = mp_login(client, "demo_store_owner"), mp_login(client, "demo_store_clerk")
    order_id, cases = _shipped_coded_order(app, demo_ids)
    shelf, transit = _levels(app, demo_ids, milk)
    barrier = threading.Barrier(2)
    codes_seen: list = []

    def confirm():
        c = app.test_client()
        barrier.wait()
        codes_seen.append(c.post(f"{MP}/orders/{order_id}/receive", headers=owner).status_code)

    def scan_case():
        c = app.test_client()
        barrier.wait()
        codes_seen.append(c.post(f"{MP}/scans", json={"request_id": uuid.uuid4().hex, "code": cases[1],
                                                      "action": "receive",
                                                      "scanned_at": datetime.now(UTC).isoformat()},
                                 headers=clerk).status_code)

    threads = [threading.Thread(target=confirm), threading.Thread(target=scan_case)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(codes_seen) == [200, 200]
    assert _levels(app, demo_ids, milk) == (shelf + 12, transit - 12)
    with app.app_context():
        assert db.session.get(Order, order_id).status == "completed"
        assert verify_ledger() == []
        db.session.remove()


# --- cancelling a paid order ------------------------------------------------------------------------------


def test_owner_cancel_of_an_offline_paid_order_waits_for_hq(app, client, demo_ids):
    owner = mp_login(client, "demo_store_owner")
    admin = hq_login(client)
    order_id = paid_order(app, "S1", [("MILK250", 6)], demo_ids)
    resp = client.post(f"{MP}/orders/{order_id}/cancel", json={"reason": "订多了"}, headers=owner)
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "paid" and body["refunded_fen"] == 0
    assert body["cancel_request"]["status"] == "pending" and body["cancel_request"]["reason"] == "订多了"
    assert "总部" in body["message"]
    # A second tap is the same request, not a second one.
    again = client.post(f"{MP}/orders/{order_id}/cancel", json={"reason": "订多了"}, headers=owner)
    assert again.status_code == 202 and again.get_json()["cancel_request"]["id"] == body["cancel_request"]["id"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund).where(
            Refund.order_id == order_id)) == 0
        db.session.remove()
    pending = client.get(f"{HQ}/cancel-requests?status=pending", headers=admin).get_json()
    assert [r["order_id"] for r in pending["items"]] == [order_id]
    # The owner cannot approve their own request; HQ can, and the refund happens then.
    request_id = body["cancel_request"]["id"]
    assert client.post(f"{HQ}/cancel-requests/{request_id}/approve", json={}, headers=owner).status_code == 403
    approved = client.post(f"{HQ}/cancel-requests/{request_id}/approve", json={}, headers=admin)
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    detail = client.get(f"{HQ}/orders/{order_id}", headers=admin).get_json()
    assert detail["status"] == "refunded" and detail["refunded_fen"] == detail["paid_fen"]
    assert detail["cancel_request"]["status"] == "approved"
    twice = client.post(f"{HQ}/cancel-requests/{request_id}/approve", json={}, headers=admin)
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "cancel_request_decided"


def test_hq_rejects_a_cancel_request_and_the_order_goes_on(app, client, demo_ids):
    owner = mp_login(client, "demo_store_owner")
    admin = hq_login(client)
    order_id = paid_order(app, "S1", [("MILK250", 6)], demo_ids)
    body = client.post(f"{MP}/orders/{order_id}/cancel", json={}, headers=owner).get_json()
    request_id = body["cancel_request"]["id"]
    assert client.post(f"{HQ}/cancel-requests/{request_id}/reject", json={}, headers=admin).status_code == 422
    rejected = client.post(f"{HQ}/cancel-requests/{request_id}/reject", json={"reason": "已经备货"}, headers=admin)
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    detail = client.get(f"{MP}/orders/{order_id}", headers=owner).get_json()
    assert detail["status"] == "paid" and detail["cancel_request"]["status"] == "rejected"
    assert client.post(f"{HQ}/orders/{order_id}/allocate", json={}, headers=admin).status_code == 200
    # Asking again after a refusal is a new request.
    again = client.post(f"{MP}/orders/{order_id}/cancel", json={"reason": "还是不要了"}, headers=owner)
    assert again.status_code == 202 and again.get_json()["cancel_request"]["id"] != request_id


def test_credit_paid_cancel_is_a_request_too(app, client, demo_ids):
    owner = mp_login(client, "demo_store_owner")
    admin = hq_login(client)
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    client.put(f"{HQ}/stores/{s1}/credit", json={"limit_fen": 100_000}, headers=admin)
    order = place(client, owner, s1, [{"sku_id": milk, "quantity": 6}]).get_json()
    assert client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "credit"},
                       headers=owner).status_code == 200
    resp = client.post(f"{MP}/orders/{order['id']}/cancel", json={"reason": "不要了"}, headers=owner)
    assert resp.status_code == 202 and resp.get_json()["status"] == "paid"
    with app.app_context():
        assert db.session.scalar(sa.select(CreditAccount.balance_fen).where(CreditAccount.store_id == s1)) > 0
        db.session.remove()
    request_id = resp.get_json()["cancel_request"]["id"]
    assert client.post(f"{HQ}/cancel-requests/{request_id}/approve", json={}, headers=admin).status_code == 200
    assert client.get(f"{HQ}/stores/{s1}/credit", headers=admin).get_json()["balance_fen"] == 0


def test_wechat_paid_cancel_is_a_request_and_refunds_on_approval(app, client, demo_ids, fake_wechat):
    owner = mp_login(client, "demo_store_owner")
    admin = hq_login(client)
    order = place(client, owner, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                             "quantity": 6}]).get_json()
    assert client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"},
                       headers=owner).status_code == 200
    assert fake_pay(fake_wechat, order["number"], notify=False)
    resp = client.post(f"{MP}/orders/{order['id']}/payments/check", headers=owner)
    assert resp.get_json()["status"] == "paid"
    resp = client.post(f"{MP}/orders/{order['id']}/cancel", json={}, headers=owner)
    assert resp.status_code == 202 and resp.get_json()["status"] == "paid"
    with app.app_context():
        assert db.session.scalar(sa.select(Refund.id).where(Refund.order_id == order["id"])) is None
        db.session.remove()
    request_id = resp.get_json()["cancel_request"]["id"]
    approved = client.post(f"{HQ}/cancel-requests/{request_id}/approve", json={}, headers=admin)
    assert approved.status_code == 200
    with app.app_context():
        refund = db.session.scalar(sa.select(Refund).where(Refund.order_id == order["id"]))
        assert refund is not None and refund.amount_fen == order["total_fen"]
        db.session.remove()


def test_unpaid_orders_still_cancel_at_once(client, owner, demo_ids):
    order = place(client, owner, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                             "quantity": 6}]).get_json()
    resp = client.post(f"{MP}/orders/{order['id']}/cancel", json={}, headers=owner)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"


def test_hq_refund_closes_a_pending_request(app, client, demo_ids):
    owner = mp_login(client, "demo_store_owner")
    admin = hq_login(client)
    order_id = paid_order(app, "S1", [("MILK250", 6)], demo_ids)
    body = client.post(f"{MP}/orders/{order_id}/cancel", json={}, headers=owner).get_json()
    assert client.post(f"{HQ}/orders/{order_id}/refund", json={"reason": "门店要求"}, headers=admin).status_code == 200
    detail = client.get(f"{MP}/orders/{order_id}", headers=owner).get_json()
    assert detail["status"] == "refunded" and detail["cancel_request"]["id"] == body["cancel_request"]["id"]
    assert detail["cancel_request"]["status"] == "approved"


def test_cancel_request_once_under_concurrency(postgres, demo_ids):
    app = postgres
    order_id = paid_order(app, "S1", [("MILK250", 6)], demo_ids)
    from app.accounts.models import Membership

    with app.app_context():
        store_id = demo_ids["stores"]["S1"]
        owner_id = db.session.scalar(sa.select(Membership.user_id).where(Membership.store_id == store_id,
                                                                          Membership.role == STORE_OWNER))
        db.session.remove()
    owner = Principal(owner_id, "mp", (Binding(STORE_OWNER, store_id=store_id),))
    barrier = threading.Barrier(5)
    ids: list[int] = []
    errors: list = []

    def ask():
        with app.app_context():
            try:
                barrier.wait()
                result = services.cancel_order(owner, order_id, reason=rid("r"))
                ids.append(result.cancel_request.id)
            except Exception as exc:  # collected below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(set(ids)) == 1
