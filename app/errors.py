"""One error family for the whole system, mapped once to the JSON shape of the HTTP contract.

Services raise `AppError` subclasses; the HTTP edge turns every error, including the ones raised by
Flask, werkzeug and webargs, into `{"error": {"code", "message", "details"}}` on `/api/` paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, jsonify, make_response, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    """A failure a client can act on: a stable code, an HTTP status and a short sentence for a person."""

    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(self, message: str | None = None, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(AppError):
    status, code, message = 422, "validation_failed", "填写的内容有误"


class Unauthorized(AppError):
    status, code, message = 401, "unauthorized", "请先登录"


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "没有权限"


class NotFound(AppError):
    status, code, message = 404, "not_found", "找不到要找的内容"


class Conflict(AppError):
    status, code, message = 409, "conflict", "操作与当前状态冲突"


class RateLimited(AppError):
    status, code, message = 429, "rate_limited", "操作太频繁，请稍后再试"


class ServiceUnavailable(AppError):
    status, code, message = 503, "service_unavailable", "服务暂时不可用，请稍后再试"


# Messages for the errors Flask and werkzeug raise before our code runs.
_HTTP_ERRORS = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限"),
    404: ("not_found", "找不到要找的内容"),
    405: ("method_not_allowed", "不支持这种请求方式"),
    409: ("conflict", "操作与当前状态冲突"),
    413: ("payload_too_large", "提交的内容太大"),
    415: ("unsupported_media_type", "请用 JSON 提交"),
    422: ("validation_failed", "填写的内容有误"),
    429: ("rate_limited", "操作太频繁，请稍后再试"),
    500: ("internal_error", "系统出错了，请稍后再试"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}


def error_body(status: int, code: str | None = None, message: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    default_code, default_message = _HTTP_ERRORS.get(status, ("error", "请求失败"))
    return {"error": {"code": code or default_code, "message": message or default_message,
                      "details": details or {}}}


def _wants_json() -> bool:
    path = request.path
    return path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


# A web area with pages of its own shows errors in its own layout: `register_error_page(app, "/hq/", render)`,
# where `render(status, message, details)` returns the response. Paths outside every such area keep the plain
# answers below.
ErrorPage = Callable[[int, str, dict[str, Any]], Any]


def register_error_page(app: Flask, prefix: str, render: ErrorPage) -> None:
    app.extensions.setdefault("error_pages", {})[prefix] = render


def _error_page(status: int, message: str | None = None, details: dict[str, Any] | None = None):
    """The area's own error page for this request, or None (an API path, a JSON client, or no such area)."""
    if _wants_json():
        return None
    for prefix, render in current_app.extensions.get("error_pages", {}).items():
        if request.path.startswith(prefix):
            try:
                return render(status, message or error_body(status)["error"]["message"], details or {})
            except Exception:  # the page itself failed: fall back to the plain answer rather than loop
                log.exception("error page for %s failed", prefix)
                return None
    return None


def register_error_handlers(app: Flask) -> None:
    """Map every exception to the contract's error shape on API paths."""

    @app.errorhandler(AppError)
    def _app_error(err: AppError):
        page = _error_page(err.status, err.message, err.details)
        if page is not None:
            return page
        return jsonify(err.to_dict()), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        if not _wants_json():
            data = getattr(err, "data", None)
            fields = (data or {}).get("messages") if isinstance(data, dict) else None
            page = _error_page(status, None, {"fields": _flatten_locations(fields)} if fields else None)
            if page is None:
                return err
            resp = make_response(page)
            _copy_headers(err, resp)
            return resp
        details: dict[str, Any] = {}
        code = message = None
        # webargs / flask-smorest attach the field errors here.
        data = getattr(err, "data", None) or {}
        messages = data.get("messages") if isinstance(data, dict) else None
        if messages:
            details["fields"] = _flatten_locations(messages)
        if status == 400 and (str(getattr(err, "description", "")).startswith("Failed to decode JSON")
                              or (messages or {}).get("json") == ["Invalid JSON body."]):
            code, message = "malformed_json", "提交的内容不是有效的 JSON"
            details = {}
        if status == 422:
            code, message = "validation_failed", "填写的内容有误"
        resp = jsonify(error_body(status, code, message, details))
        resp.status_code = status
        _copy_headers(err, resp)
        return resp

    @app.errorhandler(IntegrityError)
    def _integrity_error(err: IntegrityError):
        # A unique key taken by a concurrent request between our check and our insert: a conflict, not a crash.
        from app.extensions import db

        db.session.rollback()
        log.warning("integrity error: %s", err.orig)
        if not _wants_json():
            return _error_page(409, "数据已被其他操作修改，请刷新后重试") or ("操作与当前状态冲突", 409)
        return jsonify(error_body(409, "conflict", "数据已被其他操作修改，请刷新后重试")), 409

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        if not _wants_json():
            return _error_page(500) or ("系统出错了，请稍后再试", 500)
        return jsonify(error_body(500)), 500

    _register_database_unavailable(app, _unexpected)


