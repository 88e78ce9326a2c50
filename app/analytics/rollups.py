"""Rebuild the daily sell-through rollup from the scan events (the source of truth).

The receivers keep `daily_sales` current as each sell, return or undo commits. `rebuild` recomputes a range of
business days from the events: after a bug fix, a restore, or to prove the incremental path right (the test
suite checks that rebuild and incremental agree). Days outside the range are left untouched, so history loaded
as rollups (older than the oldest scan event) survives a rebuild of recent days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from app.analytics.models import DailyCitySales, DailyCityTotal, DailySales
from app.channel.models import Store
from app.core.clock import business_day, business_day_start
from app.extensions import db


def sell_events(from_day: date, to_day: date) -> Iterator[dict[str, Any]]:
    """The sell-side scan events (sells, returns, undos) of a range of business days, as `units_sold` kwargs."""
    from app.scans.models import ScanEvent  # the scans engineer's model; imported late so analytics loads alone

    start, end = business_day_start(from_day), business_day_start(to_day + timedelta(days=1))
    yield from _scan_event_rows(ScanEvent, start, end)


def _scan_event_rows(model, start, end) -> Iterator[dict[str, Any]]:
    """Sells count +quantity, returns −quantity, an undo the opposite of the event it corrects.

    An undo is dated like the scan it corrects (the sale it cancels happened that day), so its row is found
    through the corrected event's time. The amount is the store's tier price, as the scans area prices a sale.
    """
    from app.catalog.models import SkuPrice

    sign = {"sell": 1, "return": -1}
    orig = sa.orm.aliased(model)
    sells = (sa.select(model.store_id, model.sku_id, model.quantity, model.event_time, model.action, model.id)
             .where(model.action.in_(("sell", "return")), model.store_id.is_not(None),
                    model.event_time >= start, model.event_time < end))
    undos = (sa.select(model.store_id, model.sku_id, model.quantity, orig.event_time, orig.action, model.id)
             .join(orig, orig.id == model.corrects_event_id)
             .where(model.action == "undo", orig.action.in_(("sell", "return")), model.store_id.is_not(None),
                    orig.event_time >= start, orig.event_time < end))
    prices = {(store_id, sku_id): price for store_id, sku_id, price in db.session.execute(
        sa.select(Store.id, SkuPrice.sku_id, SkuPrice.price_fen)
        .join(SkuPrice, SkuPrice.price_tier_id == Store.price_tier_id))}
    for stmt, direction in ((sells, 1), (undos, -1)):
        for store_id, sku_id, qty, at, action, event_id in db.session.execute(stmt):
            units = direction * sign[action] * (qty or 1)
            yield {"store_id": store_id, "sku_id": sku_id, "quantity": units, "at": at,
                   "amount_fen": units * prices.get((store_id, sku_id), 0), "event_id": event_id}


def aggregate(events: Iterable[dict[str, Any]], from_day: date, to_day: date) -> dict[tuple[date, int, int], list]:
    """Sum events into (day, SKU, store) → [units, fen], keeping only days in the range."""
    cells: dict[tuple[date, int, int], list] = defaultdict(lambda: [0, 0])
    for e in events:
        day = business_day(e["at"])
        if from_day <= day <= to_day:
            cell = cells[(day, e["sku_id"], e["store_id"])]
            cell[0] += int(e["quantity"])
            cell[1] += int(e.get("amount_fen") or 0)
    return cells


def rebuild(from_day: date, to_day: date, events: Iterable[dict[str, Any]] | None = None) -> int:
    """Replace the rollup rows of [from_day, to_day] by sums recomputed from the events; returns rows written.

    The caller owns the transaction (the CLI wraps it in one, so readers never see a half-rebuilt range).
    """
    if events is None:
        events = sell_events(from_day, to_day)
    cells = aggregate(events, from_day, to_day)
    db.session.execute(sa.delete(DailySales).where(DailySales.day >= from_day, DailySales.day <= to_day))
    dims = {sid: (p, c, d) for sid, p, c, d in db.session.execute(
        sa.select(Store.id, Store.province_code, Store.city_code, Store.distributor_id))}
    rows = [{"day": day, "sku_id": sku, "store_id": store, "province_code": dims[store][0],
             "city_code": dims[store][1], "distributor_id": dims[store][2], "units": u, "amount_fen": a}
            for (day, sku, store), (u, a) in cells.items()]
    for i in range(0, len(rows), 5000):
        db.session.execute(sa.insert(DailySales.__table__), rows[i:i + 5000])
    refresh_city_rollup(from_day, to_day)
    return len(rows)


def refresh_city_rollup(from_day: date, to_day: date) -> None:
    """Recompute `daily_city_sales` and `daily_city_totals` for a range of days from `daily_sales`."""
    t = DailySales.__table__
    db.session.execute(sa.delete(DailyCitySales).where(DailyCitySales.day >= from_day, DailyCitySales.day <= to_day))
    summed = (sa.select(t.c.day, t.c.sku_id, t.c.city_code, sa.func.min(t.c.province_code), sa.func.sum(t.c.units),
                        sa.func.sum(t.c.amount_fen))
              .where(t.c.day >= from_day, t.c.day <= to_day).group_by(t.c.day, t.c.sku_id, t.c.city_code))
    ct = DailyCitySales.__table__
    db.session.execute(sa.insert(ct).from_select(
        [ct.c.day, ct.c.sku_id, ct.c.city_code, ct.c.province_code, ct.c.units, ct.c.amount_fen], summed))
    db.session.execute(sa.delete(DailyCityTotal).where(DailyCityTotal.day >= from_day, DailyCityTotal.day <= to_day))
    totals = (sa.select(ct.c.day, ct.c.city_code, sa.func.min(ct.c.province_code), sa.func.sum(ct.c.units),
                        sa.func.sum(ct.c.amount_fen))
              .where(ct.c.day >= from_day, ct.c.day <= to_day).group_by(ct.c.day, ct.c.city_code))
    tt = DailyCityTotal.__table__
    db.session.execute(sa.insert(tt).from_select(
        [tt.c.day, tt.c.city_code, tt.c.province_code, tt.c.units, tt.c.amount_fen], totals))
