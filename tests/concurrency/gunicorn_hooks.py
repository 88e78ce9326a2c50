"""gunicorn settings for the concurrency tests' server: the project's own (gunicorn.conf.py: the metrics directory
emptied at start, dead workers marked, JSON logs), and a hook that says when a worker can serve."""

import runpy
from pathlib import Path

_project = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
on_starting = _project["on_starting"]
child_exit = _project["child_exit"]
if "logconfig_dict" in _project:  # LOG_FORMAT=json
    logconfig_dict = _project["logconfig_dict"]


def post_worker_init(worker):
    # After the worker has loaded wsgi:app; the fixture waits for this line from every worker.
    worker.log.info("live-server worker ready (pid %s)", worker.pid)
