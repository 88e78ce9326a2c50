"""A request id in every log line and every response header."""

from __future__ import annotations

import logging
import os
import re

from flask import Flask, g, has_request_context, request

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def setup_logging(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    # Alembic announces each of its plugins at INFO whenever an app is built: noise on every `flask` command.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if not any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        root.addHandler(handler)
        root.setLevel(logging.INFO if not app.testing else logging.WARNING)

    @app.before_request
    def _assign_request_id():
        # `g` lives on the app context, which a request reuses when one is already pushed (tests, CLI, jobs):
        # never let one request's caller leak into the next.
        g.pop("principal", None)
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if incoming and _VALID_ID.match(incoming) else os.urandom(16).hex()

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        return response
