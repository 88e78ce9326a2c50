"""The HQ web console at /hq/: server-rendered pages over the same services and reads as the HQ API.

The login keeps the HQ bearer token in Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure in
production), made anew at login; logout revokes the token on the server. Every POST form carries a CSRF token.
Pages read through `app.analytics.queries`, so a region-bound analyst sees only their region.
Exports and label downloads go through `/hq/api/...`, which runs the HQ API's GET routes with the session's token.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_smorest import Api
from marshmallow import Schema, ValidationError, fields, validate
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from app.analytics import production, queries, reports, services
from app.catalog.units import pack_text
from app.channel import queries as channel_queries
from app.channel import registrations
from app.channel.identity import KIND_NAMES
from app.channel.registration_models import STATUS_NAMES
from app.codes.parse import grouped
from app.core.clock import BUSINESS_TZ, as_utc, now_utc
from app.core.pagination import paginate
from app.core.regions import is_valid as is_valid_region
from app.core.regions import picker_choices, region_name
from app.core.replica import replica_reads
from app.core.schemas import Day, Id
from app.core.security import read_token, require
from app.errors import AppError, NotFound, ValidationFailed, register_error_page
from app.hq import assessment_pages, channel_pages, charts, code_pages, referral_pages
from app.inventory.queries import list_warehouse_stock, list_warehouses
from app.orders import consumer_orders, consumer_queries
from app.scans import alerts as alert_services
from app.scans import queries as scan_queries
from app.scans.models import ALERT_STATUSES
from app.sessions import flows as sessions

ALERT_SOURCES = ("sell", "consumer", "stocktake")
SOURCE_NAMES = {"sell": "门店售出", "consumer": "顾客查询", "stocktake": "门店盘点"}

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
    "units": {"zh": "销量", "en": "Units"}, "amount": {"zh": "销售额", "en": "Sales"},
    "units_sold": {"zh": "销量", "en": "Units sold"},
    "previous": {"zh": "上期", "en": "Previous period"}, "change": {"zh": "环比", "en": "Change"},
    "stores_selling": {"zh": "动销门店", "en": "Selling stores"}, "trend": {"zh": "每日销量趋势", "en": "Daily units"},
    "this_period": {"zh": "本期", "en": "This period"}, "top_skus": {"zh": "畅销商品", "en": "Top SKUs"},
    "top_provinces": {"zh": "省份排行", "en": "Top provinces"}, "top_cities": {"zh": "城市排行", "en": "Top cities"},
    "from": {"zh": "开始", "en": "From"}, "to": {"zh": "结束", "en": "To"},
    "group_by": {"zh": "分组", "en": "Group by"},
    "sku": {"zh": "商品", "en": "SKU"}, "region": {"zh": "地区", "en": "Region"},
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
    "territories": {"zh": "区域分配", "en": "Territories"},
    "targets": {"zh": "目标与达成", "en": "Targets"},
    "assessments": {"zh": "考核与返点", "en": "Assessment & rebates"},
    "registrations": {"zh": "客户报备", "en": "Registrations"},
    "consumer_orders": {"zh": "顾客订单", "en": "Consumer orders"},
    "referrals": {"zh": "推荐奖励", "en": "Referral rewards"},
    "source": {"zh": "来源", "en": "Source"}, "handled_by": {"zh": "处理人", "en": "Handled by"},
    "handled_at": {"zh": "处理时间", "en": "Handled at"}, "history": {"zh": "处理记录", "en": "History"},
    "note": {"zh": "说明", "en": "Note"}, "add_note": {"zh": "添加备注", "en": "Add a note"},
    "change_status": {"zh": "更改状态", "en": "Change status"}, "serial": {"zh": "防伪码", "en": "Serial"},
    "province": {"zh": "省份", "en": "Province"}, "district": {"zh": "区县", "en": "District"},
    "all_cities": {"zh": "全部城市", "en": "All cities"},
    "all_districts": {"zh": "全部区县", "en": "All districts"}, "details": {"zh": "详情", "en": "Details"},
    "error": {"zh": "出错了", "en": "Something went wrong"}, "back_home": {"zh": "返回总览", "en": "Back to overview"},
    "fresh_live": {"zh": "数据：实时", "en": "Data: live"},
    "fresh_replica": {"zh": "数据：截至约 {n} 秒前（只读副本）", "en": "Data: as of about {n} s ago (read replica)"},
    "fresh_fallback": {"zh": "数据：实时（只读副本暂不可用，已改读主库）",
                       "en": "Data: live (the read replica is unavailable, read from the primary)"},
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


def freshness() -> str:
    """How fresh the page's figures are, for a page whose reads may come from the read replica (empty on
    others): its replay lag when the replica served them, else "实时" (and why not the replica, if one is set)."""
    source = g.get("read_source")
    if source is None:
        return ""
    if source.replica:
        return t("fresh_replica").format(n=max(1, round(source.lag_seconds or 0)))
    return t("fresh_fallback") if source.fallback in ("down", "lag", "not_standby") else t("fresh_live")


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
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token")  # forms, and the scan desk's fetch
    if request.method == "POST" and not (sent and secrets.compare_digest(sent, session["csrf"])):
        raise AppError("页面已过期，请刷新后再提交", code="csrf_failed", status=400)


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
            "freshness": freshness,
            "pack": lambda row: pack_text(row["case_pack"], row["unit"], row["case_unit"]),
            "local_dt": local_dt, "region_name": region_name, "region_choices": picker_choices,
            "grouped": grouped, "csrf": session.get("csrf", ""),
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
            answer = sessions.login_console(request.form.get("username", ""), request.form.get("password", ""))
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
        sessions.logout_everywhere(g.principal.user_id)
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


def _chart_unit(rows: list[dict]) -> str | None:
    """The one sellable unit every row's units are in (提), or None when they mix (a 提 and a 袋 do not add up:
    the chart then draws the amount in yuan)."""
    units = {g["unit"] for r in rows for key in ("units_by_unit", "previous_units_by_unit") for g in r.get(key, [])}
    return next(iter(units), "") if len(units) <= 1 else None


def _line(rows: list[dict], title: str):
    """This period against the previous one, day by day: in units when they are of one kind, else in yuan."""
    unit = _chart_unit(rows)
    if unit is None:
        series = [(f"{t('this_period')}（元）", [r["amount_fen"] / 100 for r in rows]),
                  (f"{t('previous')}（元）", [r["previous_amount_fen"] / 100 for r in rows])]
        title = f"{title}（{t('amount')}，元）"
    else:
        label = f"（{unit}）" if unit else ""
        series = [(t("this_period") + label, [r["units"] for r in rows]),
                  (t("previous") + label, [r["previous_units"] for r in rows])]
    return charts.line_chart([r["key"][5:] for r in rows], series, title=title)


def _bars(rows: list[dict], title: str, width: int = 420):
    """The rows as bars with their text: units when they are of one kind, else the amount in yuan."""
    unit = _chart_unit(rows)
    if unit is None:
        return charts.bar_chart([(r["label"], r["amount_fen"] / 100) for r in rows], width=width,
                                title=f"{title}（{t('amount')}，元）" if title else f"{t('amount')}（元）",
                                value_text=[yuan(r["amount_fen"]) for r in rows])
    return charts.bar_chart([(r["label"], r["units"]) for r in rows], width=width, title=title,
                            value_text=[f"{num(r['units'])} {unit}".strip() for r in rows])


@bp.get("/")
@login_required
@replica_reads()
def overview():
    """Key figures, the trend chart and the top lists."""
    f = _filters()
    p = queries.period(f["from"], f["to"])
    data = queries.overview(g.principal, p=p, sku_id=f["sku_id"], region=f["region"])
    trend = data["trend"]
    chart = _line(trend, t("trend"))

    def bars(rows):
        return _bars(rows[:8], "")

    today = queries.period(queries.today_business(), queries.today_business())
    today_totals = queries.totals(g.principal, p=today, sku_id=f["sku_id"], region=f["region"])
    return render_template("hq/overview.html", data=data, p=p, chart=chart, f=f, skus=_skus(), today=today_totals,
                           sku_bars=bars(data["top_skus"]), province_bars=bars(data["top_provinces"]),
                           city_bars=bars(data["top_cities"]))


@bp.get("/sell-through")
@login_required
@replica_reads()
def sell_through():
    """The explorer: grouping, filters, previous period, a chart and export links."""
    f = _filters()
    group_by = request.args.get("group_by", "city")
    if group_by not in queries.GROUPS:
        group_by = "city"
    p = queries.period(f["from"], f["to"])
    rows = queries.sell_through(g.principal, p=p, group_by=group_by, sku_id=f["sku_id"], region=f["region"])
    chart = _line(rows, t("sell_through")) if group_by == "day" else _bars(rows[:15], t("sell_through"), width=880)
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
@replica_reads()
def store_stock():
    """Store stock with days of cover, and the slow-moving stores."""
    f = _filters()
    rows = queries.list_store_cover(g.principal, sku_id=f["sku_id"], region=f["region"])
    rows.sort(key=lambda r: (r["days_of_cover"] is None, r["days_of_cover"] or 0))
    slow = queries.slow_stores(g.principal, p=queries.period(None, None), region=f["region"], limit=20)
    qs = "&".join(f"{k}={v}" for k, v in (("sku_id", f["sku_id"]), ("region", f["region"])) if v)
    return render_template("hq/store_stock.html", rows=rows, slow=slow, f=f, skus=_skus(), qs=qs)


class _AlertFilters(Schema):
    """The alerts page's filters: days (business days, China), region (province, city or district), SKU, source,
    status."""

    from_ = Day(data_key="from", load_default=None)
    to = Day(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$", error="地区代码是 6 位数字"))
    sku_id = Id(load_default=None)
    source = fields.String(load_default=None, validate=validate.OneOf(ALERT_SOURCES, error="没有这个来源"))
    status = fields.String(load_default=None, validate=validate.OneOf(ALERT_STATUSES, error="没有这个状态"))


_ALERT_FILTERS = _AlertFilters()
_ALERT_FILTER_KEYS = ("from", "to", "region", "sku_id", "source", "status")
ALERT_PAGE_ROWS = 200


def _alert_filters() -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(filters for the query, the form's values as typed, a message per field that is wrong)."""
    typed = {k: request.args.get(k, "").strip() for k in _ALERT_FILTER_KEYS}
    asked = MultiDict([(k, v) for k, v in typed.items() if v])
    errors: dict[str, str] = {}
    try:
        f = _ALERT_FILTERS.load(MultiDictProxy(asked, _ALERT_FILTERS))
    except ValidationError as err:
        errors = {k: "；".join(_texts(v)) for k, v in err.messages.items()}
        f = {}
    if not errors and f.get("region") and not is_valid_region(f["region"]):
        errors["region"] = "没有这个地区"
    if not errors and f["from_"] and f["to"] and f["from_"] > f["to"]:
        errors["to"] = "结束日期不能早于开始日期"
    if errors:
        return {}, typed, errors
    since = datetime.combine(f["from_"], time.min, BUSINESS_TZ) if f["from_"] else None
    until = datetime.combine(f["to"] + timedelta(days=1), time.min, BUSINESS_TZ) if f["to"] else None
    return ({"since": since, "until": until, "region": f["region"], "sku_id": f["sku_id"], "source": f["source"],
             "status": f["status"]}, typed, {})


