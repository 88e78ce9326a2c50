"""The Prometheus metrics the app keeps, and how they are exposed (`/metrics`, `app/web/metrics.py`).

One process (tests, `flask run`): the metrics live in prometheus_client's default registry. Under gunicorn
`scripts/run` sets PROMETHEUS_MULTIPROC_DIR (a fresh directory each start) before any worker starts, so every
worker writes its counts to files there and whichever worker answers a scrape adds them all up
(`multiprocess.MultiProcessCollector`); gunicorn's `child_exit` hook (`gunicorn.conf.py`) marks a dead worker's
files. What is read at scrape time (the rollups' fold lag, the job queue) is no process's metric: it is computed by
the answering worker, fresh, by a collector of its own (`exposition(extra=...)`).

Every label is bounded: a route is its URL rule (never the raw path), a scan's reason one of the refusal codes
(`app.scans.messages.REFUSALS`) or `other`, a WeChat API one of the gateway's fixed names.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "call_refused", "count_scan", "exposition", "job_failed", "multiprocess",
           "observe_request", "replica_fallback", "timed_call"]

# Request latency: most answers take milliseconds; exports and WeChat calls take up to seconds.
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time from the request's start to its answer, by route template and status.",
    ("route", "method", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SCANS = Counter(
    "scans", "Store scans answered after their commit, one per item: by action, outcome and refusal reason.",
    ("action", "outcome", "reason"))
WECHAT_DURATION = Histogram(
    "wechat_call_duration_seconds", "Calls to WeChat and WeChat Pay, by API and outcome (ok or error).",
    ("api", "outcome"), buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0))
WECHAT_ERRORS = Counter(
    "wechat_call_errors", "Calls to WeChat and WeChat Pay that failed, by API and kind (timeout, or the error code).",
    ("api", "kind"))
REPLICA_FALLBACK = Counter(
    "replica_fallback", "Blocks of replica reads (dashboards, exports, reports) served by the primary instead, "
    "by reason: down (it does not answer), lag (too far behind), not_standby (not in recovery).", ("reason",))
JOBS_FAILED = Counter(
    "jobs_failed", "Background jobs that failed in this server's processes (inline, thread, or an RQ fallback).",
    ("mode",))

OUTCOMES = ("accepted", "duplicate", "refused", "replayed")
ACTIONS = ("receive", "sell", "return", "undo")


def multiprocess() -> bool:
    """Whether this process writes its metrics for a multiprocess scrape (gunicorn under scripts/run)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def count_scan(action: str | None, outcome: str, reason: str = "") -> None:
    """One scan item answered (call it once its work, if any, has committed). `reason` is for a refusal only, and
    the caller bounds it (the scans domain: one of its refusal codes, or `other`)."""
    SCANS.labels(action=action if action in ACTIONS else "other", outcome=outcome if outcome in OUTCOMES else "other",
                 reason=reason if outcome == "refused" else "").inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_DURATION.labels(route=route, method=method, status=str(status)).observe(seconds)


@contextlib.contextmanager
def timed_call(api: str, kind_of: Any = None) -> Iterator[None]:
    """Time one call to WeChat or WeChat Pay; a failure is counted by kind (`kind_of(exc)`, else its class)."""
    start = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        WECHAT_DURATION.labels(api=api, outcome="error").observe(time.perf_counter() - start)
        WECHAT_ERRORS.labels(api=api, kind=(kind_of(exc) if kind_of else None) or type(exc).__name__).inc()
        raise
    WECHAT_DURATION.labels(api=api, outcome="ok").observe(time.perf_counter() - start)


def call_refused(api: str, kind: str) -> None:
    """A call that never went out (no free slot): an error of its API, with no duration."""
    WECHAT_ERRORS.labels(api=api, kind=kind).inc()


def replica_fallback(reason: str) -> None:
    REPLICA_FALLBACK.labels(reason=reason if reason in ("down", "lag", "not_standby") else "other").inc()


def job_failed(mode: str) -> None:
    JOBS_FAILED.labels(mode=mode).inc()


class _Default:
    """The default registry's metrics, for a registry of one scrape."""

    def collect(self):
        return REGISTRY.collect()


def exposition(extra: Iterable[Any] = ()) -> bytes:
    """The text a scrape gets: every process's metrics (this one's alone without multiprocess mode), then the
    collectors in `extra`, computed now."""
    from prometheus_client import multiprocess as mp

    registry = CollectorRegistry()
    if multiprocess():
        mp.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
