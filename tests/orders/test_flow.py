"""The demo flow end to end over HTTP: proxy order → owner confirms and pays by WeChat → HQ allocates, ships →
the owner's receipt completes it. The WeChat Pay callback is a real signed one from the fake."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import hq_login, mp_login
from tests.orders.conftest import HQ, MP, admin_principal, fake_messages, fake_pay, place


@pytest.fixture()
def served_app(app):
    """The app over real HTTP in a thread, with WeChat Pay notifying it there."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    old = app.config["WECHATPAY_NOTIFY_URL"]
    url = f"http://127.0.0.1:{server.server_port}/api/wechat/pay/notify"
    app.config["WECHATPAY_NOTIFY_URL"] = url
    gateway = app.extensions["wechatpay"]
    old_gateway_url = getattr(gateway, "notify_url", None)
    if old_gateway_url is not None:
        gateway.notify_url = url
        gateway._pay._notify_url = url
    yield url
    app.config["WECHATPAY_NOTIFY_URL"] = old
    if old_gateway_url is not None:
        gateway.notify_url = old_gateway_url
        gateway._pay._notify_url = old_gateway_url
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_demo_flow(client, demo_ids, fake_wechat, served_app):
    distributor = mp_login(client, "demo_distributor")
    owner = mp_login(client, "demo_store_owner")
    owner2 = mp_login(client, "demo_store_owner_2")
    admin = hq_login(client)
    s1, skus = demo_ids["stores"]["S1"], demo_ids["skus"]

    resp = place(client, distributor, s1, [{"sku_id": skus["BISC"], "quantity": 20}])
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    assert order["status"] == "awaiting_confirmation" and order["is_proxy"]
    assert order["total_fen"] == 20 * 1800
    assert any(m["touser"] == "demo_store_owner" for m in fake_messages(fake_wechat))

    listed = client.get(f"{MP}/orders?status=awaiting_confirmation", headers=owner).get_json()
    assert order["id"] in [o["id"] for o in listed["items"]]
    assert client.get(f"{MP}/orders/{order['id']}", headers=owner2).status_code == 403
    assert order["id"] not in [o["id"] for o in client.get(f"{MP}/orders", headers=owner2).get_json()["items"]]

    resp = client.post(f"{MP}/orders/{order['id']}/confirm", json={}, headers=owner)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "awaiting_payment"

    resp = client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"}, headers=owner)
    assert resp.status_code == 200, resp.get_json()
    params = resp.get_json()["request_payment"]
    assert params["signType"] == "RSA" and params["package"].startswith("prepay_id=") and params["paySign"]

    paid = fake_pay(fake_wechat, order["number"])
    assert paid["status_code"] == 204, paid
    detail = client.get(f"{HQ}/orders/{order['id']}", headers=admin).get_json()
    assert detail["status"] == "paid" and detail["paid_fen"] == order["total_fen"]

    resp = client.post(f"{HQ}/orders/{order['id']}/allocate", json={}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["warehouse_id"] == demo_ids["warehouses"]["WH-HZ"]

    resp = client.post(f"{HQ}/orders/{order['id']}/ship", json={"case_codes": []}, headers=admin)
    assert resp.status_code == 201, resp.get_json()

    resp = client.post(f"{MP}/orders/{order['id']}/receive", headers=owner)
    assert resp.status_code == 200, resp.get_json()
    done = resp.get_json()
    assert done["status"] == "completed"
    assert [e["to_status"] for e in done["events"]] == [
        "awaiting_confirmation", "awaiting_payment", "paid", "allocated", "shipped", "delivered", "completed"]
    assert client.get(f"{MP}/orders/{order['id']}", headers=owner2).status_code == 403


def test_demo_flow_with_codes_scanned_in(app, client, demo_ids, fake_wechat, served_app):
    """Coded goods: HQ ships the case code, the owner's scan-in of that case delivers and completes the order."""
    from datetime import UTC, datetime

    from app.codes import services as codes
    from app.extensions import db
    from app.inventory.models import Warehouse

    distributor = mp_login(client, "demo_distributor")
    owner = mp_login(client, "demo_store_owner")
    admin = hq_login(client)
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]

    order = place(client, distributor, s1, [{"sku_id": milk, "quantity": 6}]).get_json()
    assert client.post(f"{MP}/orders/{order['id']}/confirm", json={}, headers=owner).status_code == 200
    assert client.post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"},
                       headers=owner).status_code == 200
    assert fake_pay(fake_wechat, order["number"])["status_code"] == 204
    resp = client.post(f"{HQ}/orders/{order['id']}/allocate", json={}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["status"] == "allocated"

    # The packing line made one case of codes and put it away in the Hangzhou sub-warehouse.
    with app.app_context():
        hz = db.session.get(Warehouse, demo_ids["warehouses"]["WH-HZ"])

        batch = codes.create_batch(admin_principal(app), sku_id=milk, quantity=6, case_size=6)
        codes.put_away(admin_principal(app), batch_id=batch.id, warehouse_id=hz.id)
        case = codes.warehouse_codes_available(hz.location_id, milk, 6)
        assert len(case) == 1
        db.session.remove()

    resp = client.post(f"{HQ}/orders/{order['id']}/ship", json={"case_codes": case}, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    assert client.get(f"{MP}/orders/{order['id']}", headers=owner).get_json()["status"] == "shipped"

    resp = client.post(f"{MP}/scans", json={"request_id": f"scan-{order['id']}", "code": case[0], "action": "receive",
                                            "scanned_at": datetime.now(UTC).isoformat()}, headers=owner)
    assert resp.status_code in (200, 201), resp.get_json()
    assert resp.get_json()["status"] == "accepted", resp.get_json()
    detail = client.get(f"{MP}/orders/{order['id']}", headers=owner).get_json()
    assert detail["status"] == "completed"
    assert detail["lines"][0]["received_quantity"] == 6
    with app.app_context():
        from app.inventory.services import verify_ledger

        assert verify_ledger() == []
        db.session.remove()
