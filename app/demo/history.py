"""Weeks of sell history for the demo: a weekly rhythm, city differences and one promotion, as rollup rows.

History older than today is written straight into the daily rollups (there are no scan events behind it);
today's sales come from the demo's real scans through the receivers, so both add up in one table. Sell-in
(deliveries) is a weekly drop per store that roughly matches what it sells, rounded to cases, so the
dashboards, the store stock and the allocation plan tell one story: Shenzhen and Guangzhou sell fastest (and
the jasmine tea promotion there lifts them further) while the Shenzhen sub-warehouse holds the least stock.
"""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.analytics.models import DailySales, DailySellIn
from app.analytics.receivers import add_sell_in, note_sales
from app.analytics.rollups import refresh_city_rollup
from app.catalog.models import SkuPrice
from app.core.clock import today_business
from app.core.tx import transaction
from app.extensions import db

# Units per store per day for an average SKU, by city: the big southern cities sell more.
CITY_BASE = {"330100": 3.0, "330200": 2.0, "440300": 5.0, "440100": 4.0, "510100": 2.5}
SKU_FACTOR = {"MILK250": 1.4, "YOG200": 1.0, "TEA500": 0.8, "BISC": 1.2}
# Monday .. Sunday: weekends sell more at convenience stores.
WEEKDAY = (0.85, 0.8, 0.85, 0.95, 1.1, 1.35, 1.3)
PROMO = {"sku": "TEA500", "cities": {"440300", "440100"}, "days_ago": (10, 3), "lift": 2.2}


def daily_units(*, rng: random.Random, city: str, sku_code: str, weekday: int, days_ago: int,
                store_factor: float) -> int:
    """One store's units of one SKU on one day (pure, given the random generator)."""
    mean = CITY_BASE.get(city, 2.0) * SKU_FACTOR.get(sku_code, 1.0) * WEEKDAY[weekday] * store_factor
    lo, hi = PROMO["days_ago"]
    if sku_code == PROMO["sku"] and city in PROMO["cities"] and hi <= days_ago <= lo:
        mean *= PROMO["lift"]
    # A Poisson-like count around the mean, cheap and deterministic.
    return max(0, round(rng.gauss(mean, mean ** 0.5)))


def seed(ctx) -> None:
    """Write DEMO_HISTORY_DAYS days of sell-through and sell-in ending yesterday."""
    days = int(current_app.config.get("DEMO_HISTORY_DAYS", 56))
    rng = random.Random(20241120)
    today = today_business()
    with transaction():
        prices = {(t, s): p for t, s, p in db.session.execute(
            sa.select(SkuPrice.price_tier_id, SkuPrice.sku_id, SkuPrice.price_fen))}
        existing = {(d, k, s) for d, k, s in db.session.execute(
            sa.select(DailySales.day, DailySales.sku_id, DailySales.store_id)
            .where(DailySales.day >= today - timedelta(days=days)))}
        sales, sell_in = [], []
        recent: dict[tuple[int, int], int] = {}  # units of the last 14 days per (store, SKU)
        for _code, store in sorted(ctx.stores.items(), key=lambda kv: kv[1].id):
            store_factor = 0.7 + (store.id * 37 % 7) / 10  # some shops are busier than others, stably
            for sku_code, sku in ctx.skus.items():
                price = prices.get((store.price_tier_id, sku.id), 0)
                week_units = 0
                for ago in range(days, 0, -1):
                    day = today - timedelta(days=ago)
                    units = daily_units(rng=rng, city=store.city_code, sku_code=sku_code, weekday=day.weekday(),
                                        days_ago=ago, store_factor=store_factor)
                    week_units += units
                    if ago <= 14:
                        recent[(store.id, sku.id)] = recent.get((store.id, sku.id), 0) + units
                    if units:
                        row = {"day": day, "sku_id": sku.id, "store_id": store.id, "units": units,
                               "amount_fen": units * price}
                        if (day, sku.id, store.id) in existing:
                            note_sales(**row)  # onto a cell that exists: the next fold adds it
                        else:
                            sales.append({**row, "province_code": store.province_code,
                                          "city_code": store.city_code, "distributor_id": store.distributor_id})
                    if day.weekday() == 0 or ago == days:
                        # Monday delivery: last week's sales plus a little, in whole cases.
                        cases = max(1, -(-int(week_units * 1.05 + 1) // sku.case_pack))
                        sell_in.append({"day": day, "sku_id": sku.id, "store_id": store.id,
                                        "province_code": store.province_code, "city_code": store.city_code,
                                        "distributor_id": store.distributor_id, "units": cases * sku.case_pack})
                        week_units = 0
        if sales:
            db.session.execute(sa.insert(DailySales.__table__), sales)
        existing_in = {(d, k, s) for d, k, s in db.session.execute(
            sa.select(DailySellIn.day, DailySellIn.sku_id, DailySellIn.store_id)
            .where(DailySellIn.day >= today - timedelta(days=days)))}
        fresh = [r for r in sell_in if (r["day"], r["sku_id"], r["store_id"]) not in existing_in]
        for r in sell_in:
            if (r["day"], r["sku_id"], r["store_id"]) in existing_in:
                add_sell_in(day=r["day"], store_id=r["store_id"], sku_id=r["sku_id"], units=r["units"])
        if fresh:
            db.session.execute(sa.insert(DailySellIn.__table__), fresh)
        _shelf_stock(ctx, recent)
        refresh_city_rollup(today - timedelta(days=days), today)


# Days of cover on the shelves of the stores that have no scanned stock in the demo: a spread from nearly empty
# to far too much, so the store stock page and the slow-store list have something to say.
SHELF_COVER_DAYS = {"S3": 3, "S4": 9, "S5": 45, "S6": 5, "S7": 14, "S8": 30, "S9": 7, "S10": 20}


def _shelf_stock(ctx, recent: dict[tuple[int, int], int]) -> None:
    from app.inventory.services import move_stock

    for code, cover in SHELF_COVER_DAYS.items():
        store = ctx.stores.get(code)
        if store is None:
            continue
        for sku in ctx.skus.values():
            units = round(recent.get((store.id, sku.id), 0) / 14 * cover)
            if units > 0:
                move_stock(location_id=store.location_id, sku_id=sku.id, on_hand=units, kind="seed",
                           reason="期初库存")
