"""Background jobs: RQ workers in production, in-process otherwise.

Modes (setting `JOBS_MODE`): `rq` puts jobs on Redis for `scripts/worker`; `thread` runs them on a small pool
in this process (the demo server, so a long job does not hold a request); `inline` runs them at once (tests).
Enqueue only after the transaction that made the work has committed: a job must never see uncommitted data.

Redis is optional at run time: when a job cannot be put on the queue (Redis unreachable), it runs on this
process's pool instead, and the log says so. Work whose job is lost anyway (the process dies between the commit
and the enqueue) is found again by a sweeper (`app.codes.services.sweep_pending_batches`, run from app/cron.py).
"""

from __future__ import annotations

import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app

from app.core import metrics

log = logging.getLogger(__name__)
# What an RQ worker runs for every job (the wiring: it builds the app once per worker process).
WORKER_ENTRY = "app.worker.run_job_in_worker"
_pool: ThreadPoolExecutor | None = None


def _resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def run_job(path: str, *args: Any, **kwargs: Any) -> Any:
    """Run a job function by dotted path inside an app context (what a worker calls)."""
    from app.extensions import db

    try:
        return _resolve(path)(*args, **kwargs)
    finally:
        db.session.remove()


def _run_in_app(app: Flask, path: str, args: tuple, kwargs: dict, mode: str = "inline") -> None:
    with app.app_context():
        try:
            run_job(path, *args, **kwargs)
        except Exception:
            metrics.job_failed(mode)
            log.exception("job %s failed", path)


def _queue_redis(app: Flask):
    """One Redis client per app and process for the queue, with bounded waits (an unanswering Redis)."""
    client = app.extensions.get("jobs_redis")
    if client is None:
        from redis import Redis

        client = app.extensions["jobs_redis"] = Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)
    return client


def _submit_here(app: Flask, path: str, args: tuple, kwargs: dict, mode: str = "thread") -> None:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jobs")
    _pool.submit(_run_in_app, app, path, args, kwargs, mode)


def enqueue(path: str, *args: Any, retries: int = 0, **kwargs: Any) -> str | None:
    """Queue `path(*args, **kwargs)`; returns the RQ job id when there is one."""
    app = current_app._get_current_object()
    mode = app.config["JOBS_MODE"]
    if mode == "rq":
        from redis import RedisError
        from rq import Queue, Retry

        queue = Queue("default", connection=_queue_redis(app))
        retry = Retry(max=retries, interval=[10, 60, 300][:max(retries, 1)]) if retries else None
        try:
            job = queue.enqueue(WORKER_ENTRY, path, *args, retry=retry, **kwargs)
        except RedisError as exc:
            # The queue is down, the work is committed: do it here rather than leave it waiting for nobody.
            log.warning("jobs: cannot queue %s (Redis: %s): running it in this process", path,
                        exc.__class__.__name__)
            _submit_here(app, path, args, kwargs, "rq_fallback")
            return None
        return job.id
    if mode == "thread":
        _submit_here(app, path, args, kwargs)
        return None
    # inline: run now, in a fresh app context so the caller's session is untouched.
    _run_in_app(app, path, args, kwargs, "inline")
    return None


QUEUES = ("default",)


def queue_stats(app: Flask) -> dict[str, tuple[int, int]]:
    """Per RQ queue: the jobs waiting and the jobs in its failed registry (two reads of Redis each)."""
    from rq import Queue

    out = {}
    for name in QUEUES:
        queue = Queue(name, connection=_queue_redis(app))
        out[name] = (queue.count, queue.failed_job_registry.count)
    return out

