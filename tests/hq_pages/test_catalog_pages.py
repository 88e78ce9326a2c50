"""The console's catalog and policy pages: products and SKUs (GTIN checked by the server too, minimums in whole
cases), prices per tier typed in yuan and kept as exact fen, incentive rules (add, end) and the scan policy.

Every form refuses bad input with the message beside its field, a 4xx status, and nothing changed; an analyst reads
and cannot write, a warehouse operator cannot write; a POST without the session's CSRF token changes nothing.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.catalog.gtin import make_gtin
from app.catalog.models import PriceTier, Product, Sku, SkuPrice
from app.extensions import db
from app.incentives.models import IncentiveRule
from app.scans.models import ScanPolicy
from tests.helpers import assert_db_unchanged, console_login

GOOD_GTIN = make_gtin("695555000123")
BAD_GTIN = GOOD_GTIN[:-1] + str((int(GOOD_GTIN[-1]) + 1) % 10)


@pytest.fixture()
def demo(foundation_demo):
    """The catalog, channel and people are all these pages need."""


def _login(client, username="admin"):
    assert console_login(client, username).status_code == 302
    return client


@pytest.fixture()
def console(client, demo):
    return _login(client)


def _csrf(client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/hq/catalog").get_data(as_text=True)).group(1)


def _beside(html: str, field: str) -> str:
    """The message shown beside a field (the span the field's aria-describedby names)."""
    assert re.search(rf'aria-describedby="[^"]*\b{field}-error', html), field
    found = re.search(rf'<span id="{field}-error" class="field-error" role="alert">([^<]+)</span>', html)
    assert found, (field, html[:3000])
    return found.group(1)


def _sku(app, code="MILK250") -> Sku:
    with app.app_context():
        return db.session.scalar(sa.select(Sku).where(Sku.code == code))


def _product_id(app) -> int:
    return _sku(app).product_id


def _tiers(app) -> dict[str, int]:
    with app.app_context():
        return {t.code: t.id for t in db.session.scalars(sa.select(PriceTier))}


def _sku_form(token, **over) -> dict[str, str]:
    form = {"csrf": token, "code": "MILK1L", "name": "山泉纯牛奶 1L", "specification": "1L×6", "gtin": GOOD_GTIN,
            "unit": "瓶", "case_unit": "箱", "case_pack": "6", "min_order_quantity": "12", "serialized": "on"}
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def test_the_pages_open_and_read_in_chinese(console, app):
    html = console.get("/hq/catalog").get_data(as_text=True)
    assert "山泉牛奶" in html and "零售门店价" in html and 'name="csrf"' in html and "产品与价格" in html
    assert "style=" not in html and "<script>" not in html
    product = console.get(f"/hq/catalog/products/{_product_id(app)}").get_data(as_text=True)
    assert "每箱 6 提" in product and 'name="gtin"' in product and "data-gtin-check" in product
    assert 'src="/hq/static/gtin.js"' in product and "<script>" not in product
    sku = console.get(f"/hq/catalog/skus/{_sku(app).id}").get_data(as_text=True)
    assert "零售门店价" in sku and "批发门店价" in sku and 'name="price_' in sku and "保存价格" in sku
    assert "class=\"on\"" in sku  # the nav link of the catalog is lit on its pages
    assert "还没有激励规则" in console.get("/hq/incentives").get_data(as_text=True)
    policy = console.get("/hq/scan-policy").get_data(as_text=True)
    assert 'name="diversion_policy"' in policy and "照常售出，并向总部报窜货预警" in policy
    script = console.get("/hq/static/gtin.js")
    assert script.status_code == 200 and "checkDigit" in script.get_data(as_text=True)
    script.close()


def test_add_a_product_then_a_sku_then_its_prices(console, app):
    token = _csrf(console)
    resp = console.post("/hq/catalog/products", data={"csrf": token, "name": "山泉纯牛奶大包装", "brand": "山泉",
                                                      "category": "乳品"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:800]
    product_id = int(resp.headers["Location"].rstrip("/").split("/")[-1])
    resp = console.post(f"/hq/catalog/products/{product_id}/skus", data=_sku_form(token))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    sku = _sku(app, "MILK1L")
    assert (sku.product_id, sku.gtin, sku.unit, sku.case_unit, sku.case_pack, sku.min_order_quantity,
            sku.serialized) == (product_id, GOOD_GTIN.rjust(14, "0"), "瓶", "箱", 6, 12, True)
    html = console.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已添加 SKU：山泉纯牛奶 1L（每箱 6 瓶）" in html and "12 瓶（2 箱）" in html

    tiers = _tiers(app)
    resp = console.post(f"/hq/catalog/skus/{sku.id}/prices", data={
        "csrf": token, f"price_{tiers['retail']}": "12.5", f"price_{tiers['wholesale']}": "¥1,234.05"})
    assert resp.status_code == 302
    with app.app_context():
        prices = dict(db.session.execute(sa.select(SkuPrice.price_tier_id, SkuPrice.price_fen)
                                         .where(SkuPrice.sku_id == sku.id)).all())
    assert prices == {tiers["retail"]: 1250, tiers["wholesale"]: 123405}
    html = console.get(f"/hq/catalog/skus/{sku.id}").get_data(as_text=True)
    assert "¥12.50" in html and "¥1,234.05" in html and 'value="12.50"' in html

    resp = console.post(f"/hq/catalog/products/{product_id}", data={"csrf": token, "name": "山泉牛奶 1L 装"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Product, product_id).name == "山泉牛奶 1L 装"


def test_a_gtin_with_a_wrong_check_digit_is_refused_beside_the_field(console, app):
    token, product_id = _csrf(console), _product_id(app)
    with assert_db_unchanged("skus"):
        resp = console.post(f"/hq/catalog/products/{product_id}/skus", data=_sku_form(token, gtin=BAD_GTIN))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert _beside(html, "gtin") == f"校验位不对：按前面的数字，最后一位应是 {GOOD_GTIN[-1]}，这里是 {BAD_GTIN[-1]}"
    assert f'value="{BAD_GTIN}"' in html and 'value="山泉纯牛奶 1L"' in html  # what was typed stays
    with assert_db_unchanged("skus"):
        resp = console.post(f"/hq/catalog/products/{product_id}/skus", data=_sku_form(token, gtin="69012abc"))
    assert resp.status_code == 422 and "8、12、13 或 14 位数字" in _beside(resp.get_data(as_text=True), "gtin")

    sku = _sku(app)
    form = _sku_form(token, gtin=BAD_GTIN, code=None, name=sku.name, unit=sku.unit, case_pack=str(sku.case_pack),
                     min_order_quantity=str(sku.min_order_quantity), is_active="on")
    with assert_db_unchanged("skus"):
        resp = console.post(f"/hq/catalog/skus/{sku.id}", data=form)
    assert resp.status_code == 422 and "校验位不对" in _beside(resp.get_data(as_text=True), "gtin")


def test_the_server_is_the_truth_for_the_gtin(console, app, monkeypatch):
    """Past the form's own check (say a script that skips it), the domain refuses the GTIN beside the field."""
    from app.hq import catalog_pages

    monkeypatch.setattr(catalog_pages, "gtin_problem", lambda value: None)
    with assert_db_unchanged("skus"):
        resp = console.post(f"/hq/catalog/products/{_product_id(app)}/skus",
                            data=_sku_form(_csrf(console), gtin=BAD_GTIN))
    assert resp.status_code == 422 and _beside(resp.get_data(as_text=True), "gtin") == "校验位不对"


def test_a_minimum_that_is_not_whole_cases_is_refused(console, app):
    token = _csrf(console)
    with assert_db_unchanged("skus"):
        resp = console.post(f"/hq/catalog/products/{_product_id(app)}/skus",
                            data=_sku_form(token, min_order_quantity="10"))
    assert resp.status_code == 422
    assert _beside(resp.get_data(as_text=True), "min_order_quantity") == "起订量要是整箱：每箱 6 瓶，可以写 6 或 12 瓶"

    sku = _sku(app)  # 每箱 6 提
    form = _sku_form(token, code=None, gtin=sku.gtin, name=sku.name, unit=sku.unit, min_order_quantity="9")
    with assert_db_unchanged("skus"):
        resp = console.post(f"/hq/catalog/skus/{sku.id}", data=form)
    assert resp.status_code == 422 and "起订量要是整箱" in _beside(resp.get_data(as_text=True), "min_order_quantity")
    with assert_db_unchanged("skus"):  # several problems at once, each beside its field
        resp = console.post(f"/hq/catalog/products/{_product_id(app)}/skus",
                            data=_sku_form(token, name="", case_pack="abc", gtin=""))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _beside(html, "name") == "请填写SKU 名称"
    assert _beside(html, "case_pack") == "每箱数量要写成整数" and _beside(html, "gtin") == "请填写条码（GTIN）"


@pytest.mark.parametrize("typed", ["12.345", "abc", "-1", "1e3", "12.5.0", "99999999999"])
def test_a_price_that_is_not_yuan_with_two_decimals_changes_nothing(console, app, typed):
    sku, tiers, token = _sku(app), _tiers(app), _csrf(console)
    with assert_db_unchanged("sku_prices"):
        resp = console.post(f"/hq/catalog/skus/{sku.id}/prices", data={
            "csrf": token, f"price_{tiers['retail']}": "9.90", f"price_{tiers['wholesale']}": typed})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'value="{sku.gtin}"' in html and f'value="{sku.name}"' in html  # the SKU's form keeps its values
    message = _beside(html, f"price_{tiers['wholesale']}")
    assert message in ("金额要写成数字，最多两位小数，例如 120.50", "金额太大了"), message
    assert f'value="{typed}"' in html


def test_an_analyst_reads_and_cannot_write(client, demo, app):
    _login(client, "analyst")
    sku, tiers = _sku(app), _tiers(app)
    for url in ("/hq/catalog", f"/hq/catalog/products/{sku.product_id}", f"/hq/catalog/skus/{sku.id}",
                "/hq/incentives", "/hq/scan-policy"):
        resp = client.get(url)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200 and 'method="post" action="/hq/catalog' not in html, url
        assert 'action="/hq/incentives' not in html and 'action="/hq/scan-policy' not in html, url
    assert "只有总部管理员可以修改" in client.get("/hq/scan-policy").get_data(as_text=True)
    _writes_are_refused(client, app, sku, tiers)


def test_a_warehouse_operator_cannot_write(client, demo, app):
    _login(client, "warehouse")
    _writes_are_refused(client, app, _sku(app), _tiers(app))


def _writes_are_refused(client, app, sku, tiers):
    token = _csrf(client)
    with app.app_context():
        db.session.add(IncentiveRule(sku_id=sku.id, step="sell", points=5))
        db.session.commit()
        rule_id = db.session.scalar(sa.select(IncentiveRule.id))
    writes = [
        ("/hq/catalog/products", {"name": "新品"}),
        ("/hq/catalog/price-tiers", {"code": "vip", "name": "大客户价"}),
        (f"/hq/catalog/products/{sku.product_id}", {"name": "改名"}),
        (f"/hq/catalog/products/{sku.product_id}/skus", _sku_form(token)),
        (f"/hq/catalog/skus/{sku.id}", _sku_form(token, code=None, gtin=sku.gtin, unit="提")),
        (f"/hq/catalog/skus/{sku.id}/prices", {f"price_{tiers['retail']}": "1.00"}),
        ("/hq/incentives", {"sku_id": str(sku.id), "step": "receive", "points": "3"}),
        (f"/hq/incentives/{rule_id}/end", {}),
        ("/hq/scan-policy", {"diversion_policy": "refuse"}),
        ("/hq/scan-policy", {"diversion_policy": "nonsense"}),
    ]
    for url, data in writes:
        with assert_db_unchanged("products", "skus", "sku_prices", "price_tiers", "incentive_rules"):
            resp = client.post(url, data={**data, "csrf": token})
        assert resp.status_code == 403, (url, resp.status_code)
        assert "出错了" in resp.get_data(as_text=True) or "权限" in resp.get_data(as_text=True), url
    with app.app_context():
        assert db.session.get(ScanPolicy, 1) is None


def test_a_write_without_the_csrf_token_changes_nothing(console, app):
    sku, tiers = _sku(app), _tiers(app)
    for url, data in [("/hq/catalog/products", {"name": "新品"}),
                      (f"/hq/catalog/skus/{sku.id}/prices", {f"price_{tiers['retail']}": "1.00"}),
                      ("/hq/scan-policy", {"diversion_policy": "refuse"}),
                      ("/hq/incentives", {"sku_id": str(sku.id), "step": "sell", "points": "1"})]:
        for token in (None, "forged"):
            with assert_db_unchanged("products", "sku_prices", "incentive_rules"):
                resp = console.post(url, data=data if token is None else {**data, "csrf": token})
            assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True), url
    with app.app_context():
        assert db.session.get(ScanPolicy, 1) is None


def test_incentive_rules_add_read_in_words_and_end(console, app):
    sku, token = _sku(app), _csrf(console)
    with assert_db_unchanged("incentive_rules"):
        resp = console.post("/hq/incentives", data={"csrf": token, "sku_id": str(sku.id), "step": "sell",
                                                    "amount": "0.505"})
    assert resp.status_code == 422 and "最多两位小数" in _beside(resp.get_data(as_text=True), "amount")
    with assert_db_unchanged("incentive_rules"):
        resp = console.post("/hq/incentives", data={"csrf": token, "sku_id": "999999", "step": "scan"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _beside(html, "sku_id") == "请选择列表里的 SKU"
    assert _beside(html, "step") == "请选择扫码收货或扫码售出"
    with assert_db_unchanged("incentive_rules"):
        resp = console.post("/hq/incentives", data={"csrf": token, "sku_id": str(sku.id), "step": "sell"})
    assert resp.status_code == 422 and _beside(resp.get_data(as_text=True), "points") == "积分和金额至少填一项"

    resp = console.post("/hq/incentives", data={"csrf": token, "sku_id": str(sku.id), "step": "sell",
                                                "points": "5", "amount": "0.5"}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    words = f"门店每扫码售出 1 {sku.unit}「{sku.name}」，得 5 积分 和 ¥0.50（每个码只算一次）"
    assert resp.status_code == 200 and words in html and "生效中" in html
    with app.app_context():
        rule = db.session.scalar(sa.select(IncentiveRule))
        assert (rule.step, rule.points, rule.amount_fen, rule.is_active) == ("sell", 5, 50, True)
    assert words in console.get(f"/hq/catalog/skus/{sku.id}").get_data(as_text=True)

    resp = console.post(f"/hq/incentives/{rule.id}/end", data={"csrf": token}, follow_redirects=True)
    assert resp.status_code == 200 and "规则已停用" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(IncentiveRule, rule.id).is_active is False
    with assert_db_unchanged("incentive_rules"):
        resp = console.post(f"/hq/incentives/{rule.id}/end", data={"csrf": token})
    assert resp.status_code == 409
    assert '<div class="flash error" role="alert">这条规则已经停用了</div>' in resp.get_data(as_text=True)
    assert console.post("/hq/incentives/999999/end", data={"csrf": token}).status_code == 404


def test_the_scan_policy_is_read_and_changed_by_hq(console, client, app):
    token = _csrf(console)
    with assert_db_unchanged("scan_policy"):
        resp = console.post("/hq/scan-policy", data={"csrf": token, "diversion_policy": "block"})
    assert resp.status_code == 422 and _beside(resp.get_data(as_text=True), "diversion_policy") == "请选择一种处理方式"
    resp = console.post("/hq/scan-policy", data={"csrf": token, "diversion_policy": "refuse"}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "扫码策略已保存" in html
    assert '<strong id="current-policy">不让售出，并向总部报窜货预警</strong>' in html
    with app.app_context():
        assert db.session.get(ScanPolicy, 1).diversion_policy == "refuse"


def test_unknown_ids_show_the_consoles_error_page(console):
    for url in ("/hq/catalog/products/999999", "/hq/catalog/skus/999999", "/hq/catalog/skus/99999999999999999999"):
        resp = console.get(url)
        assert resp.status_code == 404 and "出错了" in resp.get_data(as_text=True), url
    assert console.get("/hq/catalog?page=abc").status_code == 200
