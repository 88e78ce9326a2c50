"""The console's catalog and policy pages: products and their SKUs (GTIN checked as typed, the sellable unit and its
case, minimums in whole cases), each SKU's price per tier (typed in yuan, kept in fen), the scan incentive rules, and
the scan policy.

Routes on the console's blueprint (`app.hq.pages.bp`), over the same domain functions as the HQ API
(`app.catalog.services`, `app.incentives.services`, `app.scans.policy`), with the console's caller: a write by
someone who may not write is refused by the domain (the console's error page, 403). A form with bad input comes back
with the message beside its field, status 422 (or the service's own), and nothing changed.
"""

from __future__ import annotations

import re

from flask import flash, g, redirect, render_template, request, url_for

from app.catalog import queries as catalog_queries
from app.catalog import services as catalog_services
from app.catalog.gtin import check_digit, is_valid_gtin
from app.catalog.units import pack_text
from app.core.pagination import paginate
from app.errors import AppError, NotFound
from app.hq.order_pages import parse_yuan
from app.hq.pages import bp, login_required
from app.incentives import queries as incentive_queries
from app.incentives import services as incentive_services
from app.incentives.models import INCENTIVE_STEPS
from app.scans import policy as scan_policy

PAGE_SIZE = 20
MAX_PRICE_FEN = 10**10  # the HQ API's bound on a tier price
MAX_CASE_PACK, MAX_MOQ, MAX_REWARD = 10_000, 1_000_000, 1_000_000
STEP_NAMES = {"receive": "扫码收货", "sell": "扫码售出"}
POLICY_NAMES = {"alert": "照常售出，并向总部报窜货预警", "refuse": "不让售出，并向总部报窜货预警"}
_WHOLE = re.compile(r"[0-9]{1,9}")


def _refused_fields(err: AppError, fallback: str) -> dict[str, str]:
    """A service's refusal as messages by field (its own field messages, else beside `fallback`); a refusal of the
    caller (403) is not a form's business and goes to the console's error page."""
    if err.status in (401, 403):
        raise err
    named = err.details.get("fields") if isinstance(err.details, dict) else None
    if isinstance(named, dict) and named:
        return {k: "；".join(v) if isinstance(v, list) else str(v) for k, v in named.items()}
    return {fallback: err.message}


def _text(values: dict[str, str], name: str, label: str, max_len: int, errors: dict[str, str], *,
          required: bool = True) -> str:
    value = values.get(name, "").strip()
    if required and not value:
        errors[name] = f"请填写{label}"
    elif len(value) > max_len:
        errors[name] = f"{label}最多 {max_len} 个字"
    elif "\x00" in value:
        errors[name] = f"{label}里有不能用的字符"
    return value


def _whole(values: dict[str, str], name: str, label: str, low: int, high: int, errors: dict[str, str]) -> int:
    raw = values.get(name, "").strip()
    if not _WHOLE.fullmatch(raw):
        errors[name] = f"{label}要写成整数" if raw else f"请填写{label}"
        return 0
    n = int(raw)
    if not low <= n <= high:
        errors[name] = f"{label}要在 {low} 到 {high:,} 之间"
    return n


def gtin_problem(value: str) -> str | None:
    """What is wrong with a typed GTIN, in the words the page shows (the browser's check says the same)."""
    if not value.isascii() or not value.isdigit() or len(value) not in (8, 12, 13, 14):
        return "条码要是 8、12、13 或 14 位数字"
    if not is_valid_gtin(value):
        return f"校验位不对：按前面的数字，最后一位应是 {check_digit(value[:-1])}，这里是 {value[-1]}"
    return None


# --- products -----------------------------------------------------------------------------------------------------

def _product_fields() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    values = {k: request.form.get(k, "") for k in ("name", "brand", "category")}
    errors: dict[str, str] = {}
    body = {"name": _text(values, "name", "产品名称", 100, errors),
            "brand": _text(values, "brand", "品牌", 64, errors, required=False),
            "category": _text(values, "category", "品类", 64, errors, required=False)}
    return values, errors, body


