"""Handle an alert in a real browser: log in, open the alerts, filter by region with the picker (province, then
city, loaded from the divisions as a person clicks), open one alert, set it to investigating with a note, then
dismiss it. No console error or warning, no failed request, no answer of 400 or more on the way."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.channel.models import Store
from app.codes.models import Code
from app.core.tx import transaction
from app.extensions import db
from app.scans.models import DiversionAlert, DiversionAlertEvent
from tests.helpers import aborted_by_navigation

pytestmark = pytest.mark.browser


def _alerts() -> tuple[int, int]:
    """A unit meant for S3 sold at S1 (Hangzhou), and one meant for S6 sold at S2 (Shenzhen)."""
    stores = {s.code: s for s in db.session.scalars(sa.select(Store))}
    made = []
    with transaction():
        for actual, expected in (("S1", "S3"), ("S2", "S6")):
            s, e = stores[actual], stores[expected]
            code = db.session.scalar(sa.select(Code).where(Code.store_id == s.id, Code.kind == "unit"))
            made.append(DiversionAlert(code_id=code.id, sku_id=code.sku_id, source="sell", policy="alert",
                                       expected_store_id=e.id, expected_distributor_id=e.distributor_id,
                                       expected_region=e.city_code, actual_store_id=s.id,
                                       actual_distributor_id=s.distributor_id,
                                       actual_region=s.district_code or s.city_code))
        db.session.add_all(made)
    ids = made[0].id, made[1].id
    db.session.remove()
    return ids


def test_handle_an_alert(app, demo, browser, serve, screenshots):
    hangzhou, shenzhen = _alerts()
    base = serve(app)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: aborted_by_navigation(r) or problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    region_calls: list[str] = []
    page.on("request", lambda r: region_calls.append(r.url) if "/hq/api/regions" in r.url else None)

    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")

    page.click("header nav >> text=窜货预警")
    page.wait_for_url(f"{base}/hq/alerts")
    assert page.locator(f'a[href="/hq/alerts/{hangzhou}"]').count() == 1
    assert page.locator(f'a[href="/hq/alerts/{shenzhen}"]').count() == 1
    picker = page.locator("#alert-filters [data-region-picker]")
    assert picker.locator('select[data-level="city"]').is_hidden()
    page.screenshot(path=str(screenshots / "alerts-all.png"), full_page=True)

    # The picker: a province, then its cities load and appear; a city, then its districts.
    picker.locator('select[data-level="province"]').select_option("330000")
    city = picker.locator('select[data-level="city"]')
    city.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#alert-filters select[data-level=city]').options.length > 5")
    city.select_option("330100")
    district = picker.locator('select[data-level="district"]')
    district.wait_for(state="visible")
    assert picker.locator('input[type=hidden][name=region]').input_value() == "330100"
    assert any("parent=330000" in u for u in region_calls) and any("parent=330100" in u for u in region_calls)
    page.screenshot(path=str(screenshots / "alerts-picker-open.png"))
    page.click("#alert-filters button[type=submit]")
    page.wait_for_url("**/hq/alerts?*region=330100*")
    assert page.locator(f'a[href="/hq/alerts/{hangzhou}"]').count() == 1
    assert page.locator(f'a[href="/hq/alerts/{shenzhen}"]').count() == 0
    # After the reload the picker shows what was chosen, by name.
    assert picker.locator('select[data-level="province"]').input_value() == "330000"
    assert picker.locator('select[data-level="city"]').input_value() == "330100"
    assert picker.locator('select[data-level="city"]').is_visible()
    page.screenshot(path=str(screenshots / "alerts-filtered-hangzhou.png"), full_page=True)

    page.click(f'a[href="/hq/alerts/{hangzhou}"]')
    page.wait_for_url(f"{base}/hq/alerts/{hangzhou}")
    assert page.inner_text("#alert-status") == "待处理"
    page.select_option("#status-form select[name=status]", "investigating")
    page.fill("#status-form textarea[name=note]", "已致电门店，核实进货渠道")
    page.click("#status-form button[type=submit]")
    page.wait_for_url(f"{base}/hq/alerts/{hangzhou}")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#alert-status") == "调查中"
    assert "已致电门店，核实进货渠道" in page.inner_text("#alert-history")
    page.screenshot(path=str(screenshots / "alert-investigating.png"), full_page=True)

    page.select_option("#status-form select[name=status]", "dismissed")
    page.fill("#status-form textarea[name=note]", "同城门店之间调货，已报备")
    page.click("#status-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#alert-status") == "已排除"
    history = page.inner_text("#alert-history")
    assert "同城门店之间调货，已报备" in history and history.count("调查中") >= 2
    page.screenshot(path=str(screenshots / "alert-dismissed.png"), full_page=True)
    context.close()

    alert = db.session.get(DiversionAlert, hangzhou)
    assert alert.status == "dismissed" and alert.handled_by_id and alert.handled_at
    assert [e.to_status for e in db.session.scalars(sa.select(DiversionAlertEvent).where(
        DiversionAlertEvent.alert_id == hangzhou).order_by(DiversionAlertEvent.id))] == ["investigating", "dismissed"]
    assert db.session.get(DiversionAlert, shenzhen).status == "open"
    assert not problems, problems


def test_the_consumer_page_of_a_sold_unit(app, demo, browser, serve, screenshots):
    """A phone opens a sold unit's printed URL: brand, product, sold on <date> in <city>, the service contact; a
    reload does not count as another check; no console error, no failed request."""
    from app.catalog.models import Sku
    from tests.conftest import mp_login
    from tests.scans.helpers import body, codes_in

    code = codes_in("S1")[0]
    gtin = db.session.get(Sku, code.sku_id).gtin
    client = app.test_client()
    sold = client.post("/api/mp/v1/scans", json=body(code.serial), headers=mp_login(client, "demo_store_owner"))
    assert sold.get_json()["status"] == "accepted"
    base = serve(app)
    context = browser.new_context(viewport={"width": 390, "height": 760}, locale="zh-CN", is_mobile=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("requestfailed", lambda r: aborted_by_navigation(r) or problems.append(f"failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(f"{base}/c/01/{gtin}/21/{code.serial}")
    text = page.inner_text("body")
    assert "正品" in text and "品牌：山泉" in text and "在杭州市售出" in text and "客服热线" in text
    assert "查询次数：1" in text
    page.reload()
    assert "查询次数：1" in page.inner_text("body")
    page.screenshot(path=str(screenshots / "consumer-sold-unit.png"), full_page=True)
    context.close()
    assert not problems, problems
