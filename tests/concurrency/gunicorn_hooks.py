"""gunicorn settings for the concurrency tests' server: only a hook that says when a worker can serve."""


def post_worker_init(worker):
    # After the worker has loaded wsgi:app; the fixture waits for this line from every worker.
    worker.log.info("live-server worker ready (pid %s)", worker.pid)
