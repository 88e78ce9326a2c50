"""The console's channel pages: partners as a tree, the store finder, a store's page (stock, sales, orders, scans,
its people, its invites), and invites (create one for a store's owner or clerk, print its QR, revoke it).

Routes on the console's blueprint (`app.hq.pages.bp`), over the same domain functions as the HQ API
(`app.channel.queries`, `app.channel.flows`), which check the caller: the channel's readers (HQ admins, analysts)
see these pages, a warehouse operator is refused; only those who may invite (HQ admins) create or revoke.
A form with bad input comes back with the message beside its field and nothing changed.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, validate
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from app.accounts.roles import ROLE_NAMES, STORE_CLERK, STORE_OWNER
from app.analytics import queries as analytics_queries
from app.channel import flows as channel_flows
from app.channel import queries as channel_queries
from app.core.clock import BUSINESS_TZ, now_utc
from app.core.pagination import paginate
from app.core.regions import is_valid as is_valid_region
from app.core.schemas import Id, Int
from app.core.security import require
from app.errors import AppError, ValidationFailed
from app.orders import queries as order_queries
from app.orders import states as order_states
from app.scans import queries as scan_queries

STORE_PAGE_SIZE = 20
STOCK_PAGE_SIZE = 10
SCAN_PAGE_SIZE = 20
INVITE_PAGE_SIZE = 20
KIND_NAMES = {"hq": "品牌总部", "agent": "区域代理", "distributor": "分销商"}
INVITE_STATUS_NAMES = {"open": "待使用", "redeemed": "已使用", "revoked": "已撤销", "expired": "已过期"}
INVITE_ROLES = {STORE_OWNER: ROLE_NAMES[STORE_OWNER], STORE_CLERK: ROLE_NAMES[STORE_CLERK]}
SCAN_ACTIONS = {"receive": "收货", "sell": "售出", "return": "退货", "undo": "撤销"}
TTL_DAYS = (1, 3, 7, 14, 30)
LEVEL_NAMES = {"standard": "标准", "silver": "银牌", "gold": "金牌", "platinum": "白金", "key": "重点"}
# How the stores' industry codes read (a code not listed reads as typed).
INDUSTRY_NAMES = {"convenience": "便利店", "supermarket": "超市", "restaurant": "餐饮", "catering": "餐饮",
                  "school": "学校", "pharmacy": "药店", "hotel": "酒店", "office": "办公"}


def _page_arg(name: str) -> int:
    raw = request.args.get(name, "1").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


# --- partners -------------------------------------------------------------------------------------------------

def _this_month() -> analytics_queries.Period:
    today = now_utc().astimezone(BUSINESS_TZ).date()
    return analytics_queries.Period(today.replace(day=1), today)


def partners():
    """The channel as a tree: HQ, its agents, their distributors; each with its level, regions, territories,
    stores and this month's sell-through."""
    rows = channel_queries.partner_tree(g.principal)
    month = _this_month()
    pairs = [(r["id"], r["path"]) for r in rows]
    sales = analytics_queries.sales_by_partner(g.principal, p=month, partners=pairs)
    last30 = analytics_queries.period(None, None, default_days=30)
    recent = analytics_queries.sales_by_partner(g.principal, p=last30, partners=pairs)
    return render_template("hq/partners.html", rows=rows, sales=sales, month=month, recent=recent, last30=last30,
                           kind_names=KIND_NAMES,
                           level_names=LEVEL_NAMES)


def partner(partner_id: int):
    """One partner: its figures, territories, staff, the stores it serves (paged) and links to its reports."""
    p = channel_queries.get_partner_for(g.principal, partner_id)
    staff = channel_queries.partner_staff(g.principal, partner_id)
    territories = paginate(channel_queries.list_territories(g.principal, partner_id=partner_id),
                           page=1, page_size=200, scalars=False)["items"]
    page = _page_arg("page")
    stores = paginate(channel_queries.search_stores(g.principal, under_partner_id=partner_id),
                      page=page, page_size=STORE_PAGE_SIZE, scalars=False)
    month = _this_month()
    sales = analytics_queries.sales_by_partner(g.principal, p=month, partners=[(p.id, p.path)])[p.id]
    children = [r for r in channel_queries.partner_tree(g.principal) if r["parent_id"] == p.id]
    now = now_utc()
    return render_template("hq/partner.html", p=p, staff=staff, territories=territories, stores=stores,
                           pages=_pages(stores["total"], STORE_PAGE_SIZE), sales=sales, month=month,
                           children=children, kind_names=KIND_NAMES, level_names=LEVEL_NAMES, now=now,
                           industry_names=INDUSTRY_NAMES,
                           parent=channel_queries.get_partner(p.parent_id) if p.parent_id else None)


