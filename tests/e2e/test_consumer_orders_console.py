"""HQ works a consumer order in the console as a person would, in Chromium: the demo's order for Beijing (where
nobody holds the territory) is with HQ; HQ routes it to the Shenzhen distributor with a reason, and the page shows
the event. No console message about a refused script or style (the CSP holds)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_hq_routes_a_consumer_order_in_the_console(app, demo, browser, serve, screenshots):
    console = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    page.goto(f"{console}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{console}/hq/")
    page.click("text=顾客订单")
    page.wait_for_url(f"{console}/hq/consumer-orders")
    text = page.inner_text("main")
    assert "成都蓉城分销" in text and "总部处理" in text and "已完成" in text
    page.screenshot(path=str(screenshots / "consumer-orders.png"), full_page=True)

    page.click("tr:has-text('北京市') a")
    body = page.inner_text("main")
    assert "地址不在任何伙伴的服务区域，订单已转总部处理" in body
    page.select_option("select[name=partner_id]", label="深圳南山分销")
    page.fill("input[name=reason]:near(select[name=partner_id])", "顾客在深圳收货")
    page.click("button:text-is('改派')")
    page.wait_for_load_state()
    body = page.inner_text("main")
    assert "已改派" in body and "总部改派" in body and "顾客在深圳收货" in body
    assert "订单已派给深圳南山分销，等待接单" in body
    page.screenshot(path=str(screenshots / "consumer-order.png"), full_page=True)
    assert not problems, problems
