"""The console's orders and fulfilment: the order list, an order's page (allocate, refund, offline payment), the
shipping desk with the handheld scanner, and a store's credit line.

Routes on the console's blueprint (`app.hq.pages.bp`), over the same domain functions as the HQ API
(`app.orders.queries`, `fulfilment`, `payments`, `services`, `picking`). A form with bad input comes back with the
message beside its field, status 422 (or the service's own status), and nothing changed.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from flask import Flask, flash, g, jsonify, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, validate
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from app.core.clock import BUSINESS_TZ
from app.core.pagination import paginate
from app.core.schemas import Day, Id, Int
from app.errors import AppError, ValidationFailed
from app.hq import pages, training_pages  # noqa: F401 - training_pages adds its routes to the console
from app.hq.pages import bp, login_required
from app.hq.pages import yuan as _yuan
from app.inventory.queries import list_warehouses
from app.orders import fulfilment, payments, picking, queries, services, states

PAGE_SIZE = 20
MAX_FEN = 10**12  # ¥10,000,000,000.00: more than any order or credit line here

ACTION_NAMES = {
    "create": "下单", "confirm": "店主确认", "reject": "店主拒绝", "pay": "付款", "allocate": "分配仓库",
    "ship": "发货", "deliver": "送达", "complete": "完成", "cancel": "取消", "refund": "退款", "expire": "超时取消",
    "cancel_request": "申请取消", "cancel_reject": "驳回取消", "refund_surplus": "多付退回",
}
METHOD_NAMES = {"wechat": "微信支付", "credit": "赊账", "offline": "线下收款"}
REFUND_STATUS = {"pending": "待退款", "processing": "退款中", "succeeded": "已退款", "failed": "退款失败"}
LEDGER_KINDS = {"charge": "赊账下单", "refund": "退款冲减", "repay": "还款"}

_YUAN = re.compile(r"^(\d{1,10})(?:\.(\d{1,2}))?$")


def parse_yuan(text: str | None, *, allow_zero: bool = False) -> int:
    """Yuan as typed ("1234.5", "¥1,234.50") → fen, exactly (no float); ValueError with the message to show."""
    raw = (text or "").strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    if not raw:
        raise ValueError("请填写金额")
    m = _YUAN.match(raw)
    if not m:
        raise ValueError("金额要写成数字，最多两位小数，例如 120.50")
    fen = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if fen == 0 and not allow_zero:
        raise ValueError("金额要大于 0")
    if fen > MAX_FEN:
        raise ValueError("金额太大了")
    return fen


def _text(name: str, *, max_len: int, label: str) -> str:
    value = (request.form.get(name) or "").strip()
    if not value:
        raise ValueError(f"请填写{label}")
    if len(value) > max_len:
        raise ValueError(f"{label}最多 {max_len} 个字")
    if "\x00" in value:
        raise ValueError(f"{label}里有不能用的字符")
    return value


# --- the list ---------------------------------------------------------------------------------------------------

class _OrderFilters(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(states.STATUSES))
    store_id = Id(load_default=None)
    distributor_id = Id(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$", error="地区代码是 6 位数字"))
    from_ = Day(data_key="from", load_default=None)
    to = Day(load_default=None)
    number = fields.String(load_default=None, validate=validate.Length(max=20))
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))


_ORDER_FILTERS = _OrderFilters()
_ORDER_FILTER_KEYS = frozenset(f.data_key or name for name, f in _ORDER_FILTERS.fields.items())


def _day_start(day) -> datetime:
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ)


@bp.get("/orders")
@login_required
def orders():
    """Orders the caller may see, newest first: filters by status, store, distributor, region and days; paged."""
    asked = MultiDict([(k, v.strip()) for k, v in request.args.items(multi=True)
                       if k in _ORDER_FILTER_KEYS and v.strip()])
    try:
        f = _ORDER_FILTERS.load(MultiDictProxy(asked, _ORDER_FILTERS))
    except ValidationError as err:
        raise ValidationFailed("筛选条件有误", code="bad_filters", details={"fields": err.messages}) from None
    if f["from_"] and f["to"] and f["to"] < f["from_"]:
        raise ValidationFailed("结束日期不能早于开始日期", code="bad_filters",
                               details={"fields": {"to": ["结束日期不能早于开始日期"]}})
    stmt = queries.list_orders(
        g.principal, status=f["status"], store_id=f["store_id"], distributor_id=f["distributor_id"],
        region=f["region"], number=f["number"],
        created_from=_day_start(f["from_"]) if f["from_"] else None,
        created_to=_day_start(f["to"] + timedelta(days=1)) if f["to"] else None)
    result = paginate(stmt, page=f["page"], page_size=PAGE_SIZE)
    pages = max(1, -(-result["total"] // PAGE_SIZE))
    keep = [(k, v) for k, v in asked.items(multi=True) if k != "page"]
    choices = queries.order_filter_choices(g.principal)
    return render_template("hq/orders.html", result=result, f=f, asked=dict(asked), pages=pages, keep=keep,
                           choices=choices, status_names=states.STATUS_NAMES, method_names=METHOD_NAMES,
                           store_names={s["id"]: f"{s['code']} {s['name']}" for s in choices["stores"]},
                           warehouses={w["id"]: w["name"] for w in list_warehouses()})


# --- one order --------------------------------------------------------------------------------------------------

def _order_page(order_id: int, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                status: int = 200):
    view = queries.order_page(g.principal, order_id)
    order = view["order"]
    suggestion = None
    can_operate = g.principal.can("warehouse.operate")
    if can_operate and order.status in (states.PAID, states.ALLOCATED) and not any(
            ln.shipped_quantity for ln in order.lines):
        try:
            suggestion = fulfilment.suggested_warehouse(g.principal, order_id)
        except AppError:
            suggestion = None
    return render_template(
        "hq/order.html", v=view, o=order, errors=errors or {}, values=values or {}, suggestion=suggestion,
        warehouses=list_warehouses(), status_names=states.STATUS_NAMES, action_names=ACTION_NAMES,
        method_names=METHOD_NAMES, refund_status=REFUND_STATUS, can_operate=can_operate,
        can_ship=can_operate and order.status in (states.ALLOCATED, states.SHIPPED) and any(
            ln.shipped_quantity < ln.quantity for ln in order.lines),
        can_write=g.principal.can("hq.write"), can_pay=g.principal.can("order.offline_pay"),
        states=states), status


@bp.get("/orders/<int:order_id>")
@login_required
def order(order_id: int):
    """An order: lines, payments, refunds, shipments with their case codes, history; the forms that act on it."""
    return _order_page(order_id)


def _refused(order_id: int, field: str, err: AppError, values: dict[str, str]):
    return _order_page(order_id, errors={field: err.message}, values=values, status=err.status)


@bp.post("/orders/<int:order_id>/allocate")
@login_required
def allocate(order_id: int):
    """Allocate to the suggested warehouse (empty choice) or to the one chosen (override)."""
    raw = (request.form.get("warehouse_id") or "").strip()
    values = {"warehouse_id": raw}
    warehouse_id = None
    if raw:
        known = {str(w["id"]): w["id"] for w in list_warehouses()}
        if raw not in known:
            return _order_page(order_id, errors={"allocate.warehouse_id": "请选择列表里的仓库"}, values=values,
                               status=422)
        warehouse_id = known[raw]
    try:
        done = fulfilment.allocate_order(g.principal, order_id, warehouse_id=warehouse_id)
    except AppError as err:
        return _refused(order_id, "allocate.warehouse_id", err, values)
    flash(f"已分配到{queries.order_page(g.principal, done.id)['warehouse_name']}，库存已预留", "ok")
    return redirect(url_for("hq_pages.order", order_id=order_id))


@bp.post("/orders/<int:order_id>/refund")
@login_required
def refund(order_id: int):
    """Refund a paid order that has not shipped: the amount typed must be what was paid and not yet refunded (the
    order is cancelled and every payment goes back); the reason is kept."""
    values = {"amount": request.form.get("amount", ""), "reason": request.form.get("reason", "")}
    errors: dict[str, str] = {}
    view = queries.order_page(g.principal, order_id)
    try:
        fen = parse_yuan(values["amount"])
        if fen != view["refundable_fen"]:
            raise ValueError(f"退款金额要等于可退金额 {_yuan(view['refundable_fen'])}（整单退款）")
    except ValueError as exc:
        errors["refund.amount"] = str(exc)
    try:
        reason = _text("reason", max_len=80, label="退款原因")
    except ValueError as exc:
        errors["refund.reason"] = str(exc)
    if errors:
        return _order_page(order_id, errors=errors, values=values, status=422)
    try:
        services.refund_order(g.principal, order_id, reason=reason)
    except AppError as err:
        return _refused(order_id, "refund.amount", err, values)
    flash(f"已退款 {_yuan(fen)}，订单已取消，预留的库存已释放", "ok")
    return redirect(url_for("hq_pages.order", order_id=order_id))


@bp.post("/orders/<int:order_id>/offline-payment")
@login_required
def offline_payment(order_id: int):
    """Record money received outside WeChat Pay (bank transfer, cash) with its reference; the amount must be the
    order's total."""
    values = {"amount": request.form.get("amount", ""), "reference": request.form.get("reference", "")}
    errors: dict[str, str] = {}
    try:
        fen = parse_yuan(values["amount"])
    except ValueError as exc:
        errors["pay.amount"] = str(exc)
    try:
        reference = _text("reference", max_len=64, label="收款凭证号")
    except ValueError as exc:
        errors["pay.reference"] = str(exc)
    if errors:
        return _order_page(order_id, errors=errors, values=values, status=422)
    try:
        payments.record_offline_payment(g.principal, order_id, reference=reference, amount_fen=fen)
    except AppError as err:
        field = "pay.amount" if err.code == "amount_mismatch" else "pay.reference"
        return _refused(order_id, field, err, values)
    flash(f"已记录线下收款 {_yuan(fen)}（{reference}）", "ok")
    return redirect(url_for("hq_pages.order", order_id=order_id))


