"""Record sales for the rollups in the sender's transaction: a sale and its rollup entry commit or fail together.

A sell, return or undo appends one row to `sales_inbox`; `rollups.fold` adds the rows to the rollups (see there).
Sell-in (shipments) is rare enough to update its rollup directly.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from app.analytics.models import DailyCitySales, DailyCityTotal, DailySales, DailySellIn, SalesInbox
from app.channel.models import Store
from app.core.clock import business_day
from app.core.db import dialect_insert, on_postgres, pg_row
from app.core.events import units_shipped, units_sold
from app.extensions import db

_insert = dialect_insert


def _store_dims(store_id: int) -> tuple[str, str, int]:
    row = db.session.execute(
        sa.select(Store.province_code, Store.city_code, Store.distributor_id).where(Store.id == store_id)).first()
    if row is None:
        raise ValueError(f"no store {store_id}")
    return row[0], row[1], row[2]


# On PostgreSQL the three cells move in one statement, chained so the rows are locked in the same order as
# `refresh_city_rollup` writes them, the hot (day, city) total last. A fixed text: nothing is built per sale.
_PG_ADD_SALES = sa.text(
    "WITH s AS (INSERT INTO daily_sales (day, sku_id, store_id, province_code, city_code, distributor_id, units,"
    " amount_fen) VALUES (:day, :sku_id, :store_id, :province, :city, :distributor, :units, :amount)"
    " ON CONFLICT (day, sku_id, store_id) DO UPDATE SET units = daily_sales.units + EXCLUDED.units,"
    " amount_fen = daily_sales.amount_fen + EXCLUDED.amount_fen RETURNING 1),"
    " c AS (INSERT INTO daily_city_sales (day, sku_id, city_code, province_code, units, amount_fen)"
    " SELECT :day, :sku_id, :city, :province, :units, :amount FROM s"
    " ON CONFLICT (day, sku_id, city_code) DO UPDATE SET units = daily_city_sales.units + EXCLUDED.units,"
    " amount_fen = daily_city_sales.amount_fen + EXCLUDED.amount_fen RETURNING 1)"
    " INSERT INTO daily_city_totals (day, city_code, province_code, units, amount_fen)"
    " SELECT :day, :city, :province, :units, :amount FROM c"
    " ON CONFLICT (day, city_code) DO UPDATE SET units = daily_city_totals.units + EXCLUDED.units,"
    " amount_fen = daily_city_totals.amount_fen + EXCLUDED.amount_fen")


def add_sales(*, day: date, store_id: int, sku_id: int, units: int, amount_fen: int,
              dims: tuple[str, str, int] | None = None) -> None:
    """Add to one (day, SKU, store) cell and its city cells with atomic upserts (no lost updates): what a fold
    and the history generator do; a sale goes through `note_sales`.

    `dims` is the store's (province_code, city_code, distributor_id) when the caller has them at hand.
    """
    province, city, distributor = dims or _store_dims(store_id)
    if on_postgres():
        pg_row(_PG_ADD_SALES, {"day": day, "sku_id": sku_id, "store_id": store_id, "province": province,
                                           "city": city, "distributor": distributor, "units": units,
                                           "amount": amount_fen})
        return
    table = DailySales.__table__
    stmt = sqlite.insert(table).values(day=day, sku_id=sku_id, store_id=store_id, province_code=province,
                                       city_code=city, distributor_id=distributor, units=units,
                                       amount_fen=amount_fen)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.day, table.c.sku_id, table.c.store_id],
        set_={"units": table.c.units + units, "amount_fen": table.c.amount_fen + amount_fen})
    db.session.execute(stmt)
    ct = DailyCitySales.__table__
    stmt = sqlite.insert(ct).values(day=day, sku_id=sku_id, city_code=city, province_code=province, units=units,
                                    amount_fen=amount_fen)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ct.c.day, ct.c.sku_id, ct.c.city_code],
        set_={"units": ct.c.units + units, "amount_fen": ct.c.amount_fen + amount_fen})
    db.session.execute(stmt)
    tt = DailyCityTotal.__table__
    stmt = sqlite.insert(tt).values(day=day, city_code=city, province_code=province, units=units,
                                    amount_fen=amount_fen)
    stmt = stmt.on_conflict_do_update(
        index_elements=[tt.c.day, tt.c.city_code],
        set_={"units": tt.c.units + units, "amount_fen": tt.c.amount_fen + amount_fen})
    db.session.execute(stmt)


def add_sell_in(*, day: date, store_id: int, sku_id: int, units: int) -> None:
    """Add shipped units to one (day, SKU, store) sell-in cell."""
    province, city, distributor = _store_dims(store_id)
    table = DailySellIn.__table__
    stmt = _insert()(table).values(day=day, sku_id=sku_id, store_id=store_id, province_code=province,
                                   city_code=city, distributor_id=distributor, units=units)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.day, table.c.sku_id, table.c.store_id],
                                      set_={"units": table.c.units + units})
    db.session.execute(stmt)


def note_sales(*, day: date, store_id: int, sku_id: int, units: int, amount_fen: int) -> None:
    """Append a sale (negative for a return or an undone sell) to the inbox the rollups are folded from."""
    db.session.execute(sa.insert(SalesInbox.__table__).values(
        day=day, store_id=store_id, sku_id=sku_id, units=units, amount_fen=amount_fen))


@units_sold.connect
def on_units_sold(sender, *, store_id, sku_id, quantity, at, amount_fen=0, event_id=None, **_ignored) -> None:
    # Bucket by the device's time in China, so an offline batch uploaded tomorrow lands on the day it sold.
    note_sales(day=business_day(at), store_id=store_id, sku_id=sku_id, units=int(quantity),
               amount_fen=int(amount_fen or 0))


@units_shipped.connect
def on_units_shipped(sender, *, store_id, sku_id, quantity, at, **_ignored) -> None:
    add_sell_in(day=business_day(at), store_id=store_id, sku_id=sku_id, units=int(quantity))
