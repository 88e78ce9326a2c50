#!/usr/bin/env python3
"""Time closing one month for many partners over many sell events (CHANNEL.md §8), against DATABASE_URL.

    psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE bench_close"
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/bench_close \\
        .venv/bin/python scripts/bench/period_close.py --partners 2000 --events 10000000

Generates (PostgreSQL COPY) into an empty database: an HQ, `--partners` partners (one agent per 50, the rest
distributors under them), one store per distributor, sell events of last month spread over the stores with
their stored attribution (`partner_id`, `agent_id`, as the hot path writes them), a few returns and undos, paid
orders (the rebate base), a sell-in target per partner, ratings and diversion alerts; then closes last month
with `app.assessment.services.close_period` (the same call as the API) and prints the time. The close aggregates
with GROUP BY in SQL; no event is loaded into Python. The target: ≤ 60 s for 2,000 partners and 10M events.
`--keep` skips the generation when the data is there already (a second timing of a fresh close: the close is
deleted first).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _copy(raw, table: str, cols: str, lines) -> None:
    buf = io.StringIO()
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for line in lines:
            buf.write(line)
            if buf.tell() > 32 << 20:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
    raw.commit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partners", type=int, default=2000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--orders-per-distributor", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="reuse the generated data; only time the close again")
    ap.add_argument("--grow-to", type=int, default=0,
                    help="first copy the month's sell events inside PostgreSQL (INSERT ... SELECT, shifted by a "
                         "few seconds) until the table holds this many: faster than generating them in Python")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import sqlalchemy as sa

    from app import create_app
    from app.accounts.roles import HQ_ADMIN
    from app.analytics.targets import month_bounds
    from app.assessment import services
    from app.assessment.models import PartnerAssessment, PeriodClose, RebateEntry
    from app.core.clock import BUSINESS_TZ, now_utc
    from app.core.security import Binding, Principal
    from app.extensions import db

    app = create_app({"RATELIMIT_ENABLED": False})
    rng = random.Random(args.seed)
    system = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]
    period = services.previous_period(now_utc().astimezone(BUSINESS_TZ).strftime("%Y-%m"))
    start, end = month_bounds(period)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            sys.exit("this benchmark fills the database with COPY: point DATABASE_URL at PostgreSQL")
        if not args.keep:
            _generate(args, rng, db, sa, start, end, period, system)
        while args.grow_to and db.session.scalar(sa.text("SELECT count(*) FROM scan_events")) < args.grow_to:
            t = time.perf_counter()
            have = db.session.scalar(sa.text("SELECT count(*) FROM scan_events"))
            db.session.execute(sa.text(
                "INSERT INTO scan_events (sku_id, quantity, action, biz_step, disposition, store_id, location_id, "
                "event_time, recorded_at, diverted, partner_id, agent_id) "
                "SELECT sku_id, quantity, action, biz_step, disposition, store_id, location_id, "
                "least(event_time + interval '1 second', :last), recorded_at, diverted, partner_id, agent_id "
                "FROM scan_events WHERE event_time >= :start AND event_time < :end AND code_id IS NULL "
                "ORDER BY id LIMIT :n"), {"start": start, "end": end, "n": args.grow_to - have,
                                          "last": end - timedelta(seconds=1)})
            db.session.commit()
            print(f"  grew scan_events from {have:,} rows ({time.perf_counter() - t:.1f}s)")
        if args.grow_to:
            db.session.execute(sa.text("ANALYZE scan_events"))
            db.session.commit()
        for t in (RebateEntry, PartnerAssessment, PeriodClose):
            db.session.execute(sa.delete(t).where(t.period == period))
        db.session.commit()
        counts = {t: db.session.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                  for t in ("partners", "stores", "scan_events", "orders", "partner_targets", "store_ratings",
                            "diversion_alerts")}
        db.session.remove()
        t0 = time.perf_counter()
        close = services.close_period(system, period)
        took = time.perf_counter() - t0
        ledger = db.session.scalar(sa.select(sa.func.sum(RebateEntry.amount_fen)).where(RebateEntry.period == period))
        print(f"database: postgresql; rows: {counts}")
        print(f"closed {period}: {close.partners} partners, rebate {close.rebate_fen} fen (ledger sums {ledger}) "
              f"in {took:.1f} s (target ≤ 60 s)")


def _generate(args, rng, db, sa, start, end, period, system) -> None:
    from app.analytics import targets
    from app.assessment import services
    from app.catalog.gtin import make_gtin
    from app.catalog.models import PriceTier, Product, Sku
    from app.channel.models import Partner, Store
    from app.inventory.models import Location

    t0 = time.perf_counter()
    db.create_all()
    tag = f"B{int(time.time()) % 100000}"
    tier = PriceTier(code=f"{tag}-T", name="压测价")
    hq = Partner(code=f"{tag}-HQ", name="压测总部", kind="hq", path="")
    db.session.add_all([tier, hq])
    db.session.flush()
    hq.path = f"/{hq.id}/"
    prod = Product(name="压测商品", brand="压测", category="食品")
    db.session.add(prod)
    db.session.flush()
    sku = Sku(product_id=prod.id, code=f"{tag}-S", name="压测商品", gtin=make_gtin(f"69{int(tag[1:]):05d}00000"[:12]),
              case_pack=6, serialized=True)
    db.session.add(sku)
    n_agents = max(1, args.partners // 50)
    agents = [Partner(code=f"{tag}-A{i}", name=f"压测代理{i}", kind="agent", parent_id=hq.id, path="")
              for i in range(n_agents)]
    db.session.add_all(agents)
    db.session.flush()
    for a in agents:
        a.path = f"{hq.path}{a.id}/"
    dists = [Partner(code=f"{tag}-D{i}", name=f"压测分销{i}", kind="distributor", parent_id=agents[i % n_agents].id,
                     path="") for i in range(args.partners - n_agents)]
    db.session.add_all(dists)
    db.session.flush()
    by_id = {a.id: a for a in agents}
    for d in dists:
        d.path = f"{by_id[d.parent_id].path}{d.id}/"
    locs = [Location(kind="store", name=f"压测门店{i}", city_code="330100") for i in range(len(dists))]
    db.session.add_all(locs)
    db.session.flush()
    stores = [Store(code=f"{tag}-ST{i}", name=f"压测门店{i}", province_code="330000", city_code="330100",
                    distributor_id=d.id, price_tier_id=tier.id, location_id=loc.id)
              for i, (d, loc) in enumerate(zip(dists, locs, strict=True))]
    db.session.add_all(stores)
    user_id = db.session.scalar(sa.text("SELECT id FROM users ORDER BY id LIMIT 1"))
    if user_id is None:
        from app.accounts.services import create_hq_user
        from app.core.tx import transaction

        db.session.commit()
        with transaction():
            user_id = create_hq_user(username=f"{tag}-u", password="bench-pass", role="hq_admin").id
    db.session.commit()
    print(f"made {len(agents)} agents, {len(dists)} distributors and stores ({time.perf_counter() - t0:.1f}s)")

    span = int((end - start).total_seconds()) - 1
    facts = [(s.id, s.location_id, s.distributor_id, by_id[dists[i].parent_id].id) for i, s in enumerate(stores)]
    weights = [rng.lognormvariate(0, 0.8) for _ in facts]
    raw = db.engine.raw_connection()
    try:
        def events():
            picks = rng.choices(range(len(facts)), weights=weights, k=min(args.events, 1_000_000))
            for n in range(args.events):
                sid, lid, pid, aid = facts[picks[n % len(picks)]]
                at = (start + timedelta(seconds=(n * 7919) % span)).isoformat()
                action = "return" if n % 997 == 0 else "sell"
                yield (f"{sku.id}\t1\t{action}\tretail_selling\tretail_sold\t{sid}\t{lid}\t{at}\t{at}\tf\t"
                       f"{pid}\t{aid}\n")
        t = time.perf_counter()
        _copy(raw, "scan_events", "sku_id, quantity, action, biz_step, disposition, store_id, location_id, "
              "event_time, recorded_at, diverted, partner_id, agent_id", events())
        print(f"  COPY {args.events:,} scan events: {time.perf_counter() - t:.1f}s")

        def orders():
            n = 0
            for sid, _, pid, aid in facts:
                for _ in range(args.orders_per_distributor):
                    n += 1
                    fen = rng.randrange(10_000, 500_000)
                    at = (start + timedelta(seconds=rng.randrange(span))).isoformat()
                    yield (f"{tag}{n:012d}\t{tag}-{n}\t{sid}\t{user_id}\tf\tcompleted\t{fen}\t{fen}\t"
                           f"{fen // 10 if n % 13 == 0 else 0}\t\t{at}\t{at}\t{at}\t{pid}\t{aid}\n")
        t = time.perf_counter()
        _copy(raw, "orders", "number, request_id, store_id, created_by_id, is_proxy, status, total_fen, paid_fen, "
              "refunded_fen, note, created_at, updated_at, paid_at, routed_partner_id, routed_agent_id", orders())
        print(f"  COPY orders: {time.perf_counter() - t:.1f}s")
        with raw.cursor() as cur:
            cur.execute("ANALYZE scan_events; ANALYZE orders")
        raw.commit()
    finally:
        raw.close()
    for p in [*agents, *dists][: args.partners]:
        targets.set_target(system, partner_id=p.id, period=period, metric="sell_in_fen",
                           value=rng.randrange(100_000, 5_000_000) * (50 if p.kind == "agent" else 1))
    services.put_scheme(system, period=period, weights={
        "attainment": 50, "rating": 30, "training": 20, "attainment_cap_bp": 12000, "diversion_penalty": 2},
        tiers=[{"name": "铜牌", "min_score": 0, "rebate_bp": 50}, {"name": "银牌", "min_score": 50, "rebate_bp": 100},
               {"name": "金牌", "min_score": 80, "rebate_bp": 200}], base="sell_in")
    print(f"generated in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
