"""Run a use case again when the database aborted its transaction to break a deadlock or a serialization conflict.

Rows are locked in one global order (see `app.inventory.services`), so two use cases should never wait on each
other in a circle; where one still does (a row made by the transaction itself, an order that moved between a
look and a lock), PostgreSQL aborts one of them with SQLSTATE 40P01 (deadlock detected) or 40001 (serialization
failure). Nothing of an aborted transaction is kept, so running the whole use case again is safe: it is retried
a bounded number of times, each logged, before the error reaches anyone.

Only a whole use case is retried, from the start of its transaction: the function handed over must begin and
commit (or roll back) its own transactions. A retried use case that calls another one retries only as a whole.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

from app.extensions import db

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5
_PAUSE = 0.01  # seconds; the pause before attempt n is up to n times this, at random (so racers fall apart)
_ACTIVE = "retry_active"


def is_retryable(exc: BaseException) -> bool:
    """Whether the error is a deadlock or serialization failure the database raised (on any engine's driver)."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        if isinstance(exc, sa.exc.DBAPIError):
            exc = exc.orig
            continue
        exc = exc.__cause__
    return False


def run_retrying(use_case: Callable[[], _T], *, name: str, attempts: int = ATTEMPTS) -> _T:
    """`use_case()`, run again (up to `attempts` runs in all) while it fails with a deadlock or serialization
    failure; the last such error is raised."""
    session = db.session()
    if session.info.get(_ACTIVE):
        return use_case()  # inside a retried use case: the outer one runs again as a whole
    session.info[_ACTIVE] = True
    try:
        for attempt in range(1, attempts + 1):
            try:
                return use_case()
            except sa.exc.DBAPIError as exc:
                if not is_retryable(exc) or attempt == attempts:
                    if attempt > 1 or is_retryable(exc):
                        log.warning("%s: %s on attempt %d of %d; giving up", name, _sqlstate(exc), attempt,
                                    attempts)
                    raise
                db.session.rollback()
                log.warning("%s: %s on attempt %d of %d; running it again", name, _sqlstate(exc), attempt,
                            attempts)
                time.sleep(random.uniform(0, _PAUSE * attempt))
        raise AssertionError("unreachable")
    finally:
        session.info.pop(_ACTIVE, None)


def retried(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Decorate a use case (a function that owns its transactions) so that it is run with `run_retrying`."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        return run_retrying(lambda: fn(*args, **kwargs), name=fn.__qualname__)

    return wrapper


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    kind = {"40P01": "deadlock detected", "40001": "serialization failure"}.get(state, type(orig or exc).__name__)
    return f"{kind} (SQLSTATE {state})" if state else kind
