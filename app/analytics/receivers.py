"""Record sales for the rollups in the sender's transaction: a sale and its rollup entry commit or fail together.

A sell, return or undo appends one row to `sales_inbox` in its own transaction (`app.scans.inbox.note_sale`, or
the hot sell path in SQL); `rollups.fold` adds the rows to the rollups (see there).
Sell-in (shipments) is rare enough to update its rollup directly.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from app.analytics.models import DailySellIn, SalesInbox
from app.channel.models import Store
from app.core.clock import business_day
from app.core.db import dialect_insert
from app.core.events import units_shipped
from app.extensions import db

_insert = dialect_insert


def _store_dims(store_id: int) -> tuple[str, str, int]:
    row = db.session.execute(
        sa.select(Store.province_code, Store.city_code, Store.distributor_id).where(Store.id == store_id)).first()
    if row is None:
        raise ValueError(f"no store {store_id}")
    return row[0], row[1], row[2]


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


@units_shipped.connect
def on_units_shipped(sender, *, store_id, sku_id, quantity, at, **_ignored) -> None:
    add_sell_in(day=business_day(at), store_id=store_id, sku_id=sku_id, units=int(quantity))