# --- stores -----------------------------------------------------------------------------------------------------

class _StoreFilters(Schema):
    q = fields.String(load_default=None, validate=validate.Length(max=50, error="搜索词最多 50 个字"))
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$", error="地区代码是 6 位数字"))
    distributor_id = Id(load_default=None)
    industry = fields.String(load_default=None, validate=validate.Length(max=32))
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))


_STORE_FILTERS = _StoreFilters()
_STORE_FILTER_KEYS = frozenset(_STORE_FILTERS.fields)


def stores():
    """Stores found by name, code or phone, filtered by region, distributor and industry; by id, paged."""
    asked = MultiDict([(k, v.strip()) for k, v in request.args.items(multi=True)
                       if k in _STORE_FILTER_KEYS and v.strip()])
    try:
        f = _STORE_FILTERS.load(MultiDictProxy(asked, _STORE_FILTERS))
    except ValidationError as err:
        raise ValidationFailed("筛选条件有误", code="bad_filters", details={"fields": err.messages}) from None
    if "\x00" in (f["q"] or ""):
        raise ValidationFailed("搜索词里有不能用的字符", code="bad_filters",
                               details={"fields": {"q": ["有不能用的字符"]}})
    if f["region"] and not is_valid_region(f["region"]):
        raise ValidationFailed("没有这个地区", code="unknown_region", details={"fields": {"region": ["没有这个地区"]}})
    stmt = channel_queries.search_stores(g.principal, q=f["q"], region=f["region"],
                                         distributor_id=f["distributor_id"], industry=f["industry"])
    result = paginate(stmt, page=f["page"], page_size=STORE_PAGE_SIZE, scalars=False)
    distributors = channel_queries.list_partners_of_kinds(g.principal, ("distributor",))
    keep = [(k, v) for k, v in asked.items(multi=True) if k != "page"]
    return render_template("hq/stores.html", result=result, asked=dict(asked), keep=keep,
                           pages=_pages(result["total"], STORE_PAGE_SIZE), distributors=distributors,
                           industries=channel_queries.store_industries(g.principal),
                           industry_names=INDUSTRY_NAMES)


def _store_page(store_id: int, *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                status: int = 200):
    s = channel_queries.get_store_for(g.principal, store_id, "channel.read")
    stock = channel_queries.store_stock_page(g.principal, store_id, page=_page_arg("stock_page"),
                                             page_size=STOCK_PAGE_SIZE)
    scans = scan_queries.list_store_scans(g.principal, store_id, page=_page_arg("scan_page"),
                                          page_size=SCAN_PAGE_SIZE)
    sales = analytics_queries.store_sales_by_sku(g.principal, store_id)
    orders = paginate(order_queries.list_orders(g.principal, store_id=store_id), page=1, page_size=10)
    invites = paginate(channel_queries.list_invites(g.principal, store_id=store_id), page=1, page_size=10,
                       scalars=False)
    may_invite = g.principal.can("invite.create")
    args = {k: v for k, v in request.args.items() if k in ("stock_page", "scan_page")}
    return render_template(
        "hq/store.html", s=s, distributor=channel_queries.get_partner(s.distributor_id), stock=stock,
        stock_pages=_pages(stock["total"], STOCK_PAGE_SIZE), scans=scans,
        scan_pages=_pages(scans["total"], SCAN_PAGE_SIZE), sales=sales, orders=orders,
        people=channel_queries.store_people(g.principal, store_id), invites=invites,
        invite_status=channel_queries.invite_status, invite_status_names=INVITE_STATUS_NAMES,
        invite_roles=INVITE_ROLES, role_names=ROLE_NAMES, ttl_days=TTL_DAYS, may_invite=may_invite,
        status_names=order_states.STATUS_NAMES, scan_actions=SCAN_ACTIONS, args=args,
        errors=errors or {}, form=form or {}, industry_names=INDUSTRY_NAMES), status


def store(store_id: int):
    """One store: its stock (paged), sell-through by SKU over 30 and 90 days, latest orders, scans (paged, latest
    first), the people bound to it and its invites; the form to invite its owner or a clerk."""
    return _store_page(store_id)


