"""The hot sell path on PostgreSQL: a plain sell applied by one SQL function, in one round trip.

Every unit a store sells comes through here first. The functions in `sql/` sell, in one statement and so in
one transaction, each item whose code is in the scanning store's stock and was shipped to it: the code, the
stock level and its ledger row, the event (which keeps the request, for replays), the incentive credit and the
sale for the rollups.
`scan_sell_one` takes one sell with single-row statements; `scan_sell_many` takes a batch's run of sells
set-based. Whatever they do not sell (a duplicate, a diverted unit, a replay, an unknown code) is left to the
general path in `services.py`, which answers it one by one; so is everything when a call fails for any reason.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.codes.models import BIZ_STEPS
from app.core.clock import now_utc
from app.extensions import db
from app.scans import messages

log = logging.getLogger(__name__)


_ONE = "SELECT scan_sell_one(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_MANY = "SELECT out_ord, out_answer FROM scan_sell_many(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
# The sold sentence as a PostgreSQL format() template, from the same text `messages.sold` formats.
_MESSAGE = messages.SOLD.format(name="%1$s", quantity="%2$s", unit="%3$s", on_hand="%4$s")
_STEP, _DISPOSITION = BIZ_STEPS["sell"]


@dataclass(slots=True)
class HotSell:
    """One sell a function may take: a serial already parsed and checked, the scanning store, its user."""

    user_id: int
    request_id: str
    serial: str
    gtin: str | None
    store_id: int
    at: datetime
    lat: float | None = None
    lng: float | None = None


def sell_one(item: HotSell, *, tz: str) -> str | None:
    """Sell one unit: the answer (JSON text), or None for the general path. Never raises on a database error."""
    rows = _call(_ONE, (item.user_id, item.request_id, item.serial, item.gtin, item.store_id, item.at, item.lat,
                        item.lng, now_utc(), tz, _STEP, _DISPOSITION, _MESSAGE))
    return rows[0][0] if rows else None


def sell_many(items: Sequence[HotSell], *, tz: str) -> dict[int, str]:
    """Sell what can be sold of `items` in one call: their positions → the answer (JSON text).

    A position missing from the result takes the general path. A repeated serial or request in `items` is left
    to the general path too (after this call, it sees the first one done). Never raises on a database error.
    """
    seen_serials: set[str] = set()
    seen_requests: set[tuple[int, str]] = set()
    chosen: list[tuple[int, HotSell]] = []
    for i, it in enumerate(items):
        key = (it.user_id, it.request_id)
        if it.serial in seen_serials or key in seen_requests:
            continue
        seen_serials.add(it.serial)
        seen_requests.add(key)
        chosen.append((i, it))
    if not chosen:
        return {}
    chosen.sort(key=lambda pair: pair[1].serial)  # codes are locked in serial order by every caller
    params = (
        [i for i, _ in chosen], [it.user_id for _, it in chosen], [it.request_id for _, it in chosen],
        [it.serial for _, it in chosen], [it.gtin for _, it in chosen], [it.store_id for _, it in chosen],
        [it.at for _, it in chosen], [it.lat for _, it in chosen], [it.lng for _, it in chosen],
        now_utc(), tz, _STEP, _DISPOSITION, _MESSAGE)
    return dict(_call(_MANY, params))


def _call(sql: str, params: tuple) -> list[tuple[Any, ...]]:
    """Run one function on a kept autocommit connection: the one statement is the whole transaction."""
    import psycopg

    hot = _hot_connections(db.engine)
    try:
        conn = hot.take()
    except (psycopg.Error, sa.exc.DBAPIError) as exc:  # the server is down or full: the general path decides
        log.warning("no connection for the hot sell path (%s); the general path takes over", exc.__class__.__name__)
        return []
    try:
        return conn.cursor().execute(sql, params).fetchall()
    except psycopg.Error as exc:
        expected = isinstance(exc, psycopg.errors.RaiseException | psycopg.errors.UniqueViolation
                              | psycopg.errors.DeadlockDetected) or exc.sqlstate == "SC001"
        log.warning("the hot sell path failed (%s); the general path takes over", exc.sqlstate or
                    exc.__class__.__name__, exc_info=not expected)
        if conn.broken or conn.closed:
            db.engine.dispose()  # the server went away: every pooled connection went with it
        return []
    finally:
        hot.give(conn)


class _HotConnections:
    """Autocommit connections kept for the hot path, per engine and process.

    Taking one is a queue read: a checkout from SQLAlchemy's pool, with its events, its reset on return and the
    switch to autocommit and back, cost a sell about as much CPU on the app server as the round trip itself.
    At most `size` are open (the pool's size: more threads than that wait their turn); a broken one is
    dropped, and all close when the engine is disposed.
    """

    def __init__(self, engine: sa.Engine, size: int):
        self.engine, self.pid = engine, os.getpid()
        self.idle: queue.SimpleQueue = queue.SimpleQueue()
        self.slots = threading.BoundedSemaphore(size)

    def take(self):
        self.slots.acquire()
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            pass
        try:
            pooled = self.engine.raw_connection()  # the dialect's connect-time set-up, then ours alone
            conn = pooled.driver_connection
            pooled.detach()
            conn.autocommit = True
            return conn
        except BaseException:
            self.slots.release()
            raise

    def give(self, conn) -> None:
        if conn.broken or conn.closed:
            conn.close()
        else:
            self.idle.put(conn)
        self.slots.release()

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return


_by_engine: weakref.WeakKeyDictionary[sa.Engine, _HotConnections] = weakref.WeakKeyDictionary()
_by_engine_lock = threading.Lock()


def _hot_connections(engine: sa.Engine) -> _HotConnections:
    hot = _by_engine.get(engine)
    if hot is not None and hot.pid == os.getpid():
        return hot
    with _by_engine_lock:
        hot = _by_engine.get(engine)
        if hot is None or hot.pid != os.getpid():  # a forked child never uses its parent's sockets
            size = getattr(engine.pool, "size", lambda: 10)() or 32  # 0: the pool has no limit
            hot = _by_engine[engine] = _HotConnections(engine, size=size)
            sa.event.listen(engine, "engine_disposed", lambda _engine, hot=hot: hot.close())
        return hot
