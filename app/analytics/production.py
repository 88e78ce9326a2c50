"""Production suggestions per SKU: forecast demand over a horizon plus safety stock, minus the network's stock.

``forecast = rate × horizon_days`` where rate is the network's smoothed daily sell-through (the sum of the
cities' exponentially smoothed rates, see `app.analytics.allocation`); ``safety = rate × safety_days``;
``network = central + sub-warehouses + in transit (+ store shelves when asked)``;
``suggest = max(0, forecast + safety − network)`` rounded up to whole cases. Each line carries its sentence,
how many stores sold the product over the rate's window (`stores`) and the units on store shelves
(`store_units`, counted in the network only when asked).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from app.analytics import rollups
from app.analytics.allocation import DEFAULT_ALPHA, DEFAULT_HISTORY_DAYS
from app.analytics.models import DailySales
from app.analytics.queries import smoothed_rates
from app.catalog.models import Sku
from app.catalog.units import cases_text, pack_text
from app.core.clock import today_business
from app.extensions import db
from app.inventory.models import Location, StockLevel, Warehouse


@dataclass(frozen=True)
class Suggestion:
    sku_id: int
    sku_name: str
    daily_rate: float
    forecast_units: int
    safety_units: int
    central: int
    sub_warehouses: int
    in_transit: int
    store_units: int
    network_units: int
    suggested_units: int
    case_pack: int
    explanation: str
    stores: int = 0  # stores that sold the product in the rate's window


def suggest_one(*, sku_id: int, sku_name: str, unit: str, case_pack: int, daily_rate: float, horizon_days: int,
                safety_days: int, central: int, sub_warehouses: int, in_transit: int, store_units: int = 0,
                include_stores: bool = False, selling_stores: int = 0, case_unit: str = "箱") -> Suggestion:
    """One SKU's suggestion with the sentence that explains it (pure)."""
    forecast = math.ceil(daily_rate * horizon_days - 1e-9)
    safety = math.ceil(daily_rate * safety_days - 1e-9)
    stores = store_units if include_stores else 0
    network = central + sub_warehouses + in_transit + stores
    gap = forecast + safety - network
    suggested = 0 if gap <= 0 else math.ceil(gap / case_pack) * case_pack
    text = ((f"{selling_stores} 家门店在卖，" if selling_stores else "近期没有门店卖出，")
            + f"日均 {daily_rate:.1f} {unit}，{horizon_days} 天预计 {forecast} {unit} + 安全库存 {safety} {unit}"
            f"（{safety_days} 天）− 全网库存 {network} {unit}"
            f"（中央仓 {central}、分仓 {sub_warehouses}、在途 {in_transit}"
            + (f"、门店 {stores}" if stores else "") + "）"
            + (f" = 建议生产 {cases_text(suggested, case_pack, unit, case_unit)}"
               f"（按整{case_unit}取整，{pack_text(case_pack, unit, case_unit)}）" if suggested
               else "，库存足够，暂不需要生产"))
    return Suggestion(sku_id, sku_name, round(daily_rate, 2), forecast, safety, central, sub_warehouses, in_transit,
                      store_units, network, suggested, case_pack, text, selling_stores)


@rollups.folded
def production_suggestions(*, horizon_days: int = 45, safety_days: int = 7, include_stores: bool = False,
                           history_days: int = DEFAULT_HISTORY_DAYS, alpha: float = DEFAULT_ALPHA) -> list[dict]:
    """Every active SKU's suggestion, biggest first."""
    skus = list(db.session.scalars(sa.select(Sku).where(Sku.is_active.is_(True)).order_by(Sku.id)))
    rate: dict[int, float] = defaultdict(float)
    for (_city, sku_id), r in smoothed_rates(by="city", history_days=history_days, alpha=alpha).items():
        rate[sku_id] += r
    wh_kind = dict(db.session.execute(sa.select(Warehouse.location_id, Warehouse.kind)).all())
    loc_kind = dict(db.session.execute(sa.select(Location.id, Location.kind)).all())
    stock: dict[tuple[str, int], int] = defaultdict(int)
    for loc, sku_id, on_hand in db.session.execute(sa.select(StockLevel.location_id, StockLevel.sku_id,
                                                             StockLevel.on_hand)):
        kind = wh_kind.get(loc) or loc_kind.get(loc, "")
        stock[(kind, sku_id)] += on_hand
    selling = selling_stores(history_days=history_days)
    out = []
    for s in skus:
        out.append(asdict(suggest_one(
            sku_id=s.id, sku_name=s.name, unit=s.unit, case_unit=s.case_unit, case_pack=s.case_pack,
            daily_rate=rate.get(s.id, 0.0),
            horizon_days=horizon_days, safety_days=safety_days, central=stock[("central", s.id)],
            sub_warehouses=stock[("sub", s.id)], in_transit=stock[("transit", s.id)],
            store_units=stock[("store", s.id)], include_stores=include_stores,
            selling_stores=selling.get(s.id, 0))))
    out.sort(key=lambda r: (-r["suggested_units"], r["sku_id"]))
    return out


def selling_stores(*, history_days: int = DEFAULT_HISTORY_DAYS, as_of: date | None = None) -> dict[int, int]:
    """Per SKU, the stores that sold it (net of returns) over the window the rates are smoothed over (ending
    yesterday, as `smoothed_rates`)."""
    end = as_of or today_business() - timedelta(days=1)
    start = end - timedelta(days=history_days - 1)
    per_store = (sa.select(DailySales.sku_id, DailySales.store_id)
                 .where(DailySales.day >= start, DailySales.day <= end)
                 .group_by(DailySales.sku_id, DailySales.store_id).having(sa.func.sum(DailySales.units) > 0)
                 .subquery())
    return {sku_id: int(n) for sku_id, n in db.session.execute(
        sa.select(per_store.c.sku_id, sa.func.count()).group_by(per_store.c.sku_id))}
