"""`flask demo pay` pays an order through the fake WeChat Pay, whose signed notification reaches the served app;
`flask demo cases` lists a store's in-transit case codes and a warehouse's cases on the shelf."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.codes.models import Code
from app.core.tx import transaction
from app.extensions import db
from app.integrations.wechatpay import build_gateway
from app.inventory.models import Warehouse
from app.orders.models import Order, Payment
from tests.conftest import mp_login


def test_flask_demo_pay_pays_through_the_fakes_signed_notification(app, demo, client, serve, monkeypatch):
    base = serve(app)
    # The fake calls back the served app, as it calls back `scripts/run`'s server in the demo.
    config = {**app.config, "WECHATPAY_NOTIFY_URL": f"{base}/api/wechat/pay/notify"}
    monkeypatch.setitem(app.extensions, "wechatpay", build_gateway(config))
    owner = mp_login(client, "demo_store_owner")
    s1 = db.session.scalar(sa.select(Store.id).where(Store.code == "S1"))
    bisc = db.session.scalar(sa.select(Sku.id).where(Sku.code == "BISC"))
    placed = client.post("/api/mp/v1/orders", headers=owner, json={
        "request_id": "cli-pay", "store_id": s1, "lines": [{"sku_id": bisc, "quantity": 10}]})
    assert placed.status_code == 201, placed.get_json()
    number, order_id = placed.get_json()["number"], placed.get_json()["id"]
    runner = app.test_cli_runner()

    result = runner.invoke(args=["demo", "pay", number])
    assert result.exit_code == 0, result.output
    assert "notification to " + f"{base}/api/wechat/pay/notify: 204" in result.output
    assert f"order {number} is now paid" in result.output
    db.session.expire_all()
    assert db.session.get(Order, order_id).status == "paid"
    payment = db.session.scalar(sa.select(Payment).where(Payment.order_id == order_id))
    assert payment.method == "wechat" and payment.transaction_id.startswith("4200")

    again = runner.invoke(args=["demo", "pay", number])
    assert again.exit_code == 1 and "not awaiting payment" in again.output
    assert runner.invoke(args=["demo", "pay", "000000000000000"]).exit_code == 1


def test_flask_demo_pay_says_so_when_the_fake_is_not_there(app, demo, client, monkeypatch):
    monkeypatch.setitem(app.config, "WECHATPAY_API_BASE", "http://127.0.0.1:9/")
    monkeypatch.setitem(app.extensions, "wechatpay", build_gateway(
        {**app.config, "WECHATPAY_API_BASE": "http://127.0.0.1:9"}))
    order = db.session.scalar(sa.select(Order).where(Order.status == "awaiting_confirmation"))
    with transaction():
        order.status = "awaiting_payment"  # as if its owner had confirmed it
    result = app.test_cli_runner().invoke(args=["demo", "pay", order.number])
    assert result.exit_code == 1 and "is it running?" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_flask_demo_cases_lists_in_transit_and_shelved_cases(app, demo):
    runner = app.test_cli_runner()
    s1 = db.session.scalar(sa.select(Store).where(Store.code == "S1"))
    expected = set(db.session.scalars(sa.select(Code.serial).where(
        Code.kind == "case", Code.state == "in_transit", Code.destination_store_id == s1.id)))
    assert len(expected) == 6  # 2 cases of each coded SKU on their way to S1 (app/demo/codes.py)
    result = runner.invoke(args=["demo", "cases", "S1"])
    assert result.exit_code == 0, result.output
    assert f"in transit to S1 {s1.name}: 6" in result.output
    assert {line.split()[0] for line in result.output.splitlines()[1:]} == expected
    assert "山泉纯牛奶 ×6" in result.output

    hz = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == "WH-HZ"))
    shelved = set(db.session.scalars(sa.select(Code.serial).where(
        Code.kind == "case", Code.state == "in_warehouse", Code.location_id == hz.location_id)))
    result = runner.invoke(args=["demo", "cases", "--warehouse", "WH-HZ"])
    assert result.exit_code == 0 and {line.split()[0] for line in result.output.splitlines()[1:]} == shelved
    assert runner.invoke(args=["demo", "cases"]).exit_code == 2
    assert runner.invoke(args=["demo", "cases", "S99"]).exit_code == 1
