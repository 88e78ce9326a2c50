"""Dashboard reads over the daily rollups: every figure HQ sees comes from here (pages, API and exports)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from app.analytics import rollups
from app.analytics.allocation import DEFAULT_ALPHA, DEFAULT_HISTORY_DAYS, cover_days, smoothed_rate
from app.analytics.models import DailyCitySales, DailyCityTotal, DailySales, DailySellIn
from app.catalog.models import Sku
from app.catalog.units import sum_by_unit
from app.channel.models import Partner, Store
from app.core.clock import today_business
from app.core.regions import region_name
from app.core.security import Principal
from app.errors import ValidationFailed
from app.extensions import db
from app.inventory.models import StockLevel

GROUPS = ("day", "sku", "province", "city", "distributor", "store")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def period(start: date | None, end: date | None, default_days: int = 28) -> Period:
    """The period asked for, defaulting to the last `default_days` complete business days (up to yesterday)."""
    end = end or today_business() - timedelta(days=1)
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        raise ValidationFailed("开始日期不能晚于结束日期", code="bad_period",
                               details={"from": str(start), "to": str(end)})
    if (end - start).days > 366 * 3:
        raise ValidationFailed("时间范围太长（最多三年）", code="period_too_long")
    return Period(start, end)


def _region_condition(table, code: str) -> sa.ColumnElement[bool]:
    code = code[:6]
    if code.endswith("0000"):
        return table.c.province_code == code
    if code.endswith("00"):
        return table.c.city_code == code
    return table.c.store_id.in_(sa.select(Store.id).where(Store.district_code == code))


HQ_SCOPED = ("hq_admin", "hq_analyst", "warehouse_operator")
STORE_SCOPED = ("store_owner", "store_clerk")
PARTNER_SCOPED = ("distributor_staff", "agent_staff")


def scope_condition(principal: Principal, table) -> sa.ColumnElement[bool]:
    """Rows of a rollup table the caller may read: all for HQ, their region for a region-bound analyst; a store
    user their store's, partner staff what sold while the store was served by a distributor of their subtree
    (the distributor each day's row keeps: a store moved to another distributor keeps its history where it was).
    Store and partner scopes need the per-store tables (`daily_sales`, `daily_sell_in`): see `sales_table`."""
    clauses = []
    for b in principal.bindings:
        if b.role in STORE_SCOPED and b.store_id is not None and "store_id" in table.c:
            clauses.append(table.c.store_id == b.store_id)
        elif b.role in PARTNER_SCOPED and b.partner_path and "distributor_id" in table.c:
            clauses.append(table.c.distributor_id.in_(
                sa.select(Partner.id).where(Partner.path.startswith(b.partner_path, autoescape=True))))
        elif b.role in HQ_SCOPED:
            if not b.region_code:
                return sa.true()
            clauses.append(_region_condition(table, b.region_code))
    return sa.or_(*clauses) if clauses else sa.false()


def _store_level_scope(principal: Principal) -> bool:
    """Whether the caller's scope is stores (a store user, partner staff), which only per-store rollups hold."""
    return any(b.role in STORE_SCOPED or b.role in PARTNER_SCOPED for b in principal.bindings)


def _is_district(code: str | None) -> bool:
    return bool(code) and not code[:6].endswith("00")


def sales_table(principal: Principal, group_by: str, region: str | None, sku_id: int | None = None):
    """The smallest rollup that can answer: city totals, city × SKU, else store × SKU."""
    if group_by in ("day", "sku", "province", "city") and not _is_district(region) and not any(
            _is_district(b.region_code) for b in principal.bindings) and not _store_level_scope(principal):
        if sku_id is None and group_by != "sku":
            return DailyCityTotal.__table__
        return DailyCitySales.__table__
    return DailySales.__table__


def _filters(principal: Principal, table, p: Period, sku_id: int | None, region: str | None) -> list:
    conds = [table.c.day >= p.start, table.c.day <= p.end, scope_condition(principal, table)]
    if sku_id is not None:
        conds.append(table.c.sku_id == sku_id)
    if region:
        conds.append(_region_condition(table, region))
    return conds


def _group_column(table, group_by: str):
    name = {"day": "day", "sku": "sku_id", "province": "province_code", "city": "city_code",
            "distributor": "distributor_id", "store": "store_id"}[group_by]
    return table.c[name]


def labels(group_by: str, keys: list[Any]) -> dict[Any, str]:
    """Names a person reads for group keys (SKU, store and distributor names; region names; ISO dates)."""
    if group_by == "day":
        return {k: k.isoformat() for k in keys}
    if group_by in ("province", "city"):
        return {k: region_name(k) for k in keys}
    model = {"sku": Sku, "distributor": Partner, "store": Store}[group_by]
    if not keys:
        return {}
    return dict(db.session.execute(sa.select(model.id, model.name).where(model.id.in_(keys))).all())


def _grouped(principal, table, p, group_by, sku_id, region, with_amount=True) -> dict[Any, tuple[int, int]]:
    col = _group_column(table, group_by)
    amount = sa.func.sum(table.c.amount_fen) if with_amount else sa.literal(0)
    stmt = (sa.select(col, sa.func.sum(table.c.units), amount)
            .where(*_filters(principal, table, p, sku_id, region)).group_by(col))
    return {k: (int(u or 0), int(a or 0)) for k, u, a in db.session.execute(stmt)}


def _grouped_by_unit(principal, p, group_by, sku_id, region) -> dict[Any, list[dict]]:
    """Units per group and sellable unit (a city sold 120 提 and 30 袋): from a rollup that keeps the SKU."""
    table = sales_table(principal, "sku" if group_by in ("day", "province", "city") else group_by, region, sku_id)
    col = _group_column(table, group_by)
    pairs: dict[Any, list[tuple[str, int]]] = defaultdict(list)
    for key, unit, units in db.session.execute(
            sa.select(col, Sku.unit, sa.func.sum(table.c.units)).join(Sku, Sku.id == table.c.sku_id)
            .where(*_filters(principal, table, p, sku_id, region)).group_by(col, Sku.unit)):
        pairs[key].append((unit, int(units or 0)))
    return {key: sum_by_unit(rows) for key, rows in pairs.items()}


def _change(now: int, before: int) -> float | None:
    return None if before == 0 else round((now - before) * 100.0 / before, 1)


def _one_unit(*groups: list[dict]) -> bool:
    """Whether these per-unit totals are all in one sellable unit (or none): only then may units be compared."""
    return len({g["unit"] for gs in groups for g in gs}) <= 1


def _row_change(u: int, pu: int, a: int, pa: int, units: list[dict], previous: list[dict]) -> float | None:
    """A row's change on the previous period: in units when they are of one kind, else in fen."""
    return _change(u, pu) if _one_unit(units, previous) else _change(a, pa)


@rollups.folded
def sell_through(principal: Principal, *, p: Period, group_by: str = "day", sku_id: int | None = None,
                 region: str | None = None) -> list[dict[str, Any]]:
    """Units and fen sold per group in the period, with the previous period of the same length beside it.

    `units` counts every sellable unit alike (the ranking is read from it); each row's quantity to show is
    `units_by_unit` (`[{"unit": "提", "quantity": 120}, …]`), as a 提 and a 袋 do not add up, and its change is
    in units only where the row's units are of one kind, else in fen (`_row_change`).
    """
    if group_by not in GROUPS:
        raise ValidationFailed("分组方式不对", code="bad_group_by", details={"group_by": group_by})
    t = sales_table(principal, group_by, region, sku_id)
    now = _grouped(principal, t, p, group_by, sku_id, region)
    now_units = _grouped_by_unit(principal, p, group_by, sku_id, region)
    rows: list[dict[str, Any]] = []
    if group_by == "day":
        # A day-by-day series: every day of the period, zeros included; "previous" is the same weekday offset.
        prev_p = p.previous()
        before = _grouped(principal, t, prev_p, "day", sku_id, region)
        before_units = _grouped_by_unit(principal, prev_p, "day", sku_id, region)
        for i in range(p.days):
            d = p.start + timedelta(days=i)
            u, a = now.get(d, (0, 0))
            pd = prev_p.start + timedelta(days=i)
            pu, pa = before.get(pd, (0, 0))
            nu, bu = now_units.get(d, []), before_units.get(pd, [])
            rows.append({"key": d.isoformat(), "label": d.isoformat(), "units": u, "amount_fen": a,
                         "previous_units": pu, "previous_amount_fen": pa,
                         "change_pct": _row_change(u, pu, a, pa, nu, bu),
                         "units_by_unit": nu, "previous_units_by_unit": bu})
        return rows
    before = _grouped(principal, t, p.previous(), group_by, sku_id, region)
    before_units = _grouped_by_unit(principal, p.previous(), group_by, sku_id, region)
    names = labels(group_by, list(set(now) | set(before)))
    for k in set(now) | set(before):
        u, a = now.get(k, (0, 0))
        pu, pa = before.get(k, (0, 0))
        nu, bu = now_units.get(k, []), before_units.get(k, [])
        rows.append({"key": str(k), "label": names.get(k, str(k)), "units": u, "amount_fen": a,
                     "previous_units": pu, "previous_amount_fen": pa, "change_pct": _row_change(u, pu, a, pa, nu, bu),
                     "units_by_unit": nu, "previous_units_by_unit": bu})
    rows.sort(key=lambda r: (-r["units"], -r["amount_fen"], r["label"]))
    return rows


@rollups.folded
def totals(principal: Principal, *, p: Period, sku_id: int | None = None, region: str | None = None) -> dict:
    """Units, fen and selling stores in the period and the previous one.

    `units` counts every sellable unit alike (the change on the previous period is read from it); the quantity
    to show is `units_by_unit`, a total per unit (`[{"unit": "提", "quantity": 120}, …]`), since a 提 of milk
    and a 袋 of biscuits do not add up.
    """
    t = sales_table(principal, "city", region, sku_id)
    st = DailySales.__table__

    def one(pp: Period) -> tuple[int, int, int]:
        row = db.session.execute(sa.select(sa.func.sum(t.c.units), sa.func.sum(t.c.amount_fen))
                                 .where(*_filters(principal, t, pp, sku_id, region))).first()
        stores = db.session.scalar(sa.select(sa.func.count(sa.distinct(st.c.store_id)))
                                   .where(*_filters(principal, st, pp, sku_id, region), st.c.units > 0))
        return int(row[0] or 0), int(row[1] or 0), int(stores or 0)

    by_sku = sales_table(principal, "sku", region, sku_id)

    def per_unit(pp: Period) -> list[dict]:
        """The period's units added up per sellable unit (提, 袋): different units are never added together."""
        return sum_by_unit(db.session.execute(
            sa.select(Sku.unit, sa.func.sum(by_sku.c.units)).join(Sku, Sku.id == by_sku.c.sku_id)
            .where(*_filters(principal, by_sku, pp, sku_id, region)).group_by(Sku.unit)).all())

    u, a, s = one(p)
    pu, pa, ps = one(p.previous())
    now_units, before_units = per_unit(p), per_unit(p.previous())
    return {"units": u, "amount_fen": a, "stores": s, "previous_units": pu, "previous_amount_fen": pa,
            "previous_stores": ps,
            # A change in units only where they are of one kind; a 提 and a 袋 are compared in fen.
            "units_change_pct": _change(u, pu) if _one_unit(now_units, before_units) else None,
            "amount_change_pct": _change(a, pa), "units_by_unit": now_units, "previous_units_by_unit": before_units}


@rollups.folded
def overview(principal: Principal, *, p: Period, sku_id: int | None = None, region: str | None = None) -> dict:
    """Key figures, the daily trend and the top SKUs, provinces and cities of the period."""
    kw = {"p": p, "sku_id": sku_id, "region": region}
    return {
        "from": p.start.isoformat(), "to": p.end.isoformat(),
        "totals": totals(principal, **kw),
        "trend": sell_through(principal, group_by="day", **kw),
        "top_skus": sell_through(principal, group_by="sku", **kw)[:10],
        "top_provinces": sell_through(principal, group_by="province", **kw)[:10],
        "top_cities": sell_through(principal, group_by="city", **kw)[:10],
    }


def daily_series(*, start: date, end: date, by: str = "city", sku_ids: list[int] | None = None,
                 store_ids: list[int] | None = None) -> dict[tuple[Any, int], list[int]]:
    """Daily units per (city or store, SKU), oldest first, zeros filled: the input of the smoothed rates."""
    t = DailyCitySales.__table__ if by == "city" and store_ids is None else DailySales.__table__
    col = t.c.city_code if by == "city" else t.c.store_id
    stmt = (sa.select(col, t.c.sku_id, t.c.day, sa.func.sum(t.c.units))
            .where(t.c.day >= start, t.c.day <= end).group_by(col, t.c.sku_id, t.c.day))
    if sku_ids is not None:
        stmt = stmt.where(t.c.sku_id.in_(sku_ids))
    if store_ids is not None:
        stmt = stmt.where(t.c.store_id.in_(store_ids))
    n = (end - start).days + 1
    out: dict[tuple[Any, int], list[int]] = defaultdict(lambda: [0] * n)
    for key, sku, day, units in db.session.execute(stmt):
        out[(key, sku)][(day - start).days] = int(units or 0)
    return dict(out)


def smoothed_rates(*, as_of: date | None = None, by: str = "city", history_days: int = DEFAULT_HISTORY_DAYS,
                   alpha: float = DEFAULT_ALPHA, **kw) -> dict[tuple[Any, int], float]:
    """Exponentially smoothed units/day per (city or store, SKU) over the window ending `as_of`.

    The window ends yesterday by default: today is not over, and a half day would drag the rate down.
    """
    end = as_of or today_business() - timedelta(days=1)
    start = end - timedelta(days=history_days - 1)
    return {k: smoothed_rate(v, alpha) for k, v in daily_series(start=start, end=end, by=by, **kw).items()}


@rollups.folded
def list_store_cover(principal: Principal, *, sku_id: int | None = None, region: str | None = None) -> list[dict]:
    """On hand per store and SKU with the smoothed daily rate and the days of cover it gives."""
    from app.channel.queries import visible_stores_condition

    stmt = (sa.select(Store.id, Store.name, Store.city_code, Partner.name, Sku.id, Sku.name, StockLevel.on_hand,
                      Sku.unit)
            .join(Partner, Partner.id == Store.distributor_id)
            .join(StockLevel, StockLevel.location_id == Store.location_id)
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(visible_stores_condition(principal, "hq.read")).order_by(Store.id, Sku.id))
    if sku_id is not None:
        stmt = stmt.where(Sku.id == sku_id)
    if region:
        code = region[:6]
        stmt = stmt.where(Store.province_code == code if code.endswith("0000") else
                          Store.city_code == code if code.endswith("00") else Store.district_code == code)
    rows = db.session.execute(stmt).all()
    rates = smoothed_rates(by="store", store_ids=list({r[0] for r in rows}) or [0])
    out = []
    for store_id, store, city, dist, sid, sku, on_hand, unit in rows:
        rate = rates.get((store_id, sid), 0.0)
        cover = cover_days(on_hand, rate)
        out.append({"store_id": store_id, "store_name": store, "city_code": city, "city_name": region_name(city),
                    "distributor_name": dist, "sku_id": sid, "sku_name": sku, "on_hand": on_hand, "unit": unit,
                    "daily_rate": round(rate, 2), "days_of_cover": None if cover is None else round(cover, 1)})
    return out


@rollups.folded
def sell_in_vs_through(principal: Principal, *, p: Period, group_by: str = "sku", sku_id: int | None = None,
                       region: str | None = None) -> list[dict]:
    """Units shipped to stores beside units sold by them, per group."""
    if group_by not in GROUPS:
        raise ValidationFailed("分组方式不对", code="bad_group_by", details={"group_by": group_by})
    sold = _grouped(principal, sales_table(principal, group_by, region, sku_id), p, group_by, sku_id, region)
    shipped = _grouped(principal, DailySellIn.__table__, p, group_by, sku_id, region, with_amount=False)
    sold_units = _grouped_by_unit(principal, p, group_by, sku_id, region)
    si = DailySellIn.__table__
    col = _group_column(si, group_by)
    pairs: dict[Any, list[tuple[str, int]]] = defaultdict(list)
    for key, unit, units in db.session.execute(
            sa.select(col, Sku.unit, sa.func.sum(si.c.units)).join(Sku, Sku.id == si.c.sku_id)
            .where(*_filters(principal, si, p, sku_id, region)).group_by(col, Sku.unit)):
        pairs[key].append((unit, int(units or 0)))
    shipped_units = {key: sum_by_unit(rows) for key, rows in pairs.items()}
    keys = set(sold) | set(shipped)
    names = labels(group_by, list(keys))
    rows = []
    for k in keys:
        s_in, s_out = shipped.get(k, (0, 0))[0], sold.get(k, (0, 0))[0]
        in_by, out_by = shipped_units.get(k, []), sold_units.get(k, [])
        sold_of = {g["unit"]: g["quantity"] for g in out_by}
        # Per sellable unit: shipped in, sold through and the rate (a 提's rate and a 袋's are not added up).
        by_unit = [{"unit": g["unit"], "sell_in": g["quantity"], "sell_through": sold_of.get(g["unit"], 0),
                    "rate_pct": None if not g["quantity"] else round(sold_of.get(g["unit"], 0) * 100.0
                                                                     / g["quantity"], 1)} for g in in_by]
        by_unit += [{"unit": g["unit"], "sell_in": 0, "sell_through": g["quantity"], "rate_pct": None}
                    for g in out_by if g["unit"] not in {b["unit"] for b in in_by}]
        rows.append({"key": str(k), "label": names.get(k, str(k)), "sell_in_units": s_in, "sell_through_units": s_out,
                     "sell_in_by_unit": in_by, "sell_through_by_unit": out_by, "by_unit": by_unit,
                     # One rate only where the group's units are of one kind; else see `by_unit`.
                     "sell_through_rate_pct": None if s_in == 0 or not _one_unit(in_by, out_by)
                     else round(s_out * 100.0 / s_in, 1)})
    rows.sort(key=lambda r: (r["key"] if group_by == "day" else "", -r["sell_in_units"] - r["sell_through_units"]))
    return rows


@rollups.folded
def slow_stores(principal: Principal, *, p: Period, region: str | None = None, limit: int = 50) -> list[dict]:
    """Stores whose shelf stock sits longest at the period's selling pace (most days of cover first).

    Each store's stock and sales are per sellable unit (`on_hand_by_unit`, `units_by_unit`: a 提 and a 袋 are not
    added up; `on_hand` and `units` count every unit alike, for sorting only); its `days_of_cover` is that of its
    slowest SKU on the shelf (None, endless, when one of them sold nothing in the period)."""
    from app.channel.queries import visible_stores_condition

    t = DailySales.__table__
    # Per store and SKU: what was sold in the period and what is on the shelf. Nothing adds a 提 to a 袋: the
    # quantities are per unit, and a store's days of cover is its slowest SKU's (the stock that sits longest).
    sold = {(store, sku): int(n or 0) for store, sku, n in db.session.execute(
        sa.select(t.c.store_id, t.c.sku_id, sa.func.sum(t.c.units)).where(*_filters(principal, t, p, None, region))
        .group_by(t.c.store_id, t.c.sku_id))}
    last_sale = dict(db.session.execute(
        sa.select(t.c.store_id, sa.func.max(t.c.day)).where(t.c.units > 0, scope_condition(principal, t))
        .group_by(t.c.store_id)).all())
    stmt = (sa.select(Store.id, Store.name, Store.city_code, Partner.name, Sku.id, Sku.unit, StockLevel.on_hand)
            .join(Partner, Partner.id == Store.distributor_id)
            .join(StockLevel, StockLevel.location_id == Store.location_id)
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(visible_stores_condition(principal, "hq.read"), Store.is_active.is_(True),
                   StockLevel.on_hand > 0)
            .order_by(Store.id, Sku.id))
    if region:
        code = region[:6]
        stmt = stmt.where(Store.province_code == code if code.endswith("0000") else
                          Store.city_code == code if code.endswith("00") else Store.district_code == code)
    stores: dict[int, dict] = {}
    for sid, name, city, dist, sku, unit, on_hand in db.session.execute(stmt):
        r = stores.setdefault(sid, {"store_id": sid, "store_name": name, "city_code": city,
                                    "city_name": region_name(city), "distributor_name": dist,
                                    "_stock": [], "_covers": []})
        units = sold.get((sid, sku), 0)
        r["_stock"].append((unit, int(on_hand)))
        r["_covers"].append(None if units == 0 else int(on_hand) * p.days / units)
    # A store's sales are all it sold in the period, SKUs it no longer holds included.
    units_of = dict(db.session.execute(sa.select(Sku.id, Sku.unit)).all())
    sold_by_store: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for (store, sku), n in sold.items():
        sold_by_store[store].append((units_of.get(sku, ""), n))
    rows = []
    for sid, r in stores.items():
        stock_by, sold_by = sum_by_unit(r.pop("_stock")), sum_by_unit(sold_by_store.get(sid, []))
        covers = r.pop("_covers")
        last = last_sale.get(sid)
        rows.append({**r, "on_hand": sum(g["quantity"] for g in stock_by),
                     "units": sum(g["quantity"] for g in sold_by),
                     "on_hand_by_unit": stock_by, "units_by_unit": sold_by,
                     "units_per_day_by_unit": [{"unit": g["unit"], "quantity": round(g["quantity"] / p.days, 2)}
                                               for g in sold_by],
                     "units_per_day": round(sum(g["quantity"] for g in sold_by) / p.days, 2),
                     "days_of_cover": None if any(c is None for c in covers) else round(max(covers), 1),
                     "last_sale_day": last.isoformat() if last else None})
    # Slow-moving = stock that sits: most days of cover first (nothing sold at all counts as infinite).
    rows.sort(key=lambda r: (r["days_of_cover"] is not None, -(r["days_of_cover"] or 0), r["units_per_day"]))
    return rows[:limit]


@rollups.folded
def distributor_ranking(principal: Principal, *, p: Period, sku_id: int | None = None,
                        region: str | None = None) -> list[dict]:
    """Distributors by units sold through their stores, with store counts and the change on the previous period."""
    rows = sell_through(principal, p=p, group_by="distributor", sku_id=sku_id, region=region)
    t = DailySales.__table__
    stores = dict(db.session.execute(
        sa.select(t.c.distributor_id, sa.func.count(sa.distinct(t.c.store_id)))
        .where(*_filters(principal, t, p, sku_id, region), t.c.units > 0).group_by(t.c.distributor_id)).all())
    for rank, r in enumerate(rows, start=1):
        r["rank"] = rank
        r["selling_stores"] = int(stores.get(int(r["key"])) or 0)
    return rows


def list_sku_names() -> list[tuple[int, str]]:
    """Every SKU's id and name in id order (the console's SKU filter and labels)."""
    return [(sku_id, name) for sku_id, name in db.session.execute(sa.select(Sku.id, Sku.name).order_by(Sku.id))]


@rollups.folded
def sales_by_partner(principal: Principal, *, p: Period, partners: list[tuple[int, str]]) -> dict[int, dict]:
    """Units (per sellable unit) and fen sold in the period by the stores each partner serves: a distributor's
    own, an agent's or HQ's the sum of the distributors under it (`partners`: (id, path) pairs; the caller's
    scope applies)."""
    table = DailySales.__table__
    conds = _filters(principal, table, p, None, None)
    amounts = dict(db.session.execute(
        sa.select(table.c.distributor_id, sa.func.sum(table.c.amount_fen)).where(*conds)
        .group_by(table.c.distributor_id)).all())
    units: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for distributor_id, unit, n in db.session.execute(
            sa.select(table.c.distributor_id, Sku.unit, sa.func.sum(table.c.units))
            .join(Sku, Sku.id == table.c.sku_id).where(*conds).group_by(table.c.distributor_id, Sku.unit)):
        units[distributor_id].append((unit, int(n or 0)))
    paths = dict(db.session.execute(
        sa.select(Partner.id, Partner.path).where(Partner.id.in_(list(amounts) or [0]))).all())
    out = {}
    for pid, path in partners:
        under = [d for d, dpath in paths.items() if dpath.startswith(path)]
        out[pid] = {"amount_fen": sum(int(amounts[d] or 0) for d in under),
                    "units_by_unit": sum_by_unit(pair for d in under for pair in units.get(d, []))}
    return out


@rollups.folded
def store_sales_by_sku(principal: Principal, store_id: int, *, windows: tuple[int, ...] = (30, 90)) -> list[dict]:
    """A store's sell-through per SKU over the last `windows` complete business days (up to yesterday): units
    and fen of each window, the SKU's unit beside them; a SKU sold in any window has a row, biggest first."""
    from app.core.security import authorize_store

    authorize_store(principal, "store.read", store_id)
    end = today_business() - timedelta(days=1)
    start = end - timedelta(days=max(windows) - 1)
    t = DailySales.__table__
    cols = []
    for w in windows:
        since = end - timedelta(days=w - 1)
        cols += [sa.func.sum(sa.case((t.c.day >= since, t.c.units), else_=0)),
                 sa.func.sum(sa.case((t.c.day >= since, t.c.amount_fen), else_=0))]
    rows = db.session.execute(
        sa.select(Sku.id, Sku.code, Sku.name, Sku.unit, *cols).join(Sku, Sku.id == t.c.sku_id)
        .where(t.c.store_id == store_id, t.c.day >= start, t.c.day <= end)
        .group_by(Sku.id, Sku.code, Sku.name, Sku.unit)).all()
    out = []
    for r in rows:
        item = {"sku_id": r[0], "sku_code": r[1], "name": r[2], "unit": r[3]}
        for i, w in enumerate(windows):
            item[f"units_{w}"] = int(r[4 + 2 * i] or 0)
            item[f"amount_{w}"] = int(r[5 + 2 * i] or 0)
        out.append(item)
    last = windows[-1]
    out.sort(key=lambda x: (-x[f"units_{last}"], x["sku_code"]))
    return out
