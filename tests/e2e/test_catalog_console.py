"""The console's catalog in Chromium: HQ types a GTIN with a wrong check digit and sees the check fail as it types,
fixes it, saves the SKU (its minimum in whole cases), types a price with three decimals and is refused beside the
box, then sets it in yuan and reads it back; the incentive rules and the scan policy open too. Every page opens with
no console error and no failed request (the refusal the test provokes on purpose excepted).

Screenshots: catalog_*.png in $E2E_SCREENSHOT_DIR (else the test's temporary folder).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.catalog.gtin import make_gtin
from app.catalog.models import PriceTier, Sku, SkuPrice
from app.extensions import db
from tests.helpers import aborted_by_navigation

pytestmark = pytest.mark.browser

GTIN = make_gtin("695555000777")
WRONG = GTIN[:-1] + str((int(GTIN[-1]) + 3) % 10)


@pytest.fixture()
def demo(foundation_demo):
    """The catalog, channel and people are all these pages need."""


def _watch(page, expected: list[tuple[str, int]]) -> list[str]:
    problems: list[str] = []

    def provoked(url: str, status: int) -> bool:
        return any(part in url and status == code for part, code in expected)

    def console(message):
        url = (message.location or {}).get("url", "")
        if message.type == "error" and not (message.text.startswith("Failed to load resource") and any(
                part in url and f"status of {code}" in message.text for part, code in expected)):
            problems.append(f"console error: {message.text} ({url})")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: aborted_by_navigation(r) or problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status < 400 or provoked(r.url, r.status)
            or problems.append(f"{r.status} {r.url}"))
    return problems


def test_type_a_gtin_fix_it_save_a_sku_and_set_its_price(app, demo, browser, serve, screenshots):
    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems = _watch(page, [("/prices", 422)])
    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")

    page.click("header nav >> text=商品")
    page.wait_for_url(f"{base}/hq/catalog")
    assert "山泉牛奶" in page.inner_text("table") and "零售门店价" in page.inner_text("main")
    page.screenshot(path=str(screenshots / "catalog_list.png"), full_page=True)

    page.click("table >> text=山泉牛奶")
    page.wait_for_url("**/hq/catalog/products/*")
    assert "每箱 6 提" in page.inner_text("table")
    page.fill("#code", "MILK1L")
    page.fill("#name", "山泉纯牛奶 1L")
    page.fill("#specification", "1L×6瓶")
    page.fill("#unit", "瓶")
    page.fill("#case_pack", "6")
    page.fill("#min_order_quantity", "12")

    # The GTIN as typed: too short first, then the wrong check digit, then fixed.
    page.click("#gtin")
    page.keyboard.type(WRONG[:6], delay=10)
    assert "8、12、13 或 14 位数字" in page.inner_text("#gtin-check")
    page.keyboard.type(WRONG[6:], delay=10)
    check = page.inner_text("#gtin-check")
    assert check == f"校验位不对：按前面的数字，最后一位应是 {GTIN[-1]}，这里是 {WRONG[-1]}", check
    assert page.get_attribute("#gtin", "aria-invalid") == "true"
    assert "invalid" in page.get_attribute("label[for=gtin]", "class")
    page.screenshot(path=str(screenshots / "catalog_gtin_wrong.png"), full_page=True)
    page.keyboard.press("Backspace")
    page.keyboard.type(GTIN[-1])
    assert page.inner_text("#gtin-check") == "✓ 校验位正确"
    assert page.get_attribute("#gtin", "aria-invalid") == "false"
    page.screenshot(path=str(screenshots / "catalog_gtin_ok.png"), full_page=True)

    page.click("button:has-text('添加 SKU')")
    page.wait_for_url("**/hq/catalog/skus/*")
    assert "已添加 SKU：山泉纯牛奶 1L（每箱 6 瓶）" in page.inner_text(".flash.ok")
    sku_id = int(page.url.rstrip("/").split("/")[-1])
    sku = db.session.get(Sku, sku_id)
    assert (sku.gtin, sku.unit, sku.case_pack, sku.min_order_quantity) == (GTIN.rjust(14, "0"), "瓶", 6, 12)
    retail = db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == "retail"))
    db.session.remove()

    # A price with three decimals is refused beside its box; then set in yuan, kept as fen.
    page.fill(f"#price_{retail}", "12.345")
    page.click("#prices button")
    page.wait_for_selector(f"#price_{retail}-error")
    assert "最多两位小数" in page.inner_text(f"#price_{retail}-error")
    assert db.session.scalar(sa.select(SkuPrice.id).where(SkuPrice.sku_id == sku_id)) is None
    db.session.remove()
    page.screenshot(path=str(screenshots / "catalog_price_refused.png"), full_page=True)
    page.fill(f"#price_{retail}", "12.50")
    page.click("#prices button")
    page.wait_for_selector(".flash.ok")
    assert "价格已保存" in page.inner_text(".flash.ok") and "¥12.50" in page.inner_text("#prices")
    assert db.session.scalar(sa.select(SkuPrice.price_fen).where(SkuPrice.sku_id == sku_id,
                                                                 SkuPrice.price_tier_id == retail)) == 1250
    db.session.remove()
    page.screenshot(path=str(screenshots / "catalog_sku.png"), full_page=True)

    # An incentive rule for the new SKU, in words; the scan policy.
    page.goto(f"{base}/hq/incentives")
    page.select_option("#sku_id", str(sku_id))
    page.select_option("#step", "sell")
    page.fill("#points", "5")
    page.fill("#amount", "0.30")
    page.click("form.card button.primary")
    page.wait_for_selector(".flash.ok")
    assert "门店每扫码售出 1 瓶「山泉纯牛奶 1L」，得 5 积分 和 ¥0.30（每个码只算一次）" in page.inner_text("table")
    page.screenshot(path=str(screenshots / "catalog_incentives.png"), full_page=True)
    page.goto(f"{base}/hq/scan-policy")
    page.check("input[value=refuse]")
    page.click("form button.primary")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#current-policy") == "不让售出，并向总部报窜货预警"
    page.screenshot(path=str(screenshots / "catalog_scan_policy.png"), full_page=True)

    assert not problems, problems
    context.close()


def test_an_analyst_reads_every_catalog_page_without_a_form(app, demo, browser, serve, screenshots):
    sku = db.session.scalar(sa.select(Sku).where(Sku.code == "MILK250"))
    sku_id, product_id = sku.id, sku.product_id
    db.session.remove()
    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems = _watch(page, [])
    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", "analyst")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")
    for path in ("/hq/catalog", f"/hq/catalog/products/{product_id}", f"/hq/catalog/skus/{sku_id}",
                 "/hq/incentives", "/hq/scan-policy"):
        resp = page.goto(base + path, wait_until="networkidle")
        assert resp is not None and resp.status == 200, path
        assert page.locator("main form").count() == 0, path
    assert "只有总部管理员可以修改" in page.inner_text("main")
    page.goto(f"{base}/hq/catalog/skus/{sku_id}", wait_until="networkidle")
    assert "¥48.00" in page.inner_text("#prices") and "每箱 6 提" in page.inner_text("main")
    page.screenshot(path=str(screenshots / "catalog_sku_analyst.png"), full_page=True)
    assert not problems, problems
    context.close()
