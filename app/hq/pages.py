"""The HQ web console at /hq/: server-rendered pages over the same services and reads as the HQ API.

The login keeps the HQ bearer token in Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure in
production), made anew at login; logout revokes the token on the server. Every POST form carries a CSRF token.
Pages read through `app.analytics.queries`, so a region-bound analyst sees only their region.
Exports and label downloads go through `/hq/api/...`, which runs the HQ API's GET routes with the session's token.
"""

from __future__ import annotations

import secrets
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_smorest import Api
from marshmallow import Schema, ValidationError, fields, validate
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from app.accounts import flows
from app.analytics import production, queries, reports, rollups, services
from app.catalog.units import pack_text
from app.channel.regions import region_name
from app.codes.parse import grouped
from app.core.clock import BUSINESS_TZ, as_utc
from app.core.schemas import Day, Id
from app.core.security import read_token, require
from app.errors import AppError, NotFound, ValidationFailed, register_error_page
from app.hq import charts, code_pages
from app.inventory.queries import list_warehouse_stock
from app.scans import queries as scan_queries

bp = Blueprint("hq_pages", __name__, url_prefix="/hq", template_folder="templates", static_folder="static",
               static_url_path="/static")

T: dict[str, dict[str, str]] = {
    "app_name": {"zh": "品牌总部控制台", "en": "Brand HQ console"},
    "login": {"zh": "登录", "en": "Log in"}, "logout": {"zh": "退出", "en": "Log out"},
    "username": {"zh": "用户名", "en": "Username"}, "password": {"zh": "密码", "en": "Password"},
    "overview": {"zh": "总览", "en": "Overview"}, "sell_through": {"zh": "动销分析", "en": "Sell-through"},
    "store_stock": {"zh": "门店库存", "en": "Store stock"}, "alerts": {"zh": "窜货预警", "en": "Diversion alerts"},
    "plans": {"zh": "调拨计划", "en": "Allocation plans"}, "batches": {"zh": "码批次", "en": "Code batches"},
    "production": {"zh": "生产建议", "en": "Production"}, "transfers": {"zh": "调拨单", "en": "Transfers"},
    "units": {"zh": "销量（件）", "en": "Units"}, "amount": {"zh": "销售额", "en": "Sales"},
    "units_sold": {"zh": "销量", "en": "Units sold"},
    "previous": {"zh": "上期", "en": "Previous period"}, "change": {"zh": "环比", "en": "Change"},
    "stores_selling": {"zh": "动销门店", "en": "Selling stores"}, "trend": {"zh": "每日销量趋势", "en": "Daily units"},
    "this_period": {"zh": "本期", "en": "This period"}, "top_skus": {"zh": "畅销商品", "en": "Top SKUs"},
    "top_provinces": {"zh": "省份排行", "en": "Top provinces"}, "top_cities": {"zh": "城市排行", "en": "Top cities"},
    "from": {"zh": "开始", "en": "From"}, "to": {"zh": "结束", "en": "To"},
    "group_by": {"zh": "分组", "en": "Group by"},
    "sku": {"zh": "商品", "en": "SKU"}, "region": {"zh": "地区代码", "en": "Region code"},
    "all": {"zh": "全部", "en": "All"}, "apply": {"zh": "查询", "en": "Apply"},
    "export_xlsx": {"zh": "导出 Excel", "en": "Export Excel"}, "export_csv": {"zh": "导出 CSV", "en": "Export CSV"},
    "g_day": {"zh": "按日", "en": "Day"}, "g_sku": {"zh": "按商品", "en": "SKU"},
    "g_province": {"zh": "按省份", "en": "Province"}, "g_city": {"zh": "按城市", "en": "City"},
    "g_distributor": {"zh": "按分销商", "en": "Distributor"}, "g_store": {"zh": "按门店", "en": "Store"},
    "store": {"zh": "门店", "en": "Store"}, "city": {"zh": "城市", "en": "City"},
    "distributor": {"zh": "分销商", "en": "Distributor"}, "on_hand": {"zh": "库存", "en": "On hand"},
    "daily_rate": {"zh": "日均销量", "en": "Units/day"}, "cover": {"zh": "可售天数", "en": "Days of cover"},
    "no_data": {"zh": "暂无数据", "en": "No data yet"}, "slow_stores": {"zh": "滞销门店", "en": "Slow-moving stores"},
    "sell_in": {"zh": "进货 vs 动销", "en": "Sell-in vs sell-through"},
    "ranking": {"zh": "分销商排行", "en": "Distributor ranking"},
    "new_plan": {"zh": "生成调拨计划", "en": "New allocation plan"},
    "target_cover": {"zh": "目标可售天数", "en": "Target days of cover"},
    "create": {"zh": "生成", "en": "Create"}, "status": {"zh": "状态", "en": "Status"},
    "draft": {"zh": "草稿", "en": "Draft"}, "approved": {"zh": "已批准", "en": "Approved"},
    "approve": {"zh": "批准并生成调拨单", "en": "Approve and create transfers"},
    "warehouse": {"zh": "分仓", "en": "Sub-warehouse"}, "in_transit": {"zh": "在途", "en": "In transit"},
    "suggested": {"zh": "建议", "en": "Suggested"}, "quantity": {"zh": "调拨数量", "en": "Quantity"},
    "cover_before": {"zh": "调拨前天数", "en": "Cover before"},
    "cover_after": {"zh": "调拨后天数", "en": "Cover after"},
    "save": {"zh": "保存", "en": "Save"}, "receive": {"zh": "确认收货", "en": "Receive"},
    "received": {"zh": "已收货", "en": "Received"}, "created_at": {"zh": "创建时间", "en": "Created"},
    "total_units": {"zh": "合计", "en": "Total"}, "labels": {"zh": "标签", "en": "Labels"},
    "expected": {"zh": "应在", "en": "Expected"}, "actual": {"zh": "实际", "en": "Actual"},
    "policy": {"zh": "处理", "en": "Policy"}, "explanation": {"zh": "说明", "en": "Explanation"},
    "suggested_units": {"zh": "建议生产", "en": "Suggested"}, "network": {"zh": "全网库存", "en": "Network stock"},
    "forecast": {"zh": "预测需求", "en": "Forecast"}, "progress": {"zh": "进度", "en": "Progress"},
    "sub_stock": {"zh": "分仓库存", "en": "Sub-warehouse stock"},
    "error": {"zh": "出错了", "en": "Something went wrong"}, "back_home": {"zh": "返回总览", "en": "Back to overview"},
}


