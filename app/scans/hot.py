"""The hot sell path on PostgreSQL: plain sells applied set-based by one SQL function, in one round trip.

Every unit a store sells comes through here first. `scan_sell_many` (in `sql/`) sells, in one statement and so
in one transaction, each item whose code is in the scanning store's stock and was shipped to it: the code, the
stock level and its ledger rows, the event, the incentive credit, the rollups and the stored answer. Whatever it
does not sell (a duplicate, a diverted unit, a replay, an unknown code) is left to the general path in
`services.py`, which answers it one by one; so does everything when the call fails for any reason.

Single sells that arrive at the same moment in one server process share one call (`sell_one`): the first
caller leads, runs everything queued, and hands the lead to the next waiter. Under load that is a group commit
(one transaction, one WAL flush, one update of a store's stock row for many units); alone, a sell runs at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.extensions import db
from app.scans import messages
from app.scans.models import BIZ_STEPS

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent / "sql"
# The function as this code expects it; migrations create the same text (see tests/test_migrations.py).
FUNCTION_FILE = SQL_DIR / "scan_sell_many_v1.sql"

_CALL = ("SELECT out_ord, out_answer FROM scan_sell_many(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
# The sold sentence as a PostgreSQL format() template, from the same text `messages.sold` formats.
_MESSAGE = messages.SOLD.format(name="%1$s", quantity="%2$s", unit="%3$s", on_hand="%4$s")
_STEP, _DISPOSITION = BIZ_STEPS["sell"]
# Followers give up waiting after this long and take the general path (the request_id makes that safe).
_WAIT_SECONDS = 30.0


@dataclass(slots=True)
class HotSell:
    """One sell the function may take: a serial already parsed and checked, the scanning store, its user."""

    user_id: int
    request_id: str
    serial: str
    gtin: str | None
    store_id: int
    at: datetime
    lat: float | None = None
    lng: float | None = None


def function_sql() -> str:
    return FUNCTION_FILE.read_text(encoding="utf-8")


def sell_many(items: Sequence[HotSell], *, tz: str) -> dict[int, str]:
    """Sell what can be sold of `items` in one call: their positions → the stored answer (JSON text).

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
        _now(), tz, _STEP, _DISPOSITION, _MESSAGE)
    return _call(params)


def _now() -> datetime:
    from app.core.clock import now_utc

    return now_utc()


def _call(params: tuple) -> dict[int, str]:
    """Run the function on a pooled connection in autocommit: the one statement is the whole transaction."""
    import psycopg

    pooled = db.engine.raw_connection()
    try:
        conn = pooled.driver_connection
        try:
            conn.autocommit = True
            rows = conn.execute(_CALL, params).fetchall()
        except psycopg.Error as exc:
            log.warning("scan_sell_many failed, the general path takes over: %s", exc.__class__.__name__,
                        exc_info=not isinstance(exc, psycopg.errors.RaiseException | psycopg.errors.UniqueViolation
                                                | psycopg.errors.DeadlockDetected))
            if conn.broken or conn.closed:
                pooled.invalidate(exc)
                db.engine.dispose()  # the server went away: every pooled connection went with it
            return {}
        finally:
            if not (conn.broken or conn.closed):
                conn.autocommit = False
    finally:
        pooled.close()
    return dict(rows)


# --- single sells: group commit within the process -------------------------------------------------------

class _Slot:
    __slots__ = ("answer", "done", "item", "lead")

    def __init__(self, item: HotSell):
        self.item, self.answer, self.lead = item, None, False
        self.done = threading.Event()


class _Combiner:
    """Sells queued while a call runs go together in the next call, led by the first of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._leading = False

    def sell(self, item: HotSell, tz: str) -> str | None:
        slot = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            slot.lead = not self._leading
            self._leading = True
        if not slot.lead and not slot.done.wait(_WAIT_SECONDS):
            with self._lock:
                if not slot.lead and slot in self._queue:
                    self._queue.remove(slot)
                    log.warning("a queued sell waited %.0f s; the general path takes it", _WAIT_SECONDS)
                    return None
            slot.done.wait()  # taken into a running call, or handed the lead, meanwhile
        if slot.lead:
            self._run_batch(tz)
        return slot.answer

    def _run_batch(self, tz: str) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        answers: dict[int, str] = {}
        try:
            answers = sell_many([s.item for s in batch], tz=tz)
        except Exception:  # a bug here must not fail the sells: the general path answers them
            log.exception("the hot sell path failed; the general path takes over")
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
                if successor is not None:
                    successor.lead = True
            for i, s in enumerate(batch):
                s.answer = answers.get(i)
                s.done.set()
            if successor is not None:
                successor.done.set()


_combiner = _Combiner()


def sell_one(item: HotSell, *, tz: str) -> str | None:
    """One sell through the process's combiner: the stored answer (JSON text), or None for the general path."""
    return _combiner.sell(item, tz)
