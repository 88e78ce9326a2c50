#!/usr/bin/env python3
"""p50/p95 of the 90-day sell-through by city (the HQ dashboard query) against DATABASE_URL.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/hq_bench .venv/bin/python scripts/bench/sell_through.py

Fill the database first with scripts/gen_history. Runs the same function the API and pages call
(`app.analytics.queries.sell_through`, current and previous period, names included) as an unrestricted HQ user.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--group-by", default="city")
    ap.add_argument("--sku-id", type=int, default=None, help="filter one SKU (reads the city × SKU rollup)")
    args = ap.parse_args()

    import sqlalchemy as sa

    from app import create_app
    from app.analytics import queries
    from app.analytics.models import DailyCitySales, DailySales
    from app.core.security import Binding, Principal
    from app.extensions import db

    app = create_app({"RATELIMIT_ENABLED": False})
    with app.app_context():
        counts = {t: db.session.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                  for t in ("scan_events", "daily_sales", "daily_city_sales", "daily_city_totals")}
        end = db.session.scalar(sa.select(sa.func.max(DailySales.day)))
        p = queries.Period(end - timedelta(days=args.days - 1), end)
        admin = Principal(user_id=0, kind="hq", bindings=(Binding("hq_admin"),))
        sku_id = args.sku_id
        for _ in range(3):
            rows = queries.sell_through(admin, p=p, group_by=args.group_by, sku_id=sku_id)
        times = []
        for _ in range(args.runs):
            db.session.remove()
            t = time.perf_counter()
            rows = queries.sell_through(admin, p=p, group_by=args.group_by, sku_id=sku_id)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        in_range = db.session.scalar(sa.select(sa.func.count()).select_from(DailyCitySales)
                                     .where(DailyCitySales.day >= p.start, DailyCitySales.day <= p.end))
        print(f"database: {db.engine.dialect.name}; rows: {counts}")
        print(f"{args.days}-day sell-through by {args.group_by} ({p.start}..{p.end}), sku_id={sku_id}, "
              f"{len(rows)} groups, "
              f"{in_range:,} city-rollup rows in the period")
        print(f"runs={args.runs} p50={statistics.median(times):.1f} ms p95={p95:.1f} ms max={times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
