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

from app.analytics.models import DailySales
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

    A case scan's event is the parent of its units' events: when an event has children, the children carry the
    units and the parent is skipped, so a case is never counted twice. The amount is the store's tier price at
    rebuild time (the scan events do not carry money; the signal's amount_fen is that same price).
    """
    from app.catalog.models import SkuPrice

    sign = {"sell": 1, "return": -1}
    child = sa.orm.aliased(model)
    has_children = sa.exists().where(child.parent_event_id == model.id)
    stmt = (sa.select(model.id, model.action, model.store_id, model.sku_id, model.quantity, model.event_time,
                      model.corrects_event_id)
            .where(model.action.in_(("sell", "return", "undo")), model.store_id.is_not(None),
                   model.event_time >= start, model.event_time < end, ~has_children))
    rows = db.session.execute(stmt).all()
    corrected_ids = [r.corrects_event_id for r in rows if r.action == "undo" and r.corrects_event_id]
    corrected: dict[int, tuple[str, int]] = {}
    if corrected_ids:
        for cid, action, qty in db.session.execute(
                sa.select(model.id, model.action, model.quantity).where(model.id.in_(corrected_ids))):
            corrected[cid] = (action, qty)
        # An undone case: its units' quantities add up to what the undo takes back.
        for pid, total in db.session.execute(
                sa.select(model.parent_event_id, sa.func.sum(model.quantity))
                .where(model.parent_event_id.in_(corrected_ids)).group_by(model.parent_event_id)):
            corrected[pid] = (corrected[pid][0], int(total))
    prices = {(store_id, sku_id): price for store_id, sku_id, price in db.session.execute(
        sa.select(Store.id, SkuPrice.sku_id, SkuPrice.price_fen)
        .join(SkuPrice, SkuPrice.price_tier_id == Store.price_tier_id))}
    for r in rows:
        if r.action == "undo":
            action, qty = corrected.get(r.corrects_event_id, ("", 0))
            if action not in sign:
                continue
            units = -sign[action] * qty
        else:
            units = sign[r.action] * (r.quantity or 1)
        yield {"store_id": r.store_id, "sku_id": r.sku_id, "quantity": units, "at": r.event_time,
               "amount_fen": units * prices.get((r.store_id, r.sku_id), 0), "event_id": r.id}


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
    return len(rows)