# ---- the database unreachable ----------------------------------------------------------------------------------

DATABASE_UNAVAILABLE_MESSAGE = "系统暂时连不上数据库，请稍后再试"
# PostgreSQL SQLSTATEs that mean "the server is going away or not there yet": admin_shutdown, crash_shutdown,
# cannot_connect_now (starting up, in recovery), too_many_connections; and the whole connection-exception class.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_database_unavailable(err: BaseException) -> bool:
    """Whether `err` says the database cannot be reached right now (refused, restarting, connection lost).

    Only connection-level failures count: a cancelled query, a deadlock, a constraint or a bad statement is
    about this request, not about the server being away, and stays what it is.
    """
    import sqlalchemy as sa

    if isinstance(err, sa.exc.DisconnectionError | sa.exc.TimeoutError):
        return True  # the pool's own: a connection found dead, or none free in time
    if isinstance(err, sa.exc.DBAPIError):
        if err.connection_invalidated:
            return True
        err = err.orig
    import psycopg

    if isinstance(err, psycopg.Error):
        sqlstate = err.sqlstate
        if sqlstate is None:
            # Raised by the client, not the server: connection refused, closed, or lost mid-query.
            return isinstance(err, psycopg.OperationalError | psycopg.InterfaceError)
        return sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    import sqlite3

    if isinstance(err, sqlite3.OperationalError):
        return "unable to open database file" in str(err)
    return False


def is_sqlite_busy(exc: BaseException) -> bool:
    """Whether an error is SQLite's lock not granted in time ("database is locked"), as opposed to a fault."""
    orig = getattr(exc, "orig", exc)
    if type(orig).__module__ != "sqlite3":
        return False
    name = getattr(orig, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(orig)


def _register_database_unavailable(app: Flask, fallback) -> None:
    """503 with Retry-After for a database that cannot answer now: `busy` (SQLite's write lock not free in time) or
    `database_unavailable` (connection-level errors). Any other error of these classes goes to the handler registered
    for its class before this one, else to `fallback`; so register this last."""
    import psycopg
    import sqlalchemy as sa

    def _database_error(err: Exception, otherwise):
        from app.extensions import db

        if isinstance(err, sa.exc.OperationalError) and is_sqlite_busy(err):
            # SQLite's write lock still held by another writer after the busy timeout: ask the phone to retry.
            db.session.rollback()
            log.warning("database busy: %s", err.orig)
            if not _wants_json():
                return "系统繁忙，请稍后再试", 503, {"Retry-After": "2"}
            resp = jsonify(error_body(503, "busy", "系统繁忙，请稍后再试"))
            resp.status_code = 503
            resp.headers["Retry-After"] = "2"
            return resp
        if not is_database_unavailable(err):
            return otherwise(err)

        try:
            db.session.rollback()
        except Exception:  # the connection is gone; the session is reset by the rollback attempt regardless
            log.debug("rollback after a lost connection failed", exc_info=True)
        log.warning("database unavailable: %s: %s", type(err).__name__, str(getattr(err, "orig", err))[:200])
        retry_after = str(int(app.config.get("DB_RETRY_AFTER_SECONDS", 3)))
        if not _wants_json():
            return DATABASE_UNAVAILABLE_MESSAGE, 503, {"Retry-After": retry_after}
        resp = jsonify(error_body(503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE))
        resp.status_code = 503
        resp.headers["Retry-After"] = retry_after
        return resp

    registered = app.error_handler_spec[None][None]
    for cls in (sa.exc.DBAPIError, sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
                sa.exc.TimeoutError, psycopg.OperationalError, psycopg.InterfaceError):
        previous = registered.get(cls) or fallback
        app.register_error_handler(cls, lambda err, previous=previous: _database_error(err, previous))


def _copy_headers(err: HTTPException, resp) -> None:
    """The headers of werkzeug's answer a client acts on (which methods; when to retry)."""
    for name, value in (err.get_headers() if hasattr(err, "get_headers") else []):
        if name.lower() in {"allow", "retry-after"}:
            resp.headers[name] = value


def _flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests field errors under the location ("json", "query"); clients want the fields."""
    out: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out[location] = fields
    return out