def lang() -> str:
    return session.get("lang", "zh")


def t(key: str) -> str:
    entry = T.get(key)
    return entry.get(lang(), entry["zh"]) if entry else key


def local_dt(value) -> str:
    """An instant as a date and time in China."""
    if value is None:
        return "—"
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value)
    return as_utc(value).astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def yuan(fen) -> str:
    """Fen as yuan with thousands separators: 19246200 → ¥192,462.00."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"


def pct(value) -> str:
    return "—" if value is None else f"{value:+.1f}%"


def num(value) -> str:
    return "—" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def by_unit(groups: list[dict], per: int | None = None) -> str:
    """A total per unit as one line (`1,200 提 · 30 袋`; `per` days: the daily average of each)."""
    if per:
        return " · ".join(f"{num(round(g['quantity'] / per, 1))} {g['unit']}" for g in groups) or "0"
    return " · ".join(f"{num(g['quantity'])} {g['unit']}" for g in groups) or "0"


def cover(value) -> str:
    return "∞" if value is None else f"{value:.1f}"


@bp.before_request
def _load_user():
    if "lang" in request.args and request.args["lang"] in ("zh", "en"):
        session["lang"] = request.args["lang"]
    session.setdefault("csrf", secrets.token_urlsafe(24))
    g.principal = None
    token = session.get("hq_token")
    if token:
        try:
            g.principal = read_token(token)
        except AppError:
            session.pop("hq_token", None)
    if request.method == "POST" and request.form.get("csrf") != session["csrf"]:
        raise AppError("页面已过期，请刷新后再提交", code="csrf_failed", status=400)
    if g.principal is not None and request.endpoint != "hq_pages.static":
        rollups.fold()  # the pages read the rollups: every sale committed so far is in them


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.principal is None:
            return redirect(url_for("hq_pages.login", next=request.full_path))
        try:
            require("hq.read")
        except AppError as err:
            return render_template("hq/error.html", message=err.message), err.status
        return view(*args, **kwargs)
    return wrapper


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"t": t, "lang": lang(), "yuan": yuan, "pct": pct, "num": num, "cover": cover, "by_unit": by_unit,
            "pack": lambda row: pack_text(row["case_pack"], row["unit"], row["case_unit"]),
            "local_dt": local_dt, "region_name": region_name, "csrf": session.get("csrf", ""),
            "principal": g.get("principal")}


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/hq/") and not target.startswith("//") else url_for(
        "hq_pages.overview")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; success keeps the HQ token in the signed session cookie."""
    error = None
    if request.method == "POST":
        try:
            answer = flows.login_console(request.form.get("username", ""), request.form.get("password", ""))
        except AppError as err:
            error = err.message
        else:
            token = answer["token"]
            if not read_token(token).can("hq.read"):
                error = "这个账号不能进入总部控制台"
            else:
                # A new session at login (no fixation): nothing set before it survives but the language,
                # and the CSRF token is a new one.
                keep_lang = session.get("lang")
                session.clear()
                if keep_lang:
                    session["lang"] = keep_lang
                session["csrf"] = secrets.token_urlsafe(24)
                session["hq_token"] = token
                session["user_name"] = answer["user"].get("display_name") or request.form.get("username")
                return redirect(_safe_next(request.args.get("next")))
    return render_template("hq/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    """Log out: the HQ token the cookie held is revoked on the server (the user's token version is raised),
    so a copy of the cookie, or of the token, stops working too."""
    if g.principal is not None:
        flows.logout_everywhere(g.principal.user_id)
    session.clear()
    return redirect(url_for("hq_pages.login"))


class _Filters(Schema):
    """The filter form's fields, with the API's own bounds (days the calendar holds, ids the database holds)."""

    from_ = Day(data_key="from", load_default=None)
    to = Day(load_default=None)
    sku_id = Id(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$"))


_FILTERS = _Filters()
_FILTER_KEYS = frozenset(f.data_key or name for name, f in _FILTERS.fields.items())


def _filters() -> dict[str, Any]:
    """The filters asked for (an empty form field is no filter); anything malformed is a 422 page saying what."""
    asked = MultiDict([(k, v.strip()) for k, v in request.args.items(multi=True)
                       if k in _FILTER_KEYS and v.strip()])
    try:
        f = _FILTERS.load(MultiDictProxy(asked, _FILTERS))
    except ValidationError as err:
        raise ValidationFailed("筛选条件有误", code="bad_filters", details={"fields": err.messages}) from None
    return {"from": f["from_"], "to": f["to"], "sku_id": f["sku_id"], "region": f["region"]}


def _skus():
    return queries.list_sku_names()


@bp.get("/")
@login_required
def overview():
    """Key figures, the trend chart and the top lists."""
    f = _filters()
    p = queries.period(f["from"], f["to"])
    data = queries.overview(g.principal, p=p, sku_id=f["sku_id"], region=f["region"])
    trend = data["trend"]
    chart = charts.line_chart([r["key"][5:] for r in trend],
                              [(t("this_period"), [r["units"] for r in trend]),
                               (t("previous"), [r["previous_units"] for r in trend])], title=t("trend"))

    def bars(rows):
        return charts.bar_chart([(r["label"], r["units"]) for r in rows[:8]], title="")

    today = queries.period(queries.today_business(), queries.today_business())
    today_totals = queries.totals(g.principal, p=today, sku_id=f["sku_id"], region=f["region"])
    return render_template("hq/overview.html", data=data, p=p, chart=chart, f=f, skus=_skus(), today=today_totals,
                           sku_bars=bars(data["top_skus"]), province_bars=bars(data["top_provinces"]),
                           city_bars=bars(data["top_cities"]))


@bp.get("/sell-through")
@login_required
def sell_through():
    """The explorer: grouping, filters, previous period, a chart and export links."""
    f = _filters()
    group_by = request.args.get("group_by", "city")
    if group_by not in queries.GROUPS:
        group_by = "city"
    p = queries.period(f["from"], f["to"])
    rows = queries.sell_through(g.principal, p=p, group_by=group_by, sku_id=f["sku_id"], region=f["region"])
    if group_by == "day":
        chart = charts.line_chart([r["key"][5:] for r in rows], [(t("this_period"), [r["units"] for r in rows]),
                                                                  (t("previous"), [r["previous_units"] for r in rows])],
                                  title=t("sell_through"))
    else:
        top = rows[:15]
        chart = charts.bar_chart([(r["label"], r["units"]) for r in top], width=880, title=t("sell_through"))
    query = {"from": p.start.isoformat(), "to": p.end.isoformat(), "group_by": group_by}
    if f["sku_id"]:
        query["sku_id"] = f["sku_id"]
    if f["region"]:
        query["region"] = f["region"]
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    extra = {
        "sell_in": queries.sell_in_vs_through(g.principal, p=p, group_by=group_by if group_by != "day" else "sku",
                                              sku_id=f["sku_id"], region=f["region"]),
        "ranking": queries.distributor_ranking(g.principal, p=p, sku_id=f["sku_id"], region=f["region"]),
    }
    return render_template("hq/sell_through.html", rows=rows, chart=chart, p=p, f=f, group_by=group_by,
                           skus=_skus(), qs=qs, groups=queries.GROUPS, **extra)


@bp.get("/store-stock")
@login_required
def store_stock():
    """Store stock with days of cover, and the slow-moving stores."""
    f = _filters()
    rows = queries.store_stock(g.principal, sku_id=f["sku_id"], region=f["region"])
    rows.sort(key=lambda r: (r["days_of_cover"] is None, r["days_of_cover"] or 0))
    slow = queries.slow_stores(g.principal, p=queries.period(None, None), region=f["region"], limit=20)
    qs = "&".join(f"{k}={v}" for k, v in (("sku_id", f["sku_id"]), ("region", f["region"])) if v)
    return render_template("hq/store_stock.html", rows=rows, slow=slow, f=f, skus=_skus(), qs=qs)


@bp.get("/alerts")
@login_required
def alerts():
    """Diversion alerts found by scans, newest first: the 200 newest the caller may read (`app.scans.queries`)."""
    items = [{"at": r["created_at"], "sku": r["sku_name"] or r["sku_id"], "source": r["source"],
              "serial": grouped(r["serial"]) if r["serial"] else "",
              "expected_store": r["expected_store"] or "—", "expected_distributor": r["expected_distributor"] or "—",
              "expected_region": region_name(r["expected_region"]) if r["expected_region"] else "—",
              "actual_store": r["actual_store"] or "—", "actual_distributor": r["actual_distributor"] or "—",
              "actual_region": region_name(r["actual_region"]) if r["actual_region"] else "—",
              "policy": r["policy"]}
             for r in scan_queries.list_alert_rows(g.principal, limit=200)]
    return render_template("hq/alerts.html", items=items)


@bp.get("/plans")
@login_required
def plans():
    """Allocation plans, the form for a new one, transfers and production suggestions."""
    listing = reports.list_plans(page=1, page_size=50)
    transfers = reports.list_transfers(page=1, page_size=20)
    suggestions = production.production_suggestions()
    return render_template("hq/plans.html", plans=listing["items"], transfers=transfers["items"],
                           suggestions=suggestions, sub_stock=_sub_stock())


def _sub_stock() -> list[dict]:
    """The warehouses' stock as a table: a row per warehouse, a column per SKU any of them holds."""
    table: dict[str, dict[str, int]] = {}
    names: list[str] = []
    for row in list_warehouse_stock():
        wh, sku, on_hand = row["warehouse"], row["sku"], row["on_hand"]
        table.setdefault(wh, {})[sku] = on_hand
        if sku not in names:
            names.append(sku)
    return [{"warehouse": wh, "cells": [cells.get(n, 0) for n in names], "skus": names} for wh, cells in table.items()]


def _write(action):
    """Run a write for the console: errors (a refusal of the service's own access check among them) come back as
    a flash message, not a stack trace."""
    try:
        return action()
    except AppError as err:
        flash(err.message, "error")
        return None


@bp.post("/plans")
@login_required
def create_plan():
    days = request.form.get("target_cover_days", "")
    if not days.isdigit() or not 1 <= int(days) <= 365:
        flash("目标可售天数要在 1 到 365 之间", "error")
        return redirect(url_for("hq_pages.plans"))
    plan = _write(lambda: services.create_plan(g.principal, target_cover_days=int(days)))
    return redirect(url_for("hq_pages.plan", plan_id=plan.id) if plan else url_for("hq_pages.plans"))


@bp.get("/plans/<int:plan_id>")
@login_required
def plan(plan_id: int):
    """One plan: the lines with their numbers, editable while a draft."""
    try:
        detail = reports.plan_detail(plan_id)
    except AppError:
        raise NotFound("找不到这个调拨计划", code="plan_not_found") from None
    return render_template("hq/plan.html", plan=detail, sub_stock=_sub_stock())


@bp.post("/plans/<int:plan_id>/lines/<int:line_id>")
@login_required
def edit_line(plan_id: int, line_id: int):
    qty = request.form.get("quantity", "")
    if not qty.isdigit():
        flash("数量要是整数", "error")
    else:
        _write(lambda: services.edit_line(g.principal, plan_id=plan_id, line_id=line_id, quantity=int(qty)))
    return redirect(url_for("hq_pages.plan", plan_id=plan_id))


@bp.post("/plans/<int:plan_id>/approve")
@login_required
def approve(plan_id: int):
    if _write(lambda: services.approve_plan(g.principal, plan_id=plan_id)):
        flash("已批准，调拨单已生成，货物在途", "ok")
    return redirect(url_for("hq_pages.plan", plan_id=plan_id))


@bp.post("/transfers/<int:transfer_id>/receive")
@login_required
def receive(transfer_id: int):
    try:
        transfer = services.receive_transfer(g.principal, transfer_id=transfer_id)
        flash("已收货，分仓库存已增加", "ok")
        back = transfer.plan_id
    except AppError as err:
        flash(err.message, "error")
        back = None
    return redirect(url_for("hq_pages.plan", plan_id=back) if back else url_for("hq_pages.plans"))


@bp.get("/api/<path:rest>")
@login_required
def api_proxy(rest: str):
    """GET routes of the HQ API (exports, label files) with the console session's token."""
    path = f"/api/hq/v1/{rest}"
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, values = adapter.match(path, method="GET")
    except HTTPException:  # no such route (or an id past what the database holds), or not a GET one
        raise NotFound() from None
    return current_app.view_functions[endpoint](**values)


code_pages.add_routes(bp, login_required)


def _error_page(status: int, message: str, details: dict[str, Any]):
    """Every error under /hq/ in the console's own layout, in Chinese, with its status (see app/errors.py)."""
    fields_ = details.get("fields") if isinstance(details.get("fields"), dict) else {}
    problems = [(name, "；".join(_texts(messages))) for name, messages in fields_.items()]
    return render_template("hq/error.html", status=status, message=message, problems=problems,
                           **_helpers()), status


def _texts(messages) -> list[str]:
    """Field messages as a flat list (marshmallow nests them by index and key)."""
    if isinstance(messages, str):
        return [messages]
    values = messages.values() if isinstance(messages, dict) else messages
    return [text for value in values for text in _texts(value)]


def register(app: Flask, api: Api) -> None:
    """Mount the console; session cookies stay HttpOnly and SameSite=Lax."""
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.register_blueprint(bp)
    register_error_page(app, "/hq/", _error_page)
