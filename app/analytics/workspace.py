"""The partner's workspace: the stores a distributor's or an agent's staff work through, and one store's summary.

Scope is SQL (`visible_stores_condition`): a distributor's staff see the stores it serves, an agent's staff the
stores of every distributor in its subtree, HQ all (or its region); store users see no list (403), only their own
store's summary. Every figure comes from the same tables as HQ's: sell-through from the daily rollups
(`daily_sales`, business days in `BUSINESS_TZ`), stock from the stock levels, orders and scans from their tables.

A page of the list is a fixed number of queries whatever its size: the scope's store ids, the page (every figure
of every store computed in SQL, so sorting by them needs no second pass), the distributors' totals, and the
page's stock by unit.

The `visit` order (the default) puts first the stores a person should go to, by this rule:
1. stores with an open issue: a SKU sold out (none on hand of a SKU it sold in the last 28 days), a SKU running
   low (on hand covers fewer than 7 days at the pace of the last 28 days), or an order waiting on the store (a
   proxy order to confirm, an order to pay);
2. within each of those two groups, the longest without contact (the later of the last order and the last scan),
   in steps of business days: never heard from, 30 days or more, 14 or more, 7 or more, less than 7;
3. within a step, falling sell-through: the units of the last 28 days less the 28 days before, the biggest fall
   first;
4. then the oldest contact, then by name.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.analytics.models import DailySales
from app.analytics.queries import Period, sell_through
from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.channel.queries import visible_stores_condition
from app.codes.models import ScanEvent
from app.core.clock import business_day, business_day_start, today_business
from app.core.regions import region_name
from app.core.security import Principal, authorize_action, authorize_store
from app.core.types import UTCDateTime
from app.errors import ValidationFailed
from app.extensions import db
from app.inventory.models import StockLevel
from app.orders import states
from app.orders.models import Order

SORTS = ("visit", "name", "sales")
WORKSPACE_GROUPS = ("day", "sku", "store")
PACE_DAYS = 28  # the window the pace of sales is read over
LOW_COVER_DAYS = 7  # on hand for fewer days than this at that pace is "running low"
IDLE_DAYS = 14  # no order and no scan for this long is worth a visit by itself
CONTACT_STEPS = (30, 14, 7)  # days without contact the visit order groups stores by, longest first
RECENT = 10  # orders and scans in a store's summary

OPEN_STATUSES = (states.AWAITING_CONFIRMATION, states.AWAITING_PAYMENT, states.PAID, states.ALLOCATED,
                 states.SHIPPED)
WAITING_ON_STORE = (states.AWAITING_CONFIRMATION, states.AWAITING_PAYMENT)
NOT_AN_ORDER = (states.CANCELLED, states.REFUNDED)  # called off: not the store's last order
STORE_SCANS = ("receive", "sell", "return", "undo")


def _months(today: date) -> tuple[Period, Period]:
    """This month up to today and the whole of last month, in business days."""
    start = today.replace(day=1)
    last_end = start - timedelta(days=1)
    return Period(start, today), Period(last_end.replace(day=1), last_end)


def _pace_windows(today: date) -> tuple[Period, Period]:
    """The last PACE_DAYS business days up to today, and the PACE_DAYS before them."""
    recent = Period(today - timedelta(days=PACE_DAYS - 1), today)
    return recent, recent.previous()


def _scoped_store_ids(principal: Principal) -> sa.Select:
    return (sa.select(Store.id).join(Partner, Partner.id == Store.distributor_id)
            .where(visible_stores_condition(principal, "channel.read"), Store.is_active.is_(True)))


def _later(a, b):
    """The later of two instants, either of which may be missing (portable: no GREATEST on SQLite)."""
    return sa.case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)


def _figures(store_ids: list[int], today: date):
    """One row per store of `store_ids` with every figure the list shows and sorts by (a subquery).

    The ids are given as values, not as a subquery of the scope: the planner then knows how many stores each
    aggregate covers (a LIKE on the partner tree is estimated at one row, which made it loop per store)."""
    this_month, last_month = _months(today)
    recent, before = _pace_windows(today)
    ds = DailySales.__table__

    def units_in(p: Period, col=None):
        col = ds.c.units if col is None else col
        return sa.func.sum(sa.case((sa.and_(ds.c.day >= p.start, ds.c.day <= p.end), col), else_=0))

    sales = (sa.select(ds.c.store_id, units_in(this_month).label("units_this_month"),
                       units_in(this_month, ds.c.amount_fen).label("amount_this_month_fen"),
                       units_in(last_month).label("units_last_month"),
                       units_in(last_month, ds.c.amount_fen).label("amount_last_month_fen"),
                       units_in(recent).label("units_recent"), units_in(before).label("units_before"))
             .where(ds.c.day >= min(last_month.start, before.start), ds.c.day <= today,
                    ds.c.store_id.in_(store_ids))
             .group_by(ds.c.store_id).subquery("sales"))

    sold = (sa.select(ds.c.store_id, ds.c.sku_id, sa.func.sum(ds.c.units).label("units"))
            .where(ds.c.day >= recent.start, ds.c.day <= today, ds.c.store_id.in_(store_ids))
            .group_by(ds.c.store_id, ds.c.sku_id).subquery("sold"))
    sold_units = sa.func.coalesce(sold.c.units, 0)
    stock = (sa.select(Store.id.label("store_id"),
                       sa.func.sum(sa.case((sa.and_(StockLevel.on_hand <= 0, sold_units > 0), 1), else_=0))
                       .label("skus_out_of_stock"),
                       sa.func.sum(sa.case((sa.and_(StockLevel.on_hand > 0,
                                                    StockLevel.on_hand * PACE_DAYS < LOW_COVER_DAYS * sold_units),
                                            1), else_=0)).label("skus_low"),
                       sa.func.sum(sa.case((StockLevel.on_hand > 0, 1), else_=0)).label("skus_in_stock"))
             .join(StockLevel, StockLevel.location_id == Store.location_id)
             .outerjoin(sold, sa.and_(sold.c.store_id == Store.id, sold.c.sku_id == StockLevel.sku_id))
             .where(Store.id.in_(store_ids)).group_by(Store.id).subquery("stock"))

    orders = (sa.select(Order.store_id,
                        sa.type_coerce(sa.func.max(sa.case((Order.status.not_in(NOT_AN_ORDER), Order.created_at))),
                                       UTCDateTime()).label("last_order_at"),
                        sa.func.sum(sa.case((Order.status.in_(OPEN_STATUSES), 1), else_=0)).label("open_orders"),
                        sa.func.sum(sa.case((Order.status.in_(WAITING_ON_STORE), 1), else_=0))
                        .label("orders_waiting"))
              .where(Order.store_id.in_(store_ids)).group_by(Order.store_id).subquery("orders"))

    # The store's newest scan by id (the index on store_id, id answers it without reading the store's history).
    newest = aliased(ScanEvent)
    newest_id = (sa.select(sa.func.max(newest.id))
                 .where(newest.store_id == Store.id, newest.parent_event_id.is_(None),
                        newest.action.in_(STORE_SCANS)).correlate(Store).scalar_subquery())
    last_scan_at = (sa.select(ScanEvent.event_time).where(ScanEvent.id == newest_id)
                    .correlate(Store).scalar_subquery())

    zero = sa.literal(0)
    return (sa.select(
        Store.id.label("store_id"), Store.code, Store.name, Store.province_code, Store.city_code,
        Store.district_code, Store.distributor_id, Partner.name.label("distributor_name"),
        Partner.code.label("distributor_code"),
        sa.type_coerce(last_scan_at, UTCDateTime()).label("last_scan_at"), orders.c.last_order_at,
        sa.func.coalesce(orders.c.open_orders, zero).label("open_orders"),
        sa.func.coalesce(orders.c.orders_waiting, zero).label("orders_waiting"),
        sa.func.coalesce(stock.c.skus_out_of_stock, zero).label("skus_out_of_stock"),
        sa.func.coalesce(stock.c.skus_low, zero).label("skus_low"),
        sa.func.coalesce(stock.c.skus_in_stock, zero).label("skus_in_stock"),
        *(sa.func.coalesce(sales.c[name], zero).label(name) for name in (
            "units_this_month", "amount_this_month_fen", "units_last_month", "amount_last_month_fen",
            "units_recent", "units_before")))
        .join(Partner, Partner.id == Store.distributor_id)
        .outerjoin(sales, sales.c.store_id == Store.id)
        .outerjoin(stock, stock.c.store_id == Store.id)
        .outerjoin(orders, orders.c.store_id == Store.id)
        .where(Store.id.in_(store_ids)).subquery("figures"))


def _order_by(f, sort: str, today: date) -> list:
    if sort == "name":
        return [f.c.name, f.c.store_id]
    if sort == "sales":
        return [f.c.units_this_month.desc(), f.c.units_last_month.desc(), f.c.name, f.c.store_id]
    issues = f.c.skus_out_of_stock + f.c.skus_low + f.c.orders_waiting
    contact = _later(f.c.last_order_at, f.c.last_scan_at)
    # N or more business days since the contact: it fell on or before the day N days ago, i.e. before the next
    # day's start (compared as instants, so the database needs no time zone).
    step = sa.case((contact.is_(None), 0), *((contact < business_day_start(today - timedelta(days=n - 1)), i)
                                             for i, n in enumerate(CONTACT_STEPS, start=1)),
                   else_=len(CONTACT_STEPS) + 1)
    return [sa.case((issues > 0, 0), else_=1), step, f.c.units_recent - f.c.units_before,
            sa.case((contact.is_(None), 0), else_=1), contact, f.c.name, f.c.store_id]


def _days_since(at, today: date) -> int | None:
    return None if at is None else max(0, (today - business_day(at)).days)


def _attention(r, today: date) -> list[dict[str, Any]]:
    """Why the store is worth a visit, each with a short sentence a person reads."""
    out = []
    if r.skus_out_of_stock:
        out.append({"code": "out_of_stock", "count": r.skus_out_of_stock, "message": f"{r.skus_out_of_stock} 个品断货"})
    if r.skus_low:
        out.append({"code": "low_stock", "count": r.skus_low, "message": f"{r.skus_low} 个品快卖完"})
    if r.orders_waiting:
        out.append({"code": "orders_waiting", "count": r.orders_waiting,
                    "message": f"{r.orders_waiting} 单等门店确认或付款"})
    contact = max((a for a in (r.last_order_at, r.last_scan_at) if a is not None), default=None)
    idle = _days_since(contact, today)
    if idle is None:
        out.append({"code": "never_active", "count": 0, "message": "还没有订货或扫码"})
    elif idle >= IDLE_DAYS:
        out.append({"code": "idle", "count": idle, "message": f"{idle} 天没有订货也没有扫码"})
    if r.units_recent < r.units_before:
        out.append({"code": "falling_sales", "count": r.units_before - r.units_recent,
                    "message": f"近 {PACE_DAYS} 天比之前少卖 {r.units_before - r.units_recent} 件"})
    return out


def _item(r, today: date, on_hand: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": r.store_id, "code": r.code, "name": r.name,
        "province_code": r.province_code, "city_code": r.city_code, "district_code": r.district_code,
        "province_name": region_name(r.province_code), "city_name": region_name(r.city_code),
        "district_name": region_name(r.district_code) if r.district_code else None,
        "distributor": {"id": r.distributor_id, "code": r.distributor_code, "name": r.distributor_name},
        "last_scan_at": r.last_scan_at, "days_since_last_scan": _days_since(r.last_scan_at, today),
        "last_order_at": r.last_order_at, "days_since_last_order": _days_since(r.last_order_at, today),
        "open_orders": int(r.open_orders), "orders_waiting": int(r.orders_waiting),
        "on_hand": on_hand, "skus_in_stock": int(r.skus_in_stock), "skus_out_of_stock": int(r.skus_out_of_stock),
        "skus_low": int(r.skus_low),
        "units_this_month": int(r.units_this_month), "amount_this_month_fen": int(r.amount_this_month_fen),
        "units_last_month": int(r.units_last_month), "amount_last_month_fen": int(r.amount_last_month_fen),
        "units_last_28_days": int(r.units_recent), "units_28_days_before": int(r.units_before),
        "attention": _attention(r, today),
    }


def _on_hand_by_unit(store_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Units on hand per store and unit of sale (箱, 包, …): units of different kinds are never added together."""
    out: dict[int, list[dict[str, Any]]] = {sid: [] for sid in store_ids}
    if not store_ids:
        return out
    rows = db.session.execute(
        sa.select(Store.id, Sku.unit, sa.func.sum(StockLevel.on_hand), sa.func.count(StockLevel.id))
        .join(StockLevel, StockLevel.location_id == Store.location_id).join(Sku, Sku.id == StockLevel.sku_id)
        .where(Store.id.in_(store_ids), StockLevel.on_hand > 0)
        .group_by(Store.id, Sku.unit).order_by(Store.id, Sku.unit))
    for sid, unit, units, skus in rows:
        out[sid].append({"unit": unit, "units": int(units), "skus": int(skus)})
    return out


