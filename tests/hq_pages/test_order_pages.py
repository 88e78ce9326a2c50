"""The console's order pages through the test client: every form refuses bad input with the message beside its
field and changes nothing; CSRF on every write; unknown, huge and year-1 inputs get the console's Chinese error
page with the right status; the Hangzhou operator's scope; yuan typed → fen exactly."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.codes.models import Code
from app.extensions import db
from app.hq.order_pages import parse_yuan
from app.inventory.models import Warehouse
from app.orders.models import CreditAccount, CreditLedger, Order, Payment, Refund, Shipment
from tests.conftest import mp_login
from tests.hq_pages.console_forms import HUGE, field_error, login


@pytest.fixture()
def console(client, demo):
    client.csrf = login(client)
    return client


def _ids(code: str):
    from app.catalog.models import Sku
    from app.channel.models import Store

    if code.startswith("S"):
        return db.session.scalar(sa.select(Store.id).where(Store.code == code))
    return db.session.scalar(sa.select(Sku.id).where(Sku.code == code))


def _place(client, lines, store="S1", openid="demo_store_owner"):
    owner = mp_login(client, openid)
    resp = client.post("/api/mp/v1/orders", headers=owner, json={
        "request_id": f"pages-{len(lines)}-{lines[0][1]}-{store}", "store_id": _ids(store),
        "lines": [{"sku_id": _ids(sku), "quantity": q} for sku, q in lines]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _order(order_id):
    db.session.expire_all()
    return db.session.get(Order, order_id)


def _count(model, **where):
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).filter_by(**where))




def test_yuan_typed_is_fen_exactly():
    assert parse_yuan("1024") == 102400
    assert parse_yuan(" ¥1,024.5 ") == 102450
    assert parse_yuan("0.07") == 7
    assert parse_yuan("19.99") == 1999  # no float: 19.99 * 100 is 1998.9999…
    assert parse_yuan("0", allow_zero=True) == 0
    for bad in ("", "abc", "1.005", "-1", "1e3", "0", "1.2.3", "99999999999"):
        with pytest.raises(ValueError):
            parse_yuan(bad)


@pytest.mark.parametrize(("form", "message"), [
    ({"amount": "", "reference": "B-1"}, "请填写金额"),
    ({"amount": "abc", "reference": "B-1"}, "金额要写成数字"),
    ({"amount": "1.005", "reference": "B-1"}, "最多两位小数"),
    ({"amount": "0", "reference": "B-1"}, "金额要大于 0"),
    ({"amount": "1.00", "reference": "B-1"}, "收款金额与订单金额不一致"),
    ({"amount": "288.00", "reference": ""}, "请填写收款凭证号"),
    ({"amount": "288.00", "reference": "x" * 65}, "最多 64 个字"),
])
def test_offline_payment_form_refuses_bad_input(console, form, message):
    order = _place(console, [("MILK250", 6)])
    assert order["total_fen"] == 28800
    resp = console.post(f"/hq/orders/{order['id']}/offline-payment", data={**form, "csrf": console.csrf})
    assert resp.status_code in (400, 422), resp.status_code
    html = resp.get_data(as_text=True)
    assert any(message in e for e in field_error(html)), field_error(html)
    assert f'value="{form["amount"]}"' in html  # what was typed stays in the field
    assert _order(order["id"]).status == "awaiting_payment"
    assert _count(Payment, order_id=order["id"]) == 0


def test_offline_payment_then_refund_and_allocate_forms(console):
    order = _place(console, [("MILK250", 6)])
    resp = console.post(f"/hq/orders/{order['id']}/offline-payment",
                        data={"amount": "288", "reference": "B-2", "csrf": console.csrf})
    assert resp.status_code == 302
    assert _order(order["id"]).status == "paid" and _order(order["id"]).paid_fen == 28800

    # Allocate: a warehouse not in the list, or one without the goods, is refused beside the select.
    for value, status, message in (("abc", 422, "请选择列表里的仓库"), (str(HUGE), 422, "请选择列表里的仓库"),
                                   ("999999", 422, "请选择列表里的仓库")):
        resp = console.post(f"/hq/orders/{order['id']}/allocate", data={"warehouse_id": value, "csrf": console.csrf})
        assert resp.status_code == status
        assert any(message in e for e in field_error(resp.get_data(as_text=True)))
        assert _order(order["id"]).status == "paid"

    # Refund: the amount must be the refundable amount, typed in yuan; the reason is needed.
    for form, message in (({"amount": "100", "reason": "不要了"}, "可退金额 ¥288.00"),
                          ({"amount": "288", "reason": ""}, "请填写退款原因"),
                          ({"amount": "288", "reason": "长" * 81}, "最多 80 个字"),
                          ({"amount": "", "reason": "不要了"}, "请填写金额")):
        resp = console.post(f"/hq/orders/{order['id']}/refund", data={**form, "csrf": console.csrf})
        assert resp.status_code == 422
        assert any(message in e for e in field_error(resp.get_data(as_text=True))), field_error(
            resp.get_data(as_text=True))
        assert _order(order["id"]).status == "paid" and _count(Refund, order_id=order["id"]) == 0

    # The suggested warehouse is shown; an override allocates there.
    page = console.get(f"/hq/orders/{order['id']}").get_data(as_text=True)
    assert "建议：<strong>杭州分仓</strong>" in page
    central = db.session.scalar(sa.select(Warehouse.id).where(Warehouse.code == "WH-CENTRAL"))
    resp = console.post(f"/hq/orders/{order['id']}/allocate", data={"warehouse_id": str(central),
                                                                    "csrf": console.csrf})
    assert resp.status_code == 302
    assert _order(order["id"]).warehouse_id == central
    resp = console.post(f"/hq/orders/{order['id']}/refund", data={"amount": "288.00", "reason": "门店不要了",
                                                                  "csrf": console.csrf})
    assert resp.status_code == 302
    assert _order(order["id"]).status == "refunded" and _order(order["id"]).refunded_fen == 28800


def test_ship_form_refuses_a_case_not_in_the_warehouse_and_changes_nothing(console):
    order = db.session.scalar(sa.select(Order).where(Order.status == "allocated"))
    in_transit = db.session.scalar(sa.select(Code.serial).where(Code.kind == "case", Code.state == "in_transit"))
    order_id = order.id
    resp = console.post(f"/hq/orders/{order_id}/ship", data={"case_code": [in_transit], "csrf": console.csrf})
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert "有码不在这个仓库" in html and in_transit in html and 'id="scan-input"' in html
    assert _order(order_id).status == "allocated" and _count(Shipment, order_id=order_id) == 0


def test_the_scan_desk_answers_json_and_needs_the_csrf_header(console):
    order = db.session.scalar(sa.select(Order).where(Order.status == "allocated"))
    url = f"/hq/orders/{order.id}/scan"
    headers = {"Accept": "application/json", "X-CSRF-Token": console.csrf}
    resp = console.post(url, json={"code": "ABC", "scanned": []}, headers={"Accept": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "csrf_failed"
    resp = console.post(url, json={"code": "ABC", "scanned": []}, headers={**headers, "X-CSRF-Token": "nope"})
    assert resp.status_code == 400
    resp = console.post(url, json={"scanned": "x"}, headers=headers)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "bad_scan"
    resp = console.post(url, json={"code": "ABC"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["accepted"] is False
    assert resp.get_json()["reason"] == "not_a_code" and resp.get_json()["needs"][0]["missing"] == 6


@pytest.mark.parametrize(("form", "message", "status"), [
    ({"limit": "-1"}, "金额要写成数字", 422),
    ({"limit": "abc"}, "金额要写成数字", 422),
    ({"limit": ""}, "请填写金额", 422),
    ({"limit": "100000000000"}, "金额要写成数字", 422),
])
def test_credit_limit_form_refuses_bad_input(console, form, message, status):
    store = _ids("S1")
    resp = console.post(f"/hq/stores/{store}/credit", data={**form, "csrf": console.csrf})
    assert resp.status_code == status
    assert any(message in e for e in field_error(resp.get_data(as_text=True)))
    assert _count(CreditAccount, store_id=store) == 0


def test_credit_line_and_repayment(console):
    store = _ids("S1")
    resp = console.post(f"/hq/stores/{store}/credit/repayments", data={"amount": "10", "csrf": console.csrf})
    assert resp.status_code == 409
    assert any("没有赊账额度" in e for e in field_error(resp.get_data(as_text=True)))
    resp = console.post(f"/hq/stores/{store}/credit", data={"limit": "1,000.50", "csrf": console.csrf})
    assert resp.status_code == 302
    db.session.expire_all()
    account = db.session.scalar(sa.select(CreditAccount).where(CreditAccount.store_id == store))
    assert account.limit_fen == 100050
    for amount, message, status in (("0", "金额要大于 0", 422), ("x", "金额要写成数字", 422),
                                    ("1", "还款超过了欠款", 409)):
        resp = console.post(f"/hq/stores/{store}/credit/repayments", data={"amount": amount, "csrf": console.csrf})
        assert resp.status_code == status
        assert any(message in e for e in field_error(resp.get_data(as_text=True)))
    assert _count(CreditLedger, account_id=account.id) == 0
    page = console.get(f"/hq/stores/{store}/credit").get_data(as_text=True)
    assert "¥1,000.50" in page


def test_every_write_needs_the_csrf_token(console):
    order = _place(console, [("MILK250", 6)])
    store = _ids("S1")
    for path, form in ((f"/hq/orders/{order['id']}/offline-payment", {"amount": "288", "reference": "C-1"}),
                       (f"/hq/orders/{order['id']}/allocate", {}),
                       (f"/hq/orders/{order['id']}/refund", {"amount": "288", "reason": "x"}),
                       (f"/hq/orders/{order['id']}/ship", {}),
                       (f"/hq/stores/{store}/credit", {"limit": "100"}),
                       (f"/hq/stores/{store}/credit/repayments", {"amount": "1"})):
        for token in (None, "wrong"):
            data = dict(form) if token is None else {**form, "csrf": token}
            resp = console.post(path, data=data)
            assert resp.status_code == 400, (path, resp.status_code)
            assert "页面已过期" in resp.get_data(as_text=True)
    assert _order(order["id"]).status == "awaiting_payment"
    assert _count(Payment, order_id=order["id"]) == 0 and _count(CreditAccount, store_id=store) == 0


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/hq/orders/999999", 404, "找不到这个订单"),
    (f"/hq/orders/{HUGE}", 404, None),
    (f"/hq/orders/{HUGE}/ship", 404, None),
    ("/hq/orders/999999/ship", 404, "找不到这个订单"),
    ("/hq/stores/999999/credit", 404, "找不到这家门店"),
    (f"/hq/stores/{HUGE}/credit", 404, None),
    ("/hq/orders?from=0001-01-01", 422, "筛选条件有误"),
    ("/hq/orders?to=0001-01-01", 422, "筛选条件有误"),
    ("/hq/orders?from=2026-12-01&to=2026-11-01", 422, "结束日期不能早于开始日期"),
    (f"/hq/orders?store_id={HUGE}", 422, "筛选条件有误"),
    ("/hq/orders?store_id=999999", 404, "找不到这家门店"),
    ("/hq/orders?status=bogus", 422, "筛选条件有误"),
    ("/hq/orders?region=33", 422, "地区代码是 6 位数字"),
    ("/hq/orders?page=0", 422, "筛选条件有误"),
])
def test_bad_urls_get_the_consoles_chinese_error_page(console, path, status, text):
    resp = console.get(path)
    assert resp.status_code == status, (path, resp.status_code)
    html = resp.get_data(as_text=True)
    assert resp.mimetype == "text/html" and "<title>出错了" in html and "品牌总部控制台" in html
    if text:
        assert text in html, html


def test_post_to_an_unknown_or_huge_order_is_the_error_page(console):
    for path in (f"/hq/orders/{HUGE}/refund", "/hq/orders/999999/refund", "/hq/orders/999999/allocate"):
        resp = console.post(path, data={"amount": "1", "reason": "x", "csrf": console.csrf})
        assert resp.status_code == 404 and "<title>出错了" in resp.get_data(as_text=True)


def test_the_order_list_filters(console):
    _place(console, [("MILK250", 6)], store="S2", openid="demo_store_owner_2")
    every = console.get("/hq/orders").get_data(as_text=True)
    numbers = set(re.findall(r'class="mono">(\d{15})</a>', every))
    assert len(numbers) == 4
    s2 = console.get(f"/hq/orders?store_id={_ids('S2')}").get_data(as_text=True)
    assert len(re.findall(r'class="mono">(\d{15})</a>', s2)) == 2 and "李姐烟酒店" in s2
    shenzhen = console.get("/hq/orders?region=440300").get_data(as_text=True)
    assert set(re.findall(r'class="mono">(\d{15})</a>', shenzhen)) == set(re.findall(r'class="mono">(\d{15})</a>', s2))
    from app.channel.models import Partner

    d1 = db.session.scalar(sa.select(Partner.id).where(Partner.code == "D1"))
    hangzhou = console.get(f"/hq/orders?distributor_id={d1}").get_data(as_text=True)
    assert len(re.findall(r'class="mono">(\d{15})</a>', hangzhou)) == 2
    completed = console.get("/hq/orders?status=completed").get_data(as_text=True)
    assert len(re.findall(r'class="mono">(\d{15})</a>', completed)) == 1
    none = console.get("/hq/orders?from=2099-01-01").get_data(as_text=True)
    assert "没有符合条件的订单" in none
    today = console.get("/hq/orders?from=2000-01-01&to=2099-12-31").get_data(as_text=True)
    assert len(re.findall(r'class="mono">(\d{15})</a>', today)) == 4


def test_the_hangzhou_operator_sees_and_opens_only_hangzhous_orders(client, demo):
    csrf = login(client, "warehouse_hz")
    hz = db.session.scalar(sa.select(Warehouse.id).where(Warehouse.code == "WH-HZ"))
    mine = db.session.scalar(sa.select(Order).where(Order.warehouse_id == hz))
    other = db.session.scalar(sa.select(Order).where(Order.warehouse_id != hz))
    unallocated = db.session.scalar(sa.select(Order).where(Order.warehouse_id.is_(None)))
    listed = client.get("/hq/orders").get_data(as_text=True)
    assert mine.number in listed and other.number not in listed and unallocated.number not in listed
    assert "S1 老王便利店" in listed and "李姐烟酒店" not in listed  # its orders' stores, in the table and the filter
    assert client.get(f"/hq/orders/{mine.id}").status_code == 200
    assert client.get(f"/hq/orders/{mine.id}/ship").status_code == 200
    for path in (f"/hq/orders/{other.id}", f"/hq/orders/{other.id}/ship", f"/hq/orders/{unallocated.id}"):
        resp = client.get(path)
        assert resp.status_code == 403 and "这不在你的权限范围内" in resp.get_data(as_text=True)
    resp = client.post(f"/hq/orders/{other.id}/scan", json={"code": "X"},
                       headers={"Accept": "application/json", "X-CSRF-Token": csrf})
    assert resp.status_code == 403
    resp = client.post(f"/hq/orders/{other.id}/ship", data={"csrf": csrf})
    assert resp.status_code == 403
    # The HQ API answers the same (the same query).
    from tests.conftest import hq_login

    headers = hq_login(client, "warehouse_hz")
    items = client.get("/api/hq/v1/orders?page_size=100", headers=headers).get_json()["items"]
    assert {i["id"] for i in items} == {o.id for o in db.session.scalars(sa.select(Order).where(
        Order.warehouse_id == hz))}
    assert client.get(f"/api/hq/v1/orders/{other.id}", headers=headers).status_code == 403