def _catalog_page(*, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                  status: int = 200):
    page = request.args.get("page", "1")
    page = int(page) if _WHOLE.fullmatch(page) and 1 <= int(page) <= 100_000 else 1
    result = paginate(catalog_queries.list_products(), page=page, page_size=PAGE_SIZE)
    return render_template("hq/catalog.html", result=result, pages=max(1, -(-result["total"] // PAGE_SIZE)),
                           counts=catalog_queries.sku_counts(), tiers=catalog_queries.list_price_tiers(),
                           errors=errors or {}, values=values or {},
                           can_write=g.principal.can("hq.write")), status


def catalog():
    """Products with how many SKUs each has, paged; the forms that add a product and a price tier."""
    return _catalog_page()


def create_product():
    values, errors, body = _product_fields()
    if errors:
        return _catalog_page(errors=errors, values=values, status=422)
    try:
        product = catalog_services.create_product(g.principal, **body)
    except AppError as err:
        return _catalog_page(errors=_refused_fields(err, "name"), values=values, status=err.status)
    flash(f"已添加产品：{product.name}，接着添加它的 SKU", "ok")
    return redirect(url_for("hq_pages.product", product_id=product.id))


def create_tier():
    values = {"tier_" + k: request.form.get(k, "") for k in ("code", "name")}
    errors: dict[str, str] = {}
    code = _text(values, "tier_code", "等级编号", 32, errors)
    name = _text(values, "tier_name", "等级名称", 64, errors)
    if errors:
        return _catalog_page(errors=errors, values=values, status=422)
    try:
        catalog_services.create_price_tier(g.principal, code=code, name=name)
    except AppError as err:
        return _catalog_page(errors=_refused_fields(err, "tier_code"), values=values, status=err.status)
    flash(f"已添加价格等级：{name}", "ok")
    return redirect(url_for("hq_pages.catalog"))


def _product_or_404(product_id: int):
    product = catalog_queries.get_product(product_id)
    if product is None:
        raise NotFound("找不到这个产品", code="product_not_found")
    return product


def _product_page(product_id: int, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                  status: int = 200):
    product = _product_or_404(product_id)
    return render_template("hq/product.html", p=product, errors=errors or {}, values=values or {},
                           can_write=g.principal.can("hq.write"), pack_text=pack_text), status


def product(product_id: int):
    """A product: its SKUs with their packing, the form that edits it and the one that adds a SKU."""
    return _product_page(product_id)


def edit_product(product_id: int):
    _product_or_404(product_id)
    values, errors, body = _product_fields()
    values = {"p_" + k: v for k, v in values.items()}
    errors = {"p_" + k: v for k, v in errors.items()}
    if errors:
        return _product_page(product_id, errors=errors, values=values, status=422)
    try:
        catalog_services.update_product(g.principal, product_id, **body)
    except AppError as err:
        return _product_page(product_id, errors={"p_" + k: v for k, v in _refused_fields(err, "name").items()},
                             values=values, status=err.status)
    flash("产品已保存", "ok")
    return redirect(url_for("hq_pages.product", product_id=product_id))


# --- SKUs ---------------------------------------------------------------------------------------------------------

SKU_FIELDS = ("code", "name", "specification", "gtin", "unit", "case_unit", "case_pack", "min_order_quantity")


def _sku_form(*, new: bool) -> tuple[dict[str, str], dict[str, str], dict]:
    """The SKU form's fields checked as the domain will (all problems at once, each beside its field)."""
    values = {k: request.form.get(k, "") for k in SKU_FIELDS}
    values["serialized"] = "on" if request.form.get("serialized") else ""
    errors: dict[str, str] = {}
    body: dict = {}
    if new:
        body["code"] = _text(values, "code", "SKU 编号", 32, errors)
    body["name"] = _text(values, "name", "SKU 名称", 100, errors)
    body["specification"] = _text(values, "specification", "规格", 64, errors, required=False)
    gtin = values["gtin"].strip()
    body["gtin"] = gtin
    if not gtin:
        errors["gtin"] = "请填写条码（GTIN）"
    elif problem := gtin_problem(gtin):
        errors["gtin"] = problem
    body["unit"] = _text(values, "unit", "售卖单位", 16, errors)
    body["case_unit"] = _text(values, "case_unit", "箱的单位", 16, errors)
    body["case_pack"] = _whole(values, "case_pack", "每箱数量", 1, MAX_CASE_PACK, errors)
    body["min_order_quantity"] = _whole(values, "min_order_quantity", "起订量", 1, MAX_MOQ, errors)
    body["serialized"] = bool(values["serialized"])
    if not {"unit", "case_unit", "case_pack", "min_order_quantity"} & errors.keys():
        try:
            catalog_services.check_packing(unit=body["unit"], case_unit=body["case_unit"],
                                           case_pack=body["case_pack"],
                                           min_order_quantity=body["min_order_quantity"])
        except AppError as err:
            errors.update(_refused_fields(err, "case_pack"))
    return values, errors, body


def create_sku(product_id: int):
    """Add a SKU to the product; the server checks the GTIN (the browser's check is a help, this is the truth)."""
    _product_or_404(product_id)
    values, errors, body = _sku_form(new=True)
    if errors:
        return _product_page(product_id, errors=errors, values=values, status=422)
    try:
        sku = catalog_services.create_sku(g.principal, product_id=product_id, **body)
    except AppError as err:
        field = "code" if err.code == "sku_taken" else "gtin"
        return _product_page(product_id, errors=_refused_fields(err, field), values=values, status=err.status)
    flash(f"已添加 SKU：{sku.name}（{pack_text(sku.case_pack, sku.unit, sku.case_unit)}），请设置它的价格", "ok")
    return redirect(url_for("hq_pages.sku", sku_id=sku.id))


def _sku_or_404(sku_id: int):
    sku = catalog_queries.get_sku(sku_id)
    if sku is None:
        raise NotFound("找不到这个 SKU", code="sku_not_found")
    return sku


def _sku_page(sku_id: int, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
              status: int = 200):
    sku = _sku_or_404(sku_id)
    prices = {p.price_tier_id: p.price_fen for p in sku.prices}
    shown = {k: str(getattr(sku, k) or "") for k in SKU_FIELDS}
    shown.update(serialized="on" if sku.serialized else "", is_active="on" if sku.is_active else "")
    shown.update({f"price_{tier_id}": f"{fen // 100}.{fen % 100:02d}" for tier_id, fen in prices.items()})
    shown.update(values or {})  # what was typed into the form that came back, the rest as saved
    values = shown
    rules = [{"rule": r, "text": rule_text(r.step, r.points, r.amount_fen, sku.name, sku.unit)}
             for r in incentive_queries.list_rules() if r.sku_id == sku_id]
    return render_template("hq/sku.html", s=sku, tiers=catalog_queries.list_price_tiers(), prices=prices,
                           rules=rules, errors=errors or {}, values=values,
                           can_write=g.principal.can("hq.write"), pack_text=pack_text), status


def sku(sku_id: int):
    """A SKU: its fields to edit, and its price in each tier."""
    return _sku_page(sku_id)


def edit_sku(sku_id: int):
    _sku_or_404(sku_id)
    values, errors, body = _sku_form(new=False)
    body["is_active"] = bool(request.form.get("is_active"))
    values["is_active"] = "on" if body["is_active"] else ""
    if errors:
        return _sku_page(sku_id, errors=errors, values=values, status=422)
    try:
        catalog_services.update_sku(g.principal, sku_id, **body)
    except AppError as err:
        return _sku_page(sku_id, errors=_refused_fields(err, "gtin"), values=values, status=err.status)
    flash("SKU 已保存", "ok")
    return redirect(url_for("hq_pages.sku", sku_id=sku_id))


def set_prices(sku_id: int):
    """The SKU's price per tier, typed in yuan (two decimals at most) and kept in fen; an empty box leaves that tier
    as it is. One wrong box saves none of them."""
    _sku_or_404(sku_id)
    tiers = catalog_queries.list_price_tiers()
    values = {f"price_{t.id}": request.form.get(f"price_{t.id}", "") for t in tiers}
    errors: dict[str, str] = {}
    prices: dict[int, int] = {}
    for tier in tiers:
        raw = values[f"price_{tier.id}"].strip()
        if not raw:
            continue
        try:
            fen = parse_yuan(raw, allow_zero=True)
            if fen > MAX_PRICE_FEN:
                raise ValueError("金额太大了")
            prices[tier.id] = fen
        except ValueError as exc:
            errors[f"price_{tier.id}"] = str(exc)
    if not errors and not prices:
        errors["_prices"] = "请至少填一个价格"
    if errors:
        return _sku_page(sku_id, errors=errors, values=values, status=422)
    try:
        catalog_services.update_sku(g.principal, sku_id, prices=prices)
    except AppError as err:
        return _sku_page(sku_id, errors=_refused_fields(err, "_prices"), values=values, status=err.status)
    flash(f"价格已保存（{len(prices)} 个等级）", "ok")
    return redirect(url_for("hq_pages.sku", sku_id=sku_id))


# --- incentive rules ----------------------------------------------------------------------------------------------

def _yuan_text(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def rule_text(step: str, points: int, amount_fen: int, sku_name: str, unit: str) -> str:
    """`门店每扫码售出 1 提「山泉纯牛奶」，得 5 积分 和 ¥0.50（每个码只算一次）`."""
    rewards = [f"{points:,} 积分" if points else "", _yuan_text(amount_fen) if amount_fen else ""]
    reward = " 和 ".join(r for r in rewards if r) or "不得奖励"
    return f"门店每{STEP_NAMES.get(step, step)} 1 {unit}「{sku_name}」，得 {reward}（每个码只算一次）"


def _incentives_page(*, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                     status: int = 200):
    skus = catalog_queries.skus_by_id()
    rules = [{"rule": r, "sku": skus.get(r.sku_id),
              "text": rule_text(r.step, r.points, r.amount_fen,
                                skus[r.sku_id].name if r.sku_id in skus else f"#{r.sku_id}",
                                skus[r.sku_id].unit if r.sku_id in skus else "件")}
             for r in incentive_queries.list_rules()]
    rules.sort(key=lambda row: (not row["rule"].is_active, row["rule"].sku_id, row["rule"].step))
    return render_template("hq/incentives.html", rules=rules, skus=list(skus.values()), step_names=STEP_NAMES,
                           errors=errors or {}, values=values or {},
                           can_write=g.principal.can("hq.write")), status


def incentives():
    """The incentive rules in plain words (running ones first), and the form that adds one."""
    return _incentives_page()


def create_rule():
    """Add the rule for a SKU and step (it replaces the one there is, running or ended)."""
    values = {k: request.form.get(k, "") for k in ("sku_id", "step", "points", "amount")}
    errors: dict[str, str] = {}
    skus = {str(i): s for i, s in catalog_queries.skus_by_id().items()}
    sku = skus.get(values["sku_id"].strip())
    if sku is None:
        errors["sku_id"] = "请选择列表里的 SKU"
    step = values["step"].strip()
    if step not in INCENTIVE_STEPS:
        errors["step"] = "请选择扫码收货或扫码售出"
    points = 0
    if values["points"].strip():
        points = _whole(values, "points", "积分", 0, MAX_REWARD, errors)
    amount_fen = 0
    if values["amount"].strip():
        try:
            amount_fen = parse_yuan(values["amount"], allow_zero=True)
            if amount_fen > MAX_REWARD:
                raise ValueError(f"每次奖励最多 {_yuan_text(MAX_REWARD)}")
        except ValueError as exc:
            errors["amount"] = str(exc)
    if not errors and not points and not amount_fen:
        errors["points"] = "积分和金额至少填一项"
    if errors:
        return _incentives_page(errors=errors, values=values, status=422)
    try:
        incentive_services.set_rules(g.principal, [{"sku_id": sku.id, "step": step, "points": points,
                                                    "amount_fen": amount_fen, "is_active": True}])
    except AppError as err:
        return _incentives_page(errors=_refused_fields(err, "sku_id"), values=values, status=err.status)
    flash("已保存激励规则：" + rule_text(step, points, amount_fen, sku.name, sku.unit), "ok")
    return redirect(url_for("hq_pages.incentives"))


def end_rule(rule_id: int):
    """Stop a rule: later scans earn nothing by it; what stores have earned stays."""
    try:
        incentive_services.end_rule(g.principal, rule_id)
    except AppError as err:
        if err.status in (401, 403, 404):
            raise
        return _incentives_page(errors={"_rules": err.message}, status=err.status)
    flash("规则已停用：之后的扫码不再按它奖励，已得的奖励不变", "ok")
    return redirect(url_for("hq_pages.incentives"))


# --- the scan policy ----------------------------------------------------------------------------------------------

def _policy_page(*, errors: dict[str, str] | None = None, status: int = 200):
    current = scan_policy.get_scan_policy(g.principal)
    return render_template("hq/scan_policy.html", current=current, names=POLICY_NAMES,
                           choices=scan_policy.DIVERSION_POLICIES, errors=errors or {},
                           can_write=g.principal.can("hq.write")), status


def policy():
    """What a store's sell scan of a diverted unit does; HQ admins change it, others read it."""
    return _policy_page()


def set_policy():
    chosen = request.form.get("diversion_policy", "").strip()
    try:  # the domain checks the caller first, then the choice
        scan_policy.set_scan_policy(g.principal, diversion_policy=chosen)
    except AppError as err:
        errors = _refused_fields(err, "diversion_policy")
        if err.code == "invalid_policy":
            errors = {"diversion_policy": "请选择一种处理方式"}
        return _policy_page(errors=errors, status=err.status)
    flash("扫码策略已保存：窜货的货" + POLICY_NAMES[chosen], "ok")
    return redirect(url_for("hq_pages.scan_policy_page"))


def _add_routes() -> None:
    rules = [
        ("/catalog", "catalog", catalog, "GET"),
        ("/catalog/products", "create_product", create_product, "POST"),
        ("/catalog/price-tiers", "create_tier", create_tier, "POST"),
        ("/catalog/products/<int:product_id>", "product", product, "GET"),
        ("/catalog/products/<int:product_id>", "edit_product", edit_product, "POST"),
        ("/catalog/products/<int:product_id>/skus", "create_sku", create_sku, "POST"),
        ("/catalog/skus/<int:sku_id>", "sku", sku, "GET"),
        ("/catalog/skus/<int:sku_id>", "edit_sku", edit_sku, "POST"),
        ("/catalog/skus/<int:sku_id>/prices", "set_prices", set_prices, "POST"),
        ("/incentives", "incentives", incentives, "GET"),
        ("/incentives", "create_rule", create_rule, "POST"),
        ("/incentives/<int:rule_id>/end", "end_rule", end_rule, "POST"),
        ("/scan-policy", "scan_policy_page", policy, "GET"),
        ("/scan-policy", "set_scan_policy", set_policy, "POST"),
    ]
    for path, endpoint, view, method in rules:
        bp.add_url_rule(path, endpoint, login_required(view), methods=[method])


_add_routes()
