"""How a sale reaches the rollups: one row in `sales_inbox`, written in the sale's own transaction.

The hot sell path's SQL functions (`sql/scan_sell_*_v2.sql`) append their row in SQL; every other sale, return
or undone sale appends its row here, with the same columns, the day bucketed the same way (the device's time in
the business time zone, `app.core.clock.BUSINESS_TZ`). `app.analytics.rollups.fold` then adds each row to the
rollups exactly once. There is no second way: no signal to listen to (see `app.core.events`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.core.clock import business_day
from app.extensions import db

# The analytics table, named here as the SQL functions name it (scans sits below analytics in the import order).
_INBOX = sa.table("sales_inbox", sa.column("day", sa.Date), sa.column("sku_id", sa.BigInteger),
                  sa.column("store_id", sa.BigInteger), sa.column("units", sa.Integer),
                  sa.column("amount_fen", sa.BigInteger))


def note_sale(*, store_id: int, sku_id: int, quantity: int, at: datetime, amount_fen: int = 0,
              event_id: int | None = None) -> None:
    """Append a sale (a negative quantity for a return or an undone sell) to the inbox, in the caller's
    transaction; `at` is the time of the sale (an undo's is the undone scan's). `event_id`, the event it came from,
    is not kept (the inbox is per cell): it is taken so that a rebuild's events (`rollups.sell_events`) replay as
    they are."""
    db.session.execute(sa.insert(_INBOX).values(day=business_day(at), store_id=store_id, sku_id=sku_id,
                                                units=int(quantity), amount_fen=int(amount_fen or 0)))
