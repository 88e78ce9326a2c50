"""Logs: a request id in every line and every response header; one access line per request; text or JSON lines.

`LOG_FORMAT=json` (the default in production) writes one JSON object per line: `ts`, `level`, `logger`,
`message`, `request_id`, and inside a request `user_id`, `route` (the URL rule, never the raw path), `method`; the
access line (logger `app.access`) adds `status` and `duration_ms`; an exception is the field `exception`.
`LOG_FORMAT=text` (the default elsewhere) is the readable line it always was, with the request id in brackets.
The request's duration also feeds `http_request_duration_seconds` (`app.core.metrics`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

from app.core import metrics

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
access_log = logging.getLogger("app.access")
# The record's own attributes: everything else on a record (`extra=`) goes into the JSON line as a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_CONTEXT = ("request_id", "user_id", "route", "method")


def _user_id() -> int | None:
    principal = g.get("principal")
    return getattr(principal, "user_id", None)


def _route() -> str | None:
    rule = request.url_rule
    return rule.rule if rule is not None else None


class RequestIdFilter(logging.Filter):
    """Puts the request's id (and, for the JSON lines, its caller and route) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id", "-")
            if not hasattr(record, "route"):
                record.user_id, record.route, record.method = _user_id(), _route(), request.method
        else:
            record.request_id = "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key in _CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line and key not in _CONTEXT:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def setup_logging(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(app.config.get("LOG_FORMAT", "text")))
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
        g.request_started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if incoming and _VALID_ID.match(incoming) else os.urandom(16).hex()

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        started = g.pop("request_started", None)
        if started is not None:
            seconds = time.perf_counter() - started
            route = _route()
            # A path no rule matched (404, 405) is one label, whatever was asked for: the label set stays bounded.
            metrics.observe_request(route or "<unmatched>", request.method, response.status_code, seconds)
            access_log.info("%s %s %s %.1f ms", request.method, route or "<unmatched>", response.status_code,
                            seconds * 1000, extra={"status": response.status_code,
                                                   "duration_ms": round(seconds * 1000, 2),
                                                   "remote_addr": request.remote_addr})
        return response