def list_workspace_stores(principal: Principal, *, sort: str = "visit", page: int = 1, page_size: int = 20,
                          distributor_id: int | None = None) -> dict[str, Any]:
    """The stores in the caller's scope with their figures, one page, in the order asked for (see the module),
    optionally those of one distributor; beside them every distributor of the scope with its stores, how many
    need a visit and its sales (an agent's staff work distributor by distributor)."""
    authorize_action(principal, "channel.read")
    if sort not in SORTS:
        raise ValidationFailed("排序方式不对", code="bad_sort", details={"sort": sort, "choices": list(SORTS)})
    today = today_business()
    scope = list(db.session.execute(_scoped_store_ids(principal).add_columns(Store.distributor_id)))
    listed = [sid for sid, dist in scope if distributor_id is None or dist == distributor_id]
    out: dict[str, Any] = {"items": [], "page": page, "page_size": page_size, "total": len(listed), "sort": sort,
                           "distributors": _distributor_groups([sid for sid, _dist in scope], today)}
    if listed:
        f = _figures(listed, today)
        rows = db.session.execute(sa.select(f).order_by(*_order_by(f, sort, today))
                                  .limit(page_size).offset((page - 1) * page_size)).all()
        on_hand = _on_hand_by_unit([r.store_id for r in rows])
        out["items"] = [_item(r, today, on_hand[r.store_id]) for r in rows]
    return out