# --- invites ----------------------------------------------------------------------------------------------------

def create_store_invite(store_id: int):
    """Create an invite into the store for an owner or a clerk, then show its QR to print."""
    require("invite.create")
    form = {k: request.form.get(k, "").strip() for k in ("role", "ttl_days")}
    errors: dict[str, str] = {}
    if form["role"] not in INVITE_ROLES:
        errors["role"] = "请选择邀请的角色（店主或店员）"
    if not form["ttl_days"].isdigit() or int(form["ttl_days"]) not in TTL_DAYS:
        errors["ttl_days"] = "请选择有效期"
    if errors:
        channel_queries.get_store_for(g.principal, store_id, "channel.read")
        return _store_page(store_id, errors=errors, form=form, status=422)
    try:
        invite = channel_flows.create_invite(g.principal, role=form["role"], store_id=store_id,
                                             ttl_hours=int(form["ttl_days"]) * 24)
    except AppError as err:
        if err.status in (403, 404):
            raise
        return _store_page(store_id, errors={"role": err.message}, form=form, status=err.status)
    flash(f"已生成{INVITE_ROLES[invite.role]}邀请，请打印二维码交给对方扫码", "ok")
    return redirect(url_for("hq_pages.invite", invite_id=invite.id))


class _InviteFilters(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(tuple(INVITE_STATUS_NAMES), error="没有这个状态"))
    store_id = Id(load_default=None)
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))


_INVITE_FILTERS = _InviteFilters()


def invites():
    """Store invites, newest first, with their status; by status and store; paged."""
    asked = MultiDict([(k, v.strip()) for k, v in request.args.items(multi=True)
                       if k in _INVITE_FILTERS.fields and v.strip()])
    try:
        f = _INVITE_FILTERS.load(MultiDictProxy(asked, _INVITE_FILTERS))
    except ValidationError as err:
        raise ValidationFailed("筛选条件有误", code="bad_filters", details={"fields": err.messages}) from None
    result = paginate(channel_queries.list_invites(g.principal, store_id=f["store_id"], status=f["status"]),
                      page=f["page"], page_size=INVITE_PAGE_SIZE, scalars=False)
    keep = [(k, v) for k, v in asked.items(multi=True) if k != "page"]
    return render_template("hq/invites.html", result=result, asked=dict(asked), keep=keep,
                           pages=_pages(result["total"], INVITE_PAGE_SIZE), status_names=INVITE_STATUS_NAMES,
                           invite_status=channel_queries.invite_status, role_names=ROLE_NAMES,
                           may_invite=g.principal.can("invite.create"))


def invite(invite_id: int):
    """One invite, print-ready: the store, the role, until when, its status; its QR while it is open (for those
    who may hand it out); revoke."""
    item = channel_queries.get_invite_for(g.principal, invite_id)
    return render_template("hq/invite.html", item=item, status_names=INVITE_STATUS_NAMES, role_names=ROLE_NAMES)


def revoke_invite(invite_id: int):
    """Withdraw an invite nobody has used; a used one is refused with the reason."""
    require("invite.create")
    channel_queries.get_invite_for(g.principal, invite_id)
    try:
        channel_flows.revoke_invite(g.principal, invite_id)
    except AppError as err:
        if err.status in (403, 404):
            raise
        flash(err.message, "error")
    else:
        flash("邀请已撤销，二维码不能再使用", "ok")
    return redirect(url_for("hq_pages.invite", invite_id=invite_id))


def add_routes(bp: Blueprint, login_required) -> None:
    """Mount these pages on the console's blueprint."""
    bp.add_url_rule("/partners", "partners", login_required(partners), methods=["GET"])
    bp.add_url_rule("/partners/<int:partner_id>", "partner", login_required(partner), methods=["GET"])
    bp.add_url_rule("/stores", "stores", login_required(stores), methods=["GET"])
    bp.add_url_rule("/stores/<int:store_id>", "store", login_required(store), methods=["GET"])
    bp.add_url_rule("/stores/<int:store_id>/invites", "create_store_invite", login_required(create_store_invite),
                    methods=["POST"])
    bp.add_url_rule("/invites", "invites", login_required(invites), methods=["GET"])
    bp.add_url_rule("/invites/<int:invite_id>", "invite", login_required(invite), methods=["GET"])
    bp.add_url_rule("/invites/<int:invite_id>/revoke", "revoke_invite", login_required(revoke_invite),
                    methods=["POST"])

