"""The daily sell-through rollups: folded from the sales inbox as scans arrive, rebuilt from the scan events.

Each sell, return or undo appends its units to `sales_inbox` in its own transaction (`receivers.note_sales`,
and the hot sell path in SQL). `fold` moves the inbox into `daily_sales`, `daily_city_sales` and
`daily_city_totals`: it deletes the rows it takes and adds them up in one transaction, so each sale is counted
exactly once, and a sale still being written (not committed) is left for the next fold. Folds run every few
seconds (`rq cron`, see `app/cron.py`) and before every dashboard read, so HQ reads every committed sale.

`rebuild` recomputes a range of business days from the events: after a bug fix, a restore, or to prove the
incremental path right (the test suite checks that rebuild and incremental agree). Days outside the range are
left untouched, so history loaded as rollups (older than the oldest scan event) survives a rebuild of recent days.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from app.analytics.models import DailyCitySales, DailyCityTotal, DailySales, SalesInbox
from app.channel.models import Store
from app.core.clock import business_day, business_day_start, now_utc
from app.core.db import on_postgres
from app.core.tx import in_transaction, transaction
from app.extensions import db

P = ParamSpec("P")
R = TypeVar("R")

# One fold (or rebuild) at a time: a PostgreSQL advisory lock key (SQLite serializes its writers anyway).
_FOLD_LOCK = 0x5A1E5_F01D
FOLD_BATCH = 20_000

# On PostgreSQL a fold is one statement: take up to :n inbox rows, add them up per cell with the store's region
# and distributor, and upsert the three rollups, each in key order (so two writers lock rows alike).
_PG_FOLD = sa.text(
    "WITH taken AS (DELETE FROM sales_inbox WHERE id IN (SELECT id FROM sales_inbox ORDER BY id LIMIT :n)"
    " RETURNING day, sku_id, store_id, units, amount_fen),"
    " cells AS (SELECT t.day, t.sku_id, t.store_id, st.province_code, st.city_code, st.distributor_id,"
    " sum(t.units) AS units, sum(t.amount_fen) AS amount_fen FROM taken t JOIN stores st ON st.id = t.store_id"
    " GROUP BY t.day, t.sku_id, t.store_id, st.province_code, st.city_code, st.distributor_id),"
    " s AS (INSERT INTO daily_sales AS d (day, sku_id, store_id, province_code, city_code, distributor_id, units,"
    " amount_fen) SELECT day, sku_id, store_id, province_code, city_code, distributor_id, units, amount_fen"
    " FROM cells ORDER BY day, sku_id, store_id ON CONFLICT (day, sku_id, store_id) DO UPDATE"
    " SET units = d.units + EXCLUDED.units, amount_fen = d.amount_fen + EXCLUDED.amount_fen),"
    " c AS (INSERT INTO daily_city_sales AS d (day, sku_id, city_code, province_code, units, amount_fen)"
    " SELECT day, sku_id, city_code, min(province_code), sum(units), sum(amount_fen) FROM cells"
    " GROUP BY day, sku_id, city_code ORDER BY day, sku_id, city_code ON CONFLICT (day, sku_id, city_code)"
    " DO UPDATE SET units = d.units + EXCLUDED.units, amount_fen = d.amount_fen + EXCLUDED.amount_fen),"
    " t AS (INSERT INTO daily_city_totals AS d (day, city_code, province_code, units, amount_fen)"
    " SELECT day, city_code, min(province_code), sum(units), sum(amount_fen) FROM cells"
    " GROUP BY day, city_code ORDER BY day, city_code ON CONFLICT (day, city_code)"
    " DO UPDATE SET units = d.units + EXCLUDED.units, amount_fen = d.amount_fen + EXCLUDED.amount_fen)"
    " SELECT count(*) FROM taken")


def _lock() -> None:
    if on_postgres():
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _FOLD_LOCK})


def folded(read: Callable[P, R]) -> Callable[P, R]:
    """For a read of the rollups: fold the sales committed so far into them first, so a dashboard shows every
    sale made before it was asked for. Inside a use case's open transaction it reads the rollups as they are (a
    fold commits, and must not commit someone else's transaction)."""

    @functools.wraps(read)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not in_transaction():
            fold()
        return read(*args, **kwargs)

    return wrapper