# --- the shipping desk ------------------------------------------------------------------------------------------

def _ship_page(order_id: int, *, error: str | None = None, scanned: list[str] | None = None, status: int = 200):
    view = queries.order_page(g.principal, order_id)
    desk = picking.desk(g.principal, order_id)
    return render_template("hq/ship.html", v=view, o=view["order"], desk=desk, error=error, scanned=scanned or [],
                           status_names=states.STATUS_NAMES), status


@bp.get("/orders/<int:order_id>/ship")
@login_required
def ship(order_id: int):
    """The shipping desk: a scan field that keeps focus; each scan is checked at once (`scan`)."""
    return _ship_page(order_id)


class _ScanBody(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=512))
    scanned = fields.List(fields.String(validate=validate.Length(min=1, max=512)), load_default=list,
                          validate=validate.Length(max=picking.MAX_SCANNED))


@bp.post("/orders/<int:order_id>/scan")
@login_required
def scan(order_id: int):
    """One scan at the shipping desk (JSON, CSRF token in `X-CSRF-Token`): the code's SKU and units and what the
    order still needs, or the refusal's sentence. Nothing is written."""
    try:
        body = _ScanBody().load(request.get_json(silent=True) or {})
    except ValidationError as err:
        raise ValidationFailed("扫码内容有误", code="bad_scan", details={"fields": err.messages}) from None
    return jsonify(picking.check_scan(g.principal, order_id, body["code"], scanned=body["scanned"]))