def _alert_export_query(filters: dict[str, Any], fmt: str) -> str:
    """The HQ API's query for the same alerts as a file (its `from`/`to` are instants)."""
    query = {"format": fmt}
    for key, name in (("since", "from"), ("until", "to")):
        if filters.get(key):
            query[name] = filters[key].isoformat()
    for key in ("region", "sku_id", "source", "status"):
        if filters.get(key):
            query[key] = filters[key]
    return urlencode(query)


@bp.get("/alerts")
@login_required
def alerts():
    """Diversion alerts, newest first, filtered (in SQL, within the caller's region) by period, region, SKU, source
    and status, with how each was handled; export links for the same filters."""
    filters, typed, errors = _alert_filters()
    items, total = [], 0
    if not errors:
        items = scan_queries.list_alert_rows(g.principal, limit=ALERT_PAGE_ROWS, **filters)
        total = scan_queries.count_alerts(g.principal, **filters)
    exports_qs = {fmt: _alert_export_query(filters, fmt) for fmt in ("xlsx", "csv")} if not errors else {}
    return render_template("hq/alerts.html", items=items, total=total, typed=typed, errors=errors,
                           skus=_skus(), statuses=ALERT_STATUSES, sources=ALERT_SOURCES,
                           status_names=alert_services.STATUS_NAMES, source_names=SOURCE_NAMES,
                           exports_qs=exports_qs, shown=ALERT_PAGE_ROWS), (422 if errors else 200)


