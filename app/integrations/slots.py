"""A bound on how many request threads of this process may wait on WeChat (and WeChat Pay) at once.

gunicorn gives each worker a few threads (`scripts/run`: 4). Without a bound, a WeChat that stops answering holds
every one of them for a whole timeout per call, and a store's sell waits behind logins it has nothing to do
with. With one, at most `size` threads wait on WeChat; a request that finds every slot taken fails at once
(503, "busy") instead of queueing, so the other threads stay free for scans. Background jobs (RQ workers,
the in-process pool) are not request threads and are not counted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import requests
from flask import has_request_context

log = logging.getLogger(__name__)


class CallSlots:
    """`size` slots shared by the WeChat and WeChat Pay gateways of one app in one process."""

    def __init__(self, size: int, wait: float = 0.0):
        if size < 1:
            raise ValueError("at least one slot")
        self.size = size
        self.wait = wait
        self._slots = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def slot(self, busy: Callable[[], Exception]) -> Iterator[None]:
        """Hold a slot for one call; raise `busy()` if none is free within `wait` seconds."""
        if not has_request_context():
            yield
            return
        taken = self._slots.acquire(timeout=self.wait) if self.wait > 0 else self._slots.acquire(blocking=False)
        if not taken:
            log.warning("outbound WeChat calls: all %s slots of this process are taken: refusing at once", self.size)
            raise busy()
        try:
            yield
        finally:
            self._slots.release()


def slots_for(app) -> CallSlots:
    """The app's slots (made on first use from WECHAT_MAX_CONCURRENT_CALLS and WECHAT_BUSY_WAIT_SECONDS)."""
    slots = app.extensions.get("wechat_slots")
    if slots is None:
        with _lock:
            slots = app.extensions.get("wechat_slots")
            if slots is None:
                slots = app.extensions["wechat_slots"] = CallSlots(
                    int(app.config.get("WECHAT_MAX_CONCURRENT_CALLS") or 2),
                    float(app.config.get("WECHAT_BUSY_WAIT_SECONDS") or 0.0))
    return slots


def error_kind(exc: BaseException) -> str | None:
    """How a failed WeChat or WeChat Pay call is counted: `timeout`, or the error's code."""
    cause = exc.__cause__
    if isinstance(cause, requests.Timeout):
        return "timeout"
    if isinstance(cause, requests.ConnectionError):
        return "unreachable"
    return getattr(exc, "code", None)


_lock = threading.Lock()
