#!/usr/bin/env python3
"""Time an allocation plan of 500 SKUs × 300 sub-warehouses (cities): smoothing 28-day series and allocating.

    .venv/bin/python scripts/bench/allocation.py [--skus 500 --cities 300]

Half the SKUs are scarce (central holds less than the cities need), so the water-filling path is measured.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=500)
    ap.add_argument("--cities", type=int, default=300)
    args = ap.parse_args()

    from app.analytics.allocation import SkuInput, Target, allocate, smoothed_rate

    rng = random.Random(1)
    series = {(s, c): [rng.randrange(0, 12) for _ in range(28)] for s in range(args.skus) for c in range(args.cities)}
    t = time.perf_counter()
    rates = {k: smoothed_rate(v) for k, v in series.items()}
    smooth_s = time.perf_counter() - t
    skus = [SkuInput(sku_id=s, case_pack=rng.choice((1, 4, 6, 12)),
                     central_available=rng.choice((200, 2_000, 200_000)),
                     targets=[Target(c, daily_rate=rates[(s, c)], on_hand=rng.randrange(0, 80),
                                     in_transit=rng.randrange(0, 20)) for c in range(args.cities)])
            for s in range(args.skus)]
    t = time.perf_counter()
    plan = allocate(skus, target_cover_days=21)
    alloc_s = time.perf_counter() - t
    total = sum(a.quantity for allocs in plan.values() for a in allocs)
    print(f"{args.skus} SKUs × {args.cities} cities: smoothing {smooth_s:.2f} s + allocation {alloc_s:.2f} s "
          f"= {smooth_s + alloc_s:.2f} s; {total:,} units planned")


if __name__ == "__main__":
    main()
