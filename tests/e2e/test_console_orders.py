"""The console's orders in Chromium: HQ takes an order through payment, allocation and a scanned shipment, as a
handheld scanner types (the codes and Enter into the field that keeps the focus); wrong, duplicate and foreign cases
are refused with a sentence; a partial shipment; a refund; the demo's paid order shipped by scanning and completed
by the store's scan-in on the mini-program API; the Hangzhou operator sees only Hangzhou's orders. Every page
opens with no console error and no failed request (the answers the test provokes on purpose excepted).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.codes.models import Code
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders.models import Order
from tests.conftest import mp_login
from tests.e2e.console_watch import Watch, login

pytestmark = pytest.mark.browser


def _cases(warehouse_code: str, sku_code: str) -> list[str]:
    wh = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == warehouse_code))
    sku = db.session.scalar(sa.select(Sku).where(Sku.code == sku_code))
    return list(db.session.scalars(sa.select(Code.serial).where(
        Code.kind == "case", Code.state == "in_warehouse", Code.location_id == wh.location_id,
        Code.sku_id == sku.id).order_by(Code.id)))


def _status(order_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Order, order_id).status


def _scan(page, code: str, expect_class: str) -> str:
    """Type a code and Enter as a scanner does; wait for the answer; the field still has the focus."""
    assert page.evaluate("() => document.activeElement.id") == "scan-input"
    before = page.inner_text("#scan-result")
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "([cls, before]) => { const r = document.getElementById('scan-result');"
        " return r.classList.contains(cls) && !r.textContent.startsWith('正在核对') && r.textContent !== before; }",
        arg=[expect_class, before])
    page.wait_for_function("() => document.activeElement.id === 'scan-input'")
    return page.inner_text("#scan-result")


def test_hq_ships_by_scanning_and_the_store_completes_the_order(app, demo, client, browser, serve, screenshots):
    s1 = db.session.scalar(sa.select(Store).where(Store.code == "S1"))
    skus = dict(db.session.execute(sa.select(Sku.code, Sku.id)).all())
    milk, yog, tea = _cases("WH-HZ", "MILK250"), _cases("WH-HZ", "YOG200"), _cases("WH-HZ", "TEA500")
    sz_milk = _cases("WH-SZ", "MILK250")
    demo_order = db.session.scalar(sa.select(Order).where(Order.store_id == s1.id, Order.status == "allocated"))
    demo_id, demo_number = demo_order.id, demo_order.number
    s2_order = db.session.scalar(sa.select(Order.id).join(Store).where(Store.code == "S2"))
    db.session.remove()
    assert len(milk) >= 2 and yog and tea and sz_milk

    # S1's owner places two orders in the mini-program: one to ship, one to refund.
    owner = mp_login(client, "demo_store_owner")
    placed = client.post("/api/mp/v1/orders", headers=owner, json={
        "request_id": "e2e-ship", "store_id": s1.id,
        "lines": [{"sku_id": skus["MILK250"], "quantity": 12}, {"sku_id": skus["YOG200"], "quantity": 8}]})
    assert placed.status_code == 201, placed.get_json()
    order_a = placed.get_json()
    placed = client.post("/api/mp/v1/orders", headers=owner, json={
        "request_id": "e2e-refund", "store_id": s1.id, "lines": [{"sku_id": skus["BISC"], "quantity": 10}]})
    assert placed.status_code == 201, placed.get_json()
    order_b = placed.get_json()

    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    login(page, base, "admin")

    # The list, filtered by status.
    page.click("text=订单")
    page.wait_for_url(f"{base}/hq/orders")
    assert order_a["number"] in page.inner_text("table.orders")
    page.select_option("select[name=status]", "awaiting_payment")
    page.click("form.filters button")
    page.wait_for_url("**/hq/orders?**status=awaiting_payment**")
    listed = page.inner_text("table.orders")
    assert order_a["number"] in listed and demo_number not in listed
    page.screenshot(path=str(screenshots / "orders-list.png"), full_page=True)

    # Order A: paid offline (the amount typed in yuan), then allocated to the suggested warehouse.
    page.click(f"text={order_a['number']}")
    page.wait_for_url(f"{base}/hq/orders/{order_a['id']}")
    total_yuan = f"{order_a['total_fen'] // 100}.{order_a['total_fen'] % 100:02d}"
    page.fill("#offline-payment input[name=amount]", total_yuan)
    page.fill("#offline-payment input[name=reference]", "E2E-BANK-1")
    page.click("#offline-payment button")
    page.wait_for_selector("text=已记录线下收款")
    assert "杭州分仓" in page.inner_text("#allocate")  # the suggestion: S1's city sub-warehouse has everything
    page.click("#allocate button")
    page.wait_for_selector("text=已分配到杭州分仓")
    with app.app_context():
        assert _status(order_a["id"]) == "allocated"
    page.screenshot(path=str(screenshots / "order-allocated.png"), full_page=True)

    # The shipping desk: the scan field has the focus; each scan answers at once.
    page.click("#go-ship")
    page.wait_for_url(f"{base}/hq/orders/{order_a['id']}/ship")
    text = _scan(page, milk[0], "ok")
    assert "山泉纯牛奶 6" in text and "还差 6" in text, text
    text = _scan(page, milk[0], "bad")
    assert "已经扫过" in text, text
    text = _scan(page, tea[0], "bad")
    assert "茉莉花茶" in text and "没有订这个商品" in text, text
    text = _scan(page, sz_milk[0], "bad")
    assert "深圳分仓" in text and "不在杭州分仓" in text, text
    text = _scan(page, "NOT-A-CODE-1", "bad")
    assert text, text
    page.screenshot(path=str(screenshots / "ship-refused-foreign-case.png"), full_page=True)
    text = _scan(page, yog[0], "ok")
    assert "原味酸奶 8" in text and "已经够了" in text, text
    # A click elsewhere on the page gives the focus back to the scan field.
    page.click("h1")
    page.wait_for_function("() => document.activeElement.id === 'scan-input'")
    assert page.inner_text("#scan-count") == "2 个码"
    assert page.inner_text(f'#needs tr[data-sku="{skus["MILK250"]}"] .missing') == "6"
    page.screenshot(path=str(screenshots / "ship-two-scanned.png"), full_page=True)
    page.click("#ship-button")  # a partial shipment: 6 of the 12 milk
    page.wait_for_selector("text=已发货：2 箱码")
    assert milk[0] in page.inner_text(".case-codes") and yog[0] in page.inner_text(".case-codes")
    with app.app_context():
        assert _status(order_a["id"]) == "shipped"
    page.screenshot(path=str(screenshots / "order-partly-shipped.png"), full_page=True)

    # The demo's paid order (6 milk from Hangzhou) shipped by scanning its one case.
    page.goto(f"{base}/hq/orders/{demo_id}/ship")
    text = _scan(page, milk[1], "ok")
    assert "山泉纯牛奶已经够了" in text, text
    page.click("#ship-button")
    page.wait_for_selector("text=已发货：1 箱码")

    # Order B: paid offline, then refunded; a wrong amount first is refused beside its field, nothing changed.
    page.goto(f"{base}/hq/orders/{order_b['id']}")
    page.fill("#offline-payment input[name=amount]", f"{order_b['total_fen'] / 100:.2f}")
    page.fill("#offline-payment input[name=reference]", "E2E-BANK-2")
    page.click("#offline-payment button")
    page.wait_for_selector("text=已记录线下收款")
    watch.expect(f"/hq/orders/{order_b['id']}/refund", 422)
    page.fill("#refund input[name=amount]", "1.005")
    page.fill("#refund input[name=reason]", "门店不要了")
    page.click("#refund button")
    page.wait_for_selector("#refund .field-error")
    assert "两位小数" in page.inner_text("#refund .field-error")
    with app.app_context():
        assert _status(order_b["id"]) == "paid"
    page.screenshot(path=str(screenshots / "refund-refused-amount.png"), full_page=True)
    page.fill("#refund input[name=amount]", f"{order_b['total_fen'] / 100:.2f}")
    page.click("#refund button")
    page.wait_for_selector("text=订单已取消")
    with app.app_context():
        assert _status(order_b["id"]) == "refunded"
    assert "已退款" in page.inner_text("h1")

    # S1's owner scans the cases in on the mini-program API: the demo order completes; A waits for its rest.
    now = datetime.now(UTC).isoformat()
    for n, serial in enumerate([milk[1], milk[0], yog[0]]):
        answer = client.post("/api/mp/v1/scans", headers=owner, json={
            "request_id": f"e2e-in-{n}", "code": serial, "action": "receive", "scanned_at": now})
        assert answer.status_code in (200, 201), answer.get_json()
        assert answer.get_json()["status"] == "accepted", answer.get_json()
    with app.app_context():
        assert _status(demo_id) == "completed"
        assert _status(order_a["id"]) == "shipped"
    page.goto(f"{base}/hq/orders/{demo_id}")
    assert "已完成" in page.inner_text("h1")
    page.screenshot(path=str(screenshots / "demo-order-completed.png"), full_page=True)
    page.goto(f"{base}/hq/stores/{s1.id}/credit")
    assert "赊账额度" in page.inner_text("h1")
    context.close()
    assert not watch.problems, watch.problems

    # The Hangzhou operator sees Hangzhou's orders only, and cannot open Shenzhen's.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    login(page, base, "warehouse_hz")
    page.goto(f"{base}/hq/orders")
    listed = page.inner_text("table.orders")
    assert order_a["number"] in listed and demo_number in listed
    assert order_b["number"] not in listed  # refunded before it was allocated anywhere
    assert "S1 老王便利店" in listed
    with app.app_context():
        s2_number = db.session.get(Order, s2_order).number
    assert s2_number not in listed
    page.screenshot(path=str(screenshots / "orders-hangzhou-operator.png"), full_page=True)
    watch.expect(f"/hq/orders/{s2_order}", 403)
    answer = page.goto(f"{base}/hq/orders/{s2_order}")
    assert answer.status == 403
    assert "权限" in page.inner_text("main")
    page.screenshot(path=str(screenshots / "orders-hangzhou-operator-refused.png"), full_page=True)
    context.close()
    assert not watch.problems, watch.problems


def test_scans_typed_faster_than_the_answers_come_are_checked_in_order(app, demo, client, browser, serve,
                                                                      screenshots):
    """A scanner does not wait for the page: three codes typed back to back (the last a repeat of the first) are
    checked one after another, each with the codes accepted before it."""
    s1 = db.session.scalar(sa.select(Store.id).where(Store.code == "S1"))
    milk_id = db.session.scalar(sa.select(Sku.id).where(Sku.code == "MILK250"))
    milk = _cases("WH-HZ", "MILK250")
    db.session.remove()
    owner = mp_login(client, "demo_store_owner")
    placed = client.post("/api/mp/v1/orders", headers=owner, json={
        "request_id": "e2e-fast", "store_id": s1, "lines": [{"sku_id": milk_id, "quantity": 12}]})
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    from tests.conftest import hq_login

    admin = hq_login(client)
    assert client.post(f"/api/hq/v1/orders/{order['id']}/offline-payments", headers=admin,
                       json={"reference": "FAST-1", "amount_fen": order["total_fen"]}).status_code == 200
    assert client.post(f"/api/hq/v1/orders/{order['id']}/allocate", headers=admin, json={}).status_code == 200

    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    login(page, base, "admin")
    page.goto(f"{base}/hq/orders/{order['id']}/ship")
    for serial in (milk[0], milk[1], milk[0]):
        page.keyboard.type(serial, delay=0)
        page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('scan-result').textContent.includes('已经扫过')")
    assert page.inner_text("#scan-count") == "2 个码"
    assert page.inner_text(f'#needs tr[data-sku="{milk_id}"] .missing') == "0"
    assert page.evaluate("() => document.activeElement.id") == "scan-input"
    page.screenshot(path=str(screenshots / "ship-fast-scans.png"), full_page=True)
    page.click("#ship-button")
    page.wait_for_selector("text=已发货：2 箱码，共 12 件")
    context.close()
    assert not watch.problems, watch.problems