def _alert_page(alert_id: int, *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                status: int = 200):
    detail = scan_queries.get_alert_detail(g.principal, alert_id)
    return render_template("hq/alert.html", a=detail, errors=errors or {}, form=form or {},
                           allowed=alert_services.allowed_next(detail["status"]),
                           status_names=alert_services.STATUS_NAMES, source_names=SOURCE_NAMES,
                           may_handle=g.principal.can("alert.handle")), status


@bp.get("/alerts/<int:alert_id>")
@login_required
def alert(alert_id: int):
    """One alert: where the unit was meant to be and where it turned up, its history, and the forms to handle it."""
    return _alert_page(alert_id)


def _form_errors(err: AppError, default_field: str) -> dict[str, str]:
    """A refusal's message beside the field it is about (the whole message beside `default_field` otherwise)."""
    fields_ = err.details.get("fields") if isinstance(err.details.get("fields"), dict) else {}
    out = {k: "；".join(_texts(v)) for k, v in fields_.items()}
    return out or {default_field: err.message}


def _handle(alert_id: int, action, *, default_field: str, form: dict[str, str], done: str):
    """Run one handling write; a refusal (bad input, an illegal step) shows the alert again with the message
    beside the field and nothing changed; out of scope or unknown is the console's error page."""
    try:
        action()
    except AppError as err:
        if err.status in (403, 404):
            raise
        return _alert_page(alert_id, errors=_form_errors(err, default_field), form=form, status=err.status)
    flash(done, "ok")
    return redirect(url_for("hq_pages.alert", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/status")
@login_required
def alert_status(alert_id: int):
    status, note = request.form.get("status", "").strip(), request.form.get("note", "")
    return _handle(alert_id, lambda: alert_services.change_status(g.principal, alert_id, status=status, note=note),
                   default_field="status", form={"status": status, "note": note},
                   done=f"已改为「{alert_services.STATUS_NAMES.get(status, status)}」")


@bp.post("/alerts/<int:alert_id>/notes")
@login_required
def alert_note(alert_id: int):
    text = request.form.get("text", "")
    return _handle(alert_id, lambda: alert_services.add_note(g.principal, alert_id, text=text),
                   default_field="text", form={"text": text}, done="备注已添加")


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


# --- territories ---------------------------------------------------------------------------------------------

_TERRITORY_KINDS = {"exclusive": "独家", "shared": "共享"}


def _territory_page(form: dict[str, str] | None = None, error: str | None = None, status: int = 200):
    """The assignments by region (region, holder, kind, industry, validity), the form to assign, end buttons."""
    from app.channel import queries as channel_queries
    from app.core import regions
    from app.core.pagination import paginate

    region = request.args.get("region", "").strip()
    if region and not regions.is_valid(region):
        raise ValidationFailed("找不到这个行政区划代码", code="unknown_region", details={"region_code": region})
    active = request.args.get("active") == "1"
    now = now_utc()
    rows = paginate(channel_queries.list_territories(g.principal, region=region or None,
                                                     active=True if active else None),
                    page=1, page_size=500, scalars=False)["items"]
    items = [{"id": tr.id, "region_code": tr.region_code, "region": regions.region_name(tr.region_code),
              "level": {"province": "省", "city": "市", "district": "区县"}[regions.get_region(tr.region_code).level]
              if regions.get_region(tr.region_code) else "",
              "holder": partner.name, "holder_kind": "区域代理" if partner.kind == "agent" else "分销商",
              "kind": tr.kind, "kind_name": _TERRITORY_KINDS.get(tr.kind, tr.kind), "industry": tr.industry or "不限",
              "valid_from": tr.valid_from, "valid_to": tr.valid_to, "ended_at": tr.ended_at,
              "end_reason": tr.end_reason or "",
              "valid_now": tr.valid_from <= now and (tr.valid_to is None or tr.valid_to > now),
              "open": tr.ended_at is None and (tr.valid_to is None or tr.valid_to > now)}
             for tr, partner in rows]
    partners = channel_queries.list_partners_of_kinds(g.principal, ("agent", "distributor"))
    return render_template("hq/territories.html", items=items, partners=partners,
                           form=form or {}, error=error, region=region, active=active,
                           can_write=g.principal.can("hq.write")), status


def _local_day_start(value: str, field: str):
    """A date from the form as the start of that day in China (empty: None)."""
    from datetime import date, datetime, time

    value = value.strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("日期格式要像 2026-12-01", code="bad_date", details={"fields": {field: ["日期有误"]}}) \
            from None
    if not 2000 <= day.year <= 2099:
        raise ValidationFailed("日期要在 2000-01-01 到 2099-12-31 之间", code="bad_date",
                               details={"fields": {field: ["日期超出范围"]}})
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ)


@bp.get("/territories")
@login_required
def territories():
    """Territory assignments by region, with the holder and kind; assign and end (HQ admins)."""
    return _territory_page()


@bp.post("/territories")
@login_required
def assign_territory():
    """Assign a region; a refusal (an exclusive one already held, an end before the start) is shown beside the
    form with the values kept."""
    from app.channel import territories as channel_territories

    form = {k: request.form.get(k, "").strip() for k in ("partner_id", "region_code", "district_code", "industry",
                                                         "kind", "valid_from", "valid_to")}
    if form["district_code"]:  # a district typed in is the region assigned
        form["region_code"] = form["district_code"]
    try:
        if not form["partner_id"].isdigit() or not 1 <= int(form["partner_id"]) < 2 ** 63:
            raise ValidationFailed("请选择伙伴", code="partner_required")
        territory = channel_territories.assign_territory(
            g.principal, partner_id=int(form["partner_id"]), region_code=form["region_code"],
            industry=form["industry"][:32] or None, kind=form["kind"],
            valid_from=_local_day_start(form["valid_from"], "valid_from"),
            valid_to=_local_day_start(form["valid_to"], "valid_to"))
    except AppError as err:
        return _territory_page(form=form, error=err.message, status=err.status)
    flash(f"已分配：{region_name(territory.region_code)}（{_TERRITORY_KINDS[territory.kind]}）", "ok")
    return redirect(url_for("hq_pages.territories"))


@bp.post("/territories/<int:territory_id>/end")
@login_required
def end_territory(territory_id: int):
    from app.channel import territories as channel_territories

    reason = request.form.get("reason", "").strip()[:200] or None
    if _write(lambda: channel_territories.end_territory(g.principal, territory_id, reason=reason)):
        flash("区域分配已结束，之后的订单不再按它分配；已发生的记录保持原样", "ok")
    return redirect(url_for("hq_pages.territories"))
# --- targets ---------------------------------------------------------------------------------------------

def _targets_page(form: dict[str, str] | None = None, error: str | None = None, status: int = 200):
    """The month's targets beside their actuals, variance and attainment; the form to set one (HQ admins)."""
    from app.analytics import targets
    from app.channel import queries as channel_queries

    period = request.args.get("period", "").strip() or (form or {}).get("period") or \
        now_utc().astimezone(BUSINESS_TZ).strftime("%Y-%m")
    rows = targets.list_targets(g.principal, period, action="hq.read")
    partners = channel_queries.list_partners_of_kinds(g.principal, ("agent", "distributor"))
    return render_template("hq/targets.html", rows=rows, period=period, partners=partners,
                           metrics=targets.METRIC_NAMES, form=form or {}, error=error,
                           can_write=g.principal.can("hq.write")), status


@bp.get("/targets")
@login_required
@replica_reads()
def targets_report():
    """Targets and actuals of a month per partner and metric (variance, attainment); set a target."""
    return _targets_page()


@bp.post("/targets")
@login_required
def set_target():
    """Set a target; a refusal is shown beside the form with the values kept."""
    from app.analytics import targets

    form = {k: request.form.get(k, "").strip() for k in ("partner_id", "period", "metric", "value")}
    try:
        if not form["partner_id"].isdigit() or not 1 <= int(form["partner_id"]) < 2 ** 63:
            raise ValidationFailed("请选择伙伴", code="partner_required")
        if not form["value"].isdigit() or int(form["value"]) >= 2 ** 63:
            raise ValidationFailed("目标值要是不小于 0 的整数", code="invalid_target_value")
        row = targets.set_target(g.principal, partner_id=int(form["partner_id"]), period=form["period"],
                                 metric=form["metric"], value=int(form["value"]))
    except AppError as err:
        return _targets_page(form=form, error=err.message, status=err.status)
    flash(f"已设定：{form['period']} {targets.METRIC_NAMES[row.metric]} {row.value}（第 {row.version} 版）", "ok")
    return redirect(url_for("hq_pages.targets_report", period=row.period))


# --- registrations (客户报备) -------------------------------------------------------------------------------

_POLICY_FIELDS = (("protection_days", "保护天数"), ("max_extensions", "可延期次数"), ("extension_days", "每次延期天数"),
                  ("default_quota", "默认保护名额"), ("reminder_days", "到期前提醒天数"),
                  ("dormancy_days", "休眠天数（无订单无扫码）"))


def _page_items(stmt, size: int = 100) -> list:
    return paginate(stmt, page=1, page_size=size)["items"]


@bp.get("/registrations")
@login_required
def registrations_page():
    """Registrations for HQ: refused attempts (conflicts) first, then protections ending soonest, dormant stores
    HQ may reassign, and the latest that ended; the rules below."""
    p = g.principal
    conflicts = registrations.list_conflicts(p, limit=100)
    protected = registrations.describe(_page_items(registrations.list_registrations(
        p, status="protected", action="hq.read")))
    converted = registrations.describe(_page_items(registrations.list_registrations(
        p, status="converted", action="hq.read"), 200))
    dormant = [r for r in converted if r["dormant_since"]]
    ended = registrations.describe(_page_items(registrations.list_registrations(
        p, action="hq.read", newest_first=True), 50))
    ended = [r for r in ended if r["status"] != "protected"]
    partners = [x for x in _page_items(channel_queries.list_partners(p), 200) if x.kind in ("agent", "distributor")]
    policy = registrations.get_policy()
    quotas = ", ".join(f"{k}={v}" for k, v in sorted((policy.quota_by_level or {}).items()))
    return render_template("hq/registrations.html", conflicts=conflicts, protected=protected, dormant=dormant,
                           ended=ended, partners=partners, policy=policy, quotas=quotas,
                           policy_fields=_POLICY_FIELDS, status_names=STATUS_NAMES,
                           matched_names=KIND_NAMES)


@bp.post("/registrations/<int:registration_id>/reassign")
@login_required
def reassign_registration(registration_id: int):
    partner_id = request.form.get("partner_id", "").strip()
    reason = request.form.get("reason", "").strip()
    if not partner_id.isdigit() or not 1 <= int(partner_id) < 2**63:
        flash("请选择改派给哪个伙伴", "error")
    elif not reason or len(reason) > 200:
        flash("请写明改派原因（200 字以内）", "error")
    elif _write(lambda: registrations.reassign_registration(g.principal, registration_id,
                                                            partner_id=int(partner_id), reason=reason)):
        flash("已改派，新的保护已开始", "ok")
    return redirect(url_for("hq_pages.registrations_page"))


@bp.post("/registration-policy")
@login_required
def registration_policy():
    values: dict[str, Any] = {}
    for name, label in _POLICY_FIELDS:
        raw = request.form.get(name, "").strip()
        if not raw.isdigit() or len(raw) > 6:
            flash(f"{label}要是整数", "error")
            return redirect(url_for("hq_pages.registrations_page"))
        values[name] = int(raw)
    quotas: dict[str, int] = {}
    for part in request.form.get("quota_by_level", "").replace("，", ",").split(","):
        if not part.strip():
            continue
        level, _, count = part.partition("=")
        if not level.strip() or not count.strip().isdigit() or len(count.strip()) > 6:
            flash("分级名额请写成 级别=名额，用逗号分开，例如 gold=100, standard=50", "error")
            return redirect(url_for("hq_pages.registrations_page"))
        quotas[level.strip()] = int(count.strip())
    values["quota_by_level"] = quotas
    if _write(lambda: registrations.update_policy(g.principal, **values)):
        flash("报备规则已保存", "ok")
    return redirect(url_for("hq_pages.registrations_page"))


@bp.get("/consumer-orders")
@login_required
def consumer_order_list():
    """Consumer orders the caller may see, newest first (100 a page), by status."""
    status = request.args.get("status") or None
    if status not in (None, *consumer_orders.STATUS_NAMES):
        status = None
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) <= 100_000 else 1
    listing = consumer_queries.consumer_order_page(g.principal, page=page, page_size=100, status=status)
    return render_template("hq/consumer_orders.html", listing=listing, status=status,
                           statuses=consumer_orders.STATUS_NAMES)