@bp.post("/orders/<int:order_id>/ship")
@login_required
def ship_scanned(order_id: int):
    """Ship the cases scanned (a partial shipment when the order needs more); goods without codes ship with them."""
    codes = [c.strip() for c in request.form.getlist("case_code") if c.strip()]
    if len(codes) > picking.MAX_SCANNED:
        return _ship_page(order_id, error=f"一次最多发 {picking.MAX_SCANNED} 箱", status=422)
    try:
        shipment = fulfilment.ship_order(g.principal, order_id, case_codes=codes, lines=None)
    except AppError as err:
        bad = err.details.get("codes") if isinstance(err.details, dict) else None
        detail = "、".join(b.get("serial", "") for b in bad[:5]) if bad else ""
        return _ship_page(order_id, error=err.message + (f"：{detail}" if detail else ""), scanned=codes,
                          status=err.status)
    units = sum(sl.quantity for sl in shipment.lines)
    flash(f"已发货：{len(codes)} 箱码，共 {units} 件", "ok")
    return redirect(url_for("hq_pages.order", order_id=order_id))


# --- a store's credit line --------------------------------------------------------------------------------------

def _credit_page(store_id: int, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                 status: int = 200):
    view = queries.credit_page(g.principal, store_id)
    return render_template("hq/credit.html", v=view, errors=errors or {}, values=values or {},
                           kinds=LEDGER_KINDS, can_write=g.principal.can("hq.write")), status


@bp.get("/stores/<int:store_id>/credit")
@login_required
def credit(store_id: int):
    """A store's credit line: limit, what it owes, what is left, the ledger; set the limit, record a repayment."""
    return _credit_page(store_id)


@bp.post("/stores/<int:store_id>/credit")
@login_required
def set_credit(store_id: int):
    values = {"limit": request.form.get("limit", "")}
    try:
        fen = parse_yuan(values["limit"], allow_zero=True)
    except ValueError as exc:
        return _credit_page(store_id, errors={"limit": str(exc)}, values=values, status=422)
    try:
        payments.set_credit_limit(g.principal, store_id, limit_fen=fen)
    except AppError as err:
        return _credit_page(store_id, errors={"limit": err.message}, values=values, status=err.status)
    flash(f"赊账额度已设为 {_yuan(fen)}", "ok")
    return redirect(url_for("hq_pages.credit", store_id=store_id))


@bp.post("/stores/<int:store_id>/credit/repayments")
@login_required
def repay(store_id: int):
    values = {"amount": request.form.get("amount", "")}
    try:
        fen = parse_yuan(values["amount"])
    except ValueError as exc:
        return _credit_page(store_id, errors={"amount": str(exc)}, values=values, status=422)
    try:
        payments.repay_credit(g.principal, store_id, amount_fen=fen)
    except AppError as err:
        return _credit_page(store_id, errors={"amount": err.message}, values=values, status=err.status)
    flash(f"已记录还款 {_yuan(fen)}", "ok")
    return redirect(url_for("hq_pages.credit", store_id=store_id))




def register(app: Flask, api) -> None:
    """Mount the console: the pages of `app.hq.pages` with these routes on its blueprint (added at import)."""
    pages.register(app, api)