def fold(*, batch: int = FOLD_BATCH) -> int:
    """Add the sales inbox to the rollups, exactly once; returns the inbox rows folded. Commits what it folds."""
    total = 0
    while True:
        with transaction():
            _lock()
            n = _fold_some(batch)
        total += n
        if n < batch:
            return total


def fold_lag_seconds() -> float:
    """How far the rollups lag behind the sales: the age of the oldest sale still in the inbox (0 when it is
    empty). One read of the inbox's first row by its primary key: cheap at any size, for every scrape."""
    inbox = SalesInbox.__table__
    oldest = db.session.scalar(sa.select(inbox.c.created_at).order_by(inbox.c.id).limit(1))
    if oldest is None:
        return 0.0
    return max(0.0, (now_utc() - oldest).total_seconds())


def _fold_some(batch: int) -> int:
    if on_postgres():
        return db.session.execute(_PG_FOLD, {"n": batch}).scalar_one()
    inbox = SalesInbox.__table__
    oldest = sa.select(inbox.c.id).order_by(inbox.c.id).limit(batch).scalar_subquery()
    rows = db.session.execute(sa.delete(inbox).where(inbox.c.id.in_(oldest)).returning(
        inbox.c.day, inbox.c.sku_id, inbox.c.store_id, inbox.c.units, inbox.c.amount_fen)).all()
    cells: dict[tuple[date, int, int], list[int]] = defaultdict(lambda: [0, 0])
    for day, sku_id, store_id, units, amount_fen in rows:
        cell = cells[(day, sku_id, store_id)]
        cell[0] += units
        cell[1] += amount_fen
    dims = {sid: (p, c, d) for sid, p, c, d in db.session.execute(
        sa.select(Store.id, Store.province_code, Store.city_code, Store.distributor_id)
        .where(Store.id.in_({store_id for _, _, store_id in cells})))}
    for (day, sku_id, store_id), (units, amount_fen) in sorted(cells.items()):
        _add_cell_sqlite(day, sku_id, store_id, dims[store_id], units, amount_fen)
    return len(rows)


def _add_cell_sqlite(day: date, sku_id: int, store_id: int, dims: tuple[str, str, int], units: int,
                     amount_fen: int) -> None:
    """SQLite's fold, one (day, SKU, store) cell and its city cells, by upserts (PostgreSQL's is `_PG_FOLD`)."""
    province, city, distributor = dims
    for table, values, keys in (
        (DailySales.__table__, {"store_id": store_id, "province_code": province, "city_code": city,
                                "distributor_id": distributor, "sku_id": sku_id}, ("day", "sku_id", "store_id")),
        (DailyCitySales.__table__, {"sku_id": sku_id, "city_code": city, "province_code": province},
         ("day", "sku_id", "city_code")),
        (DailyCityTotal.__table__, {"city_code": city, "province_code": province}, ("day", "city_code")),
    ):
        stmt = sqlite.insert(table).values(day=day, units=units, amount_fen=amount_fen, **values)
        db.session.execute(stmt.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={"units": table.c.units + units, "amount_fen": table.c.amount_fen + amount_fen}))


def sell_events(from_day: date, to_day: date) -> Iterator[dict[str, Any]]:
    """The sell-side scan events (sells, returns, undos) of a range of business days, as `units_sold` kwargs."""
    from app.codes.models import ScanEvent  # the scans engineer's model; imported late so analytics loads alone

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

    The caller owns the transaction (the CLI wraps it in one, so readers never see a half-rebuilt range). The
    inbox rows of those days go: their sales are among the events recounted. On PostgreSQL the transaction must
    be REPEATABLE READ (see `rebuild_command`), so the events recounted and the inbox rows dropped are the same
    sales, whatever commits meanwhile.
    """
    _lock()
    if events is None:
        events = sell_events(from_day, to_day)
    cells = aggregate(events, from_day, to_day)
    db.session.execute(sa.delete(SalesInbox).where(SalesInbox.day >= from_day, SalesInbox.day <= to_day))
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
