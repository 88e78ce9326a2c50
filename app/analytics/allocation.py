"""Allocation math, pure functions: how much of each SKU the central warehouse sends to each sub-warehouse.

Method
------
1. **Velocity.** For every city and SKU, the daily sell-through series (units/day, business days in
   Asia/Shanghai, returns netted) over the last `history_days` (default 28) is exponentially smoothed:
   ``s_0 = mean of the first min(7, n) days``, ``s_t = alpha * x_t + (1 - alpha) * s_{t-1}``, with
   ``alpha = 0.3`` by default (a half-life of about two days: it follows a promotion within a week, yet
   one odd day moves it by only 30 %). The rate of a sub-warehouse is the sum of the rates of the cities it
   serves. A city with no sales in the window has rate 0.
2. **Need.** ``need = target_cover_days × rate − on_hand − in_transit``, never below 0, rounded *up* to
   whole case packs (we ship cases).
3. **Enough central stock.** Every sub-warehouse gets its need.
4. **Scarcity (water-filling).** When the needs add up to more than central has, find the level L (days of
   cover) such that topping every sub-warehouse up to ``L × rate`` uses exactly what central has;
   warehouses already above L get nothing. Each share is rounded *down* to case packs, then the remaining
   whole cases go one by one to the warehouse with the lowest cover, so every warehouse ends as close to
   the same days of cover as whole cases allow.
5. **Guarantees** (property-tested): no quantity is negative; the total per SKU never exceeds what central
   has available; a warehouse with rate 0 gets nothing; every quantity is a multiple of the case pack.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_ALPHA = 0.3
DEFAULT_HISTORY_DAYS = 28
WARMUP_DAYS = 7


def smoothed_rate(series: Sequence[float], alpha: float = DEFAULT_ALPHA) -> float:
    """Exponentially smoothed daily rate of a daily series (oldest first); 0 for an empty series."""
    if not series:
        return 0.0
    warm = series[:WARMUP_DAYS]
    level = sum(warm) / len(warm)
    for x in series:
        level = alpha * x + (1 - alpha) * level
    return max(level, 0.0)


@dataclass(frozen=True)
class Target:
    """One sub-warehouse for one SKU: where it stands now."""

    warehouse_id: int
    daily_rate: float
    on_hand: int
    in_transit: int = 0

    @property
    def position(self) -> int:
        return self.on_hand + self.in_transit


@dataclass(frozen=True)
class Allocation:
    warehouse_id: int
    quantity: int
    need: int
    cover_after: float | None  # days of cover after the transfer arrives (None when nothing sells)


def cover_days(stock: float, rate: float) -> float | None:
    """Days the stock lasts at the rate; None when nothing sells (infinite cover)."""
    return None if rate <= 0 else stock / rate


def _round_up(units: float, case_pack: int) -> int:
    return 0 if units <= 0 else math.ceil(units / case_pack - 1e-9) * case_pack


def water_level(targets: Sequence[Target], available: float) -> float:
    """The days of cover L at which topping everyone up to L × rate uses exactly `available` units."""
    selling = sorted((t for t in targets if t.daily_rate > 0), key=lambda t: t.position / t.daily_rate)
    rate_sum = pos_sum = 0.0
    level = 0.0
    for i, t in enumerate(selling):
        rate_sum += t.daily_rate
        pos_sum += t.position
        level = (available + pos_sum) / rate_sum
        nxt = selling[i + 1].position / selling[i + 1].daily_rate if i + 1 < len(selling) else math.inf
        if level <= nxt:
            return level
    return level


def allocate_sku(targets: Sequence[Target], *, central_available: int, target_cover_days: float,
                 case_pack: int = 1) -> list[Allocation]:
    """Transfers of one SKU from central to each sub-warehouse (see the module docstring)."""
    case_pack = max(1, int(case_pack))
    central_available = max(0, int(central_available))
    needs = {t.warehouse_id: _round_up(target_cover_days * t.daily_rate - t.position, case_pack)
             if t.daily_rate > 0 else 0 for t in targets}
    usable = central_available - central_available % case_pack
    qty: dict[int, int] = {}
    if sum(needs.values()) <= usable:
        qty = dict(needs)
    else:
        level = water_level(targets, usable)
        for t in targets:
            share = max(0.0, level * t.daily_rate - t.position) if t.daily_rate > 0 else 0.0
            qty[t.warehouse_id] = min(needs[t.warehouse_id], int(share // case_pack) * case_pack)
        left = usable - sum(qty.values())
        # Hand out the remaining whole cases to whoever has the least cover; ties by warehouse id.
        heap = [((t.position + qty[t.warehouse_id]) / t.daily_rate, t.warehouse_id, t)
                for t in targets if t.daily_rate > 0]
        heapq.heapify(heap)
        while left >= case_pack and heap:
            _, wid, t = heapq.heappop(heap)
            if qty[wid] + case_pack > needs[wid]:
                continue  # already at its target
            qty[wid] += case_pack
            left -= case_pack
            heapq.heappush(heap, ((t.position + qty[wid]) / t.daily_rate, wid, t))
    return [Allocation(warehouse_id=t.warehouse_id, quantity=qty[t.warehouse_id], need=needs[t.warehouse_id],
                       cover_after=cover_days(t.position + qty[t.warehouse_id], t.daily_rate)) for t in targets]


@dataclass(frozen=True)
class SkuInput:
    sku_id: int
    case_pack: int
    central_available: int
    targets: Sequence[Target]


def allocate(skus: Iterable[SkuInput], *, target_cover_days: float) -> dict[int, list[Allocation]]:
    """A whole plan: every SKU's allocations, by SKU id."""
    return {s.sku_id: allocate_sku(s.targets, central_available=s.central_available,
                                   target_cover_days=target_cover_days, case_pack=s.case_pack) for s in skus}