@bp.get("/consumer-orders/<int:order_id>")
@login_required
def consumer_order(order_id: int):
    """One consumer order: its lines, where it is, its events, its split; HQ routes, ships or cancels it here."""
    from app.channel.queries import list_partners
    from app.core.pagination import paginate

    order = consumer_queries.consumer_order_detail(g.principal, order_id)
    partners = paginate(list_partners(g.principal), page=1, page_size=500)["items"]
    return render_template("hq/consumer_order.html", order=order, partners=partners,
                           warehouses=list_warehouses(), statuses=consumer_orders.STATUS_NAMES)


@bp.post("/consumer-orders/<int:order_id>/route")
@login_required
def consumer_order_route(order_id: int):
    partner = request.form.get("partner_id", "")
    if not partner.isdigit() or not 0 < int(partner) < 2**63:
        flash("请选择伙伴", "error")
    elif _write(lambda: consumer_orders.route_consumer_order(g.principal, order_id, partner_id=int(partner),
                                                             reason=request.form.get("reason", "")[:200])):
        flash("已改派", "ok")
    return redirect(url_for("hq_pages.consumer_order", order_id=order_id))


@bp.post("/consumer-orders/<int:order_id>/ship")
@login_required
def consumer_order_ship(order_id: int):
    warehouse = request.form.get("warehouse_id", "")
    warehouse_id = int(warehouse) if warehouse.isdigit() and 0 < int(warehouse) < 2**63 else None
    # Scanned case or unit codes, one a line (a handheld scanner ends each with Enter), for the coded goods.
    codes = [c.strip() for c in request.form.get("codes", "")[:64_000].split() if c.strip()]
    if _write(lambda: consumer_orders.ship_consumer_order(g.principal, order_id, warehouse_id=warehouse_id,
                                                          codes=codes)):
        flash("已发货，库存已出库", "ok")
    return redirect(url_for("hq_pages.consumer_order", order_id=order_id))


@bp.post("/consumer-orders/<int:order_id>/cancel")
@login_required
def consumer_order_cancel(order_id: int):
    if _write(lambda: consumer_orders.cancel_consumer_order(g.principal, order_id,
                                                            reason=request.form.get("reason", "")[:200])):
        flash("订单已取消", "ok")
    return redirect(url_for("hq_pages.consumer_order", order_id=order_id))


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
channel_pages.add_routes(bp, login_required)
referral_pages.add_routes(bp, login_required)
assessment_pages.add_routes(bp, login_required)


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
