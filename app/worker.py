"""The RQ worker's entry point (wiring): each worker process builds the app once and runs every job in a fresh
app context. `app.integrations.jobs.enqueue` names it by its dotted path, so the job queue needs no import of the
app; `scripts/worker` starts the workers."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app import create_app
from app.integrations.jobs import run_job

_app: Flask | None = None


def run_job_in_worker(path: str, *args: Any, **kwargs: Any) -> Any:
    """Run the job `path(*args, **kwargs)` in this worker's app."""
    global _app
    if _app is None:
        _app = create_app()
    with _app.app_context():
        return run_job(path, *args, **kwargs)