def _distributor_groups(store_ids: list[int], today: date) -> list[dict[str, Any]]:
    """Per distributor of the scope: its stores, those needing a visit (an open issue, or IDLE_DAYS or more
    without an order or a scan, or never), and their units this and last month. One query."""
    if not store_ids:
        return []
    f = _figures(store_ids, today)
    contact = _later(f.c.last_order_at, f.c.last_scan_at)
    needs_visit = sa.or_(f.c.skus_out_of_stock + f.c.skus_low + f.c.orders_waiting > 0, contact.is_(None),
                         contact < business_day_start(today - timedelta(days=IDLE_DAYS - 1)))
    rows = db.session.execute(
        sa.select(f.c.distributor_id, f.c.distributor_code, f.c.distributor_name, sa.func.count(),
                  sa.func.sum(sa.case((needs_visit, 1), else_=0)), sa.func.sum(f.c.units_this_month),
                  sa.func.sum(f.c.units_last_month))
        .group_by(f.c.distributor_id, f.c.distributor_code, f.c.distributor_name))
    groups = [{"id": d, "code": code, "name": name, "stores": int(n), "stores_needing_visit": int(visit or 0),
               "units_this_month": int(this or 0), "units_last_month": int(last or 0)}
              for d, code, name, n, visit, this, last in rows]
    groups.sort(key=lambda g: (-g["stores_needing_visit"], g["code"]))
    return groups


