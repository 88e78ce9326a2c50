"""gunicorn's settings for this app (`scripts/run` passes this file; `gunicorn wsgi:app` run from here reads it too).

Only what the app needs of the server process; the bind, workers and threads are given on the command line.

Metrics: with PROMETHEUS_MULTIPROC_DIR set (scripts/run sets it to a fresh directory), every worker writes its
Prometheus counts to files there and `/metrics` adds them all up (`app/core/metrics.py`). The directory is emptied
when the server starts (counts of an earlier server must not be added to this one's), and a worker that exits is
marked dead, so its live gauges leave the sums (its counters stay: what it counted did happen).

Logs: with LOG_FORMAT=json (production's default) gunicorn's own lines (workers booting, timing out, exiting; its
access log when one is asked for) are JSON lines too, as the app's are (`app/logging_setup.py`).
"""

import os
from pathlib import Path


def _log_format() -> str:
    default = "json" if os.environ.get("APP_ENV") == "production" else "text"
    return (os.environ.get("LOG_FORMAT") or default).strip().lower()


if _log_format() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.logging_setup.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
        # The app adds its own handler to the root logger (with the request's id, user and route).
        "root": {"level": "INFO", "handlers": []},
    }


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
