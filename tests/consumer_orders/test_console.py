"""The console's consumer order pages: the list, one order with its events, HQ routing with a reason, shipping."""

from __future__ import annotations

import re

from tests.conftest import mp_login
from tests.consumer_orders.helpers import MP, ship_codes_for, take


def _console(app, username="admin"):
    client = app.test_client()
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    assert client.post("/hq/login", data={"username": username, "password": "admin", "csrf": csrf}).status_code == 302
    with client.session_transaction() as s:
        return client, s["csrf"]


def test_list_order_route_and_ship_in_the_console(app, client, world):
    order = take(client, mp_login(client, "demo_distributor"), world).get_json()
    console, csrf = _console(app)
    html = console.get("/hq/consumer-orders").get_data(as_text=True)
    assert order["number"] in html and "成都蓉城分销" in html and "待接单" in html
    assert "成都市武侯区" in html
    html = console.get("/hq/consumer-orders?status=completed").get_data(as_text=True)
    assert order["number"] not in html
    html = console.get(f"/hq/consumer-orders/{order['id']}").get_data(as_text=True)
    assert "订单已派给成都蓉城分销，等待接单" in html and "下单" in html and "人民南路四段 12 号" in html
    assert order["confirmation_code"] not in html
    assert 'style="' not in html and "onclick" not in html

    # Re-routing needs a reason; with one, the event keeps it.
    resp = console.post(f"/hq/consumer-orders/{order['id']}/route",
                        data={"partner_id": world["partners"]["HQ"], "reason": "", "csrf": csrf})
    assert resp.status_code == 302
    html = console.get(f"/hq/consumer-orders/{order['id']}").get_data(as_text=True)
    assert "请写明改派原因" in html and "待接单" in html
    console.post(f"/hq/consumer-orders/{order['id']}/route",
                 data={"partner_id": world["partners"]["HQ"], "reason": "顾客要求总部直发", "csrf": csrf})
    html = console.get(f"/hq/consumer-orders/{order['id']}").get_data(as_text=True)
    assert "总部改派" in html and "顾客要求总部直发" in html and "总部处理" in html
    assert 'name="codes"' in html  # milk and tea are coded: the form asks for their codes
    console.post(f"/hq/consumer-orders/{order['id']}/ship", data={"warehouse_id": "", "csrf": csrf})
    html = console.get(f"/hq/consumer-orders/{order['id']}").get_data(as_text=True)
    assert "有码，请扫箱码或单品码发货" in html and "已发货" not in html
    codes = ship_codes_for(app, world, order)
    console.post(f"/hq/consumer-orders/{order['id']}/ship",
                 data={"warehouse_id": "", "codes": "\n".join(codes), "csrf": csrf})
    html = console.get(f"/hq/consumer-orders/{order['id']}").get_data(as_text=True)
    assert "已发货" in html and "中央仓" in html
    # Without the CSRF token nothing happens.
    assert console.post(f"/hq/consumer-orders/{order['id']}/cancel", data={"reason": "x"}).status_code == 400


def test_the_console_refuses_what_the_api_refuses(app, client, world):
    from app.accounts.services import create_hq_user
    from app.core.tx import transaction

    order = take(client, mp_login(client, "demo_distributor"), world).get_json()
    with app.app_context(), transaction():
        create_hq_user(username="zj", password="admin", role="hq_admin", region_code="330000")
    console, csrf = _console(app, "zj")
    assert console.get(f"/hq/consumer-orders/{order['id']}").status_code == 403
    resp = console.post(f"/hq/consumer-orders/{order['id']}/route",
                        data={"partner_id": world["partners"]["D1"], "reason": "试试", "csrf": csrf})
    assert resp.status_code == 302
    resp = client.get(f"{MP}/consumer-orders/{order['id']}", headers=mp_login(client, "demo_distributor"))
    assert resp.get_json()["serving"]["partner_id"] == world["partners"]["D5"]