def store_summary(principal: Principal, store_id: int) -> dict[str, Any]:
    """One store for the people who serve it (or its own people): its figures as the list shows them, stock and
    sales by SKU, its recent orders and scans. 404 for a store that does not exist, 403 outside the scope."""
    from app.scans.queries import list_store_scans

    authorize_store(principal, "store.read", store_id)
    today = today_business()
    f = _figures([store_id], today)
    row = db.session.execute(sa.select(f)).one()
    out = _item(row, today, _on_hand_by_unit([store_id])[store_id])
    out["skus"] = _skus(store_id, today)
    out["recent_orders"] = _recent_orders(store_id)
    out["recent_scans"] = list_store_scans(principal, store_id, page=1, page_size=RECENT)["items"]
    this_month, last_month = _months(today)
    out["periods"] = {"this_month": {"from": this_month.start.isoformat(), "to": this_month.end.isoformat()},
                      "last_month": {"from": last_month.start.isoformat(), "to": last_month.end.isoformat()}}
    return out


def _skus(store_id: int, today: date) -> list[dict[str, Any]]:
    """Every SKU the store holds, has held or sold in the last two months: stock, sales and days of cover."""
    this_month, last_month = _months(today)
    recent, _before = _pace_windows(today)
    ds = DailySales.__table__

    def units_in(p: Period, col=None):
        col = ds.c.units if col is None else col
        return sa.func.sum(sa.case((sa.and_(ds.c.day >= p.start, ds.c.day <= p.end), col), else_=0))

    sales = {r.sku_id: r for r in db.session.execute(
        sa.select(ds.c.sku_id, units_in(this_month).label("this_month"),
                  units_in(this_month, ds.c.amount_fen).label("this_month_fen"),
                  units_in(last_month).label("last_month"),
                  units_in(last_month, ds.c.amount_fen).label("last_month_fen"),
                  units_in(recent).label("recent"))
        .where(ds.c.store_id == store_id, ds.c.day >= min(last_month.start, recent.start), ds.c.day <= today)
        .group_by(ds.c.sku_id))}
    stock = {sku_id: (on_hand, reserved) for sku_id, on_hand, reserved in db.session.execute(
        sa.select(StockLevel.sku_id, StockLevel.on_hand, StockLevel.reserved)
        .join(Store, Store.location_id == StockLevel.location_id).where(Store.id == store_id))}
    ids = set(sales) | set(stock)
    names = {r.id: r for r in db.session.execute(
        sa.select(Sku.id, Sku.code, Sku.name, Sku.unit).where(Sku.id.in_(ids)))} if ids else {}
    out = []
    for sku_id in sorted(ids):
        s, (on_hand, reserved) = sales.get(sku_id), stock.get(sku_id, (0, 0))
        recent_units = int(s.recent) if s else 0
        per_day = recent_units / PACE_DAYS
        out.append({
            "sku_id": sku_id, "sku_code": names[sku_id].code, "name": names[sku_id].name,
            "unit": names[sku_id].unit, "on_hand": on_hand, "reserved": reserved,
            "units_this_month": int(s.this_month) if s else 0, "amount_this_month_fen": int(s.this_month_fen) if s
            else 0, "units_last_month": int(s.last_month) if s else 0,
            "amount_last_month_fen": int(s.last_month_fen) if s else 0,
            "units_last_28_days": recent_units,
            "days_of_cover": None if per_day == 0 else round(on_hand / per_day, 1),
            "out_of_stock": on_hand <= 0 and recent_units > 0,
            "low": on_hand > 0 and on_hand * PACE_DAYS < LOW_COVER_DAYS * recent_units,
        })
    return out


def _recent_orders(store_id: int) -> list[dict[str, Any]]:
    rows = db.session.execute(
        sa.select(Order.id, Order.number, Order.status, Order.is_proxy, Order.total_fen, Order.created_at)
        .where(Order.store_id == store_id).order_by(Order.id.desc()).limit(RECENT))
    return [{"id": r.id, "number": r.number, "status": r.status, "status_name": states.STATUS_NAMES[r.status],
             "is_proxy": r.is_proxy, "total_fen": r.total_fen, "created_at": r.created_at} for r in rows]


def workspace_sell_through(principal: Principal, *, p: Period, group_by: str = "day") -> list[dict[str, Any]]:
    """Sell-through within the caller's scope (a store user: their store; partner staff: what their stores sold
    while served by them), in the answer shape of HQ's sell-through, by day, SKU or store."""
    authorize_action(principal, "store.read")
    if group_by not in WORKSPACE_GROUPS:
        raise ValidationFailed("分组方式不对", code="bad_group_by", details={"group_by": group_by})
    return sell_through(principal, p=p, group_by=group_by)
