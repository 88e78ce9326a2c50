"""Background jobs: RQ workers in production, in-process otherwise.

Modes (setting `JOBS_MODE`): `rq` puts jobs on Redis for `scripts/worker`; `thread` runs them on a small pool
in this process (the demo server, so a long job does not hold a request); `inline` runs them at once (tests).
Enqueue only after the transaction that made the work has committed: a job must never see uncommitted data.
"""

from __future__ import annotations

import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)
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


def _run_in_app(app: Flask, path: str, args: tuple, kwargs: dict) -> None:
    with app.app_context():
        try:
            run_job(path, *args, **kwargs)
        except Exception:
            log.exception("job %s failed", path)


def enqueue(path: str, *args: Any, retries: int = 0, **kwargs: Any) -> str | None:
    """Queue `path(*args, **kwargs)`; returns the RQ job id when there is one."""
    app = current_app._get_current_object()
    mode = app.config["JOBS_MODE"]
    if mode == "rq":
        from redis import Redis
        from rq import Queue, Retry

        queue = Queue("default", connection=Redis.from_url(app.config["REDIS_URL"]))
        retry = Retry(max=retries, interval=[10, 60, 300][:max(retries, 1)]) if retries else None
        job = queue.enqueue("app.integrations.jobs.run_job_in_worker", path, *args, retry=retry, **kwargs)
        return job.id
    if mode == "thread":
        global _pool
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jobs")
        _pool.submit(_run_in_app, app, path, args, kwargs)
        return None
    # inline: run now, in a fresh app context so the caller's session is untouched.
    _run_in_app(app, path, args, kwargs)
    return None


_worker_app: Flask | None = None


def run_job_in_worker(path: str, *args: Any, **kwargs: Any) -> Any:
    """Entry point for RQ workers: one app per worker process, one app context per job."""
    global _worker_app
    if _worker_app is None:
        from app import create_app

        _worker_app = create_app()
    with _worker_app.app_context():
        return run_job(path, *args, **kwargs)
