"""The database unreachable (refused, restarting, connection lost): 503 `database_unavailable` with Retry-After.

A phone that gets a 503 with Retry-After retries by itself; a 500 tells it something is broken for good.
Errors that are not about the connection (a bad statement, a cancelled query) stay 500.
"""

from __future__ import annotations

import socket

import psycopg
import pytest
import sqlalchemy as sa

from tests.scans.helpers import body

HQ = "/api/hq/v1"
MP = "/api/mp/v1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_unavailable(resp):
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert resp.headers.get("Retry-After", "").isdigit() and int(resp.headers["Retry-After"]) > 0
    err = resp.get_json()["error"]
    assert err["code"] == "database_unavailable" and err["details"] == {}
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"])
    return err


@pytest.fixture()
def db_down(make_app):
    """An app whose database refuses connections (a PostgreSQL that is down or restarting)."""
    return make_app(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none",
                    TESTING=False, PROPAGATE_EXCEPTIONS=False)


def test_routes_answer_503_with_retry_after(db_down, owner):
    c = db_down.test_client()
    _assert_unavailable(c.post(f"{HQ}/sessions", json={"username": "admin", "password": "admin"}))
    _assert_unavailable(c.get(f"{MP}/me", headers=owner))
    _assert_unavailable(c.post(f"{MP}/scans", json=body("ABCDEFGHJKLMN"), headers=owner))


def _raising_app(make_app, exc: BaseException):
    app = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/api/test/db")
    def api_route():
        raise exc

    @app.get("/html/db")
    def html_route():
        raise exc

    return app.test_client()


@pytest.mark.parametrize("exc", [
    sa.exc.OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating connection due to "
                                                                          "administrator command")),
    sa.exc.OperationalError("SELECT 1", {}, psycopg.errors.CannotConnectNow("the database system is starting up")),
    sa.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed the connection unexpectedly")),
    sa.exc.InterfaceError("SELECT 1", {}, psycopg.InterfaceError("the connection is closed")),
    sa.exc.DBAPIError("SELECT 1", {}, psycopg.OperationalError("consuming input failed"), connection_invalidated=True),
    sa.exc.DisconnectionError("connection lost"),
    sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached, connection timed out"),
], ids=["admin_shutdown", "starting_up", "connection_lost", "interface_closed", "invalidated", "disconnection",
        "pool_timeout"])
def test_connection_errors_are_503(make_app, exc):
    c = _raising_app(make_app, exc)
    _assert_unavailable(c.get("/api/test/db"))
    page = c.get("/html/db", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.headers.get("Retry-After", "").isdigit()


@pytest.mark.parametrize("exc", [
    sa.exc.OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled("canceling statement due to user request")),
    sa.exc.ProgrammingError("SELEC 1", {}, psycopg.errors.SyntaxError("syntax error at or near SELEC")),
], ids=["query_cancelled", "syntax_error"])
def test_other_database_errors_stay_500(make_app, exc):
    resp = _raising_app(make_app, exc).get("/api/test/db")
    assert resp.status_code == 500 and resp.get_json()["error"]["code"] == "internal_error"
    assert "Retry-After" not in resp.headers


def test_a_handler_for_another_database_error_still_runs(make_app):
    """Another handler of OperationalError (e.g. SQLite's "database is locked") keeps its errors; ours, ours."""
    import sqlite3

    from flask import jsonify

    from app.errors import _register_database_unavailable

    app = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @app.errorhandler(sa.exc.OperationalError)
    def _locked(err):
        return jsonify({"error": {"code": "database_busy", "message": "忙", "details": {}}}), 503

    _register_database_unavailable(app, fallback=lambda err: ("unexpected", 500))
    errors = {
        # Not about the server being away (the lock wait is the handler's own `busy`): the earlier handler answers.
        "locked": sa.exc.OperationalError("UPDATE x", {}, sqlite3.OperationalError("no such table: x")),
        "gone": sa.exc.OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating connection")),
    }

    @app.get("/api/test/<name>")
    def raising(name):
        raise errors[name]

    c = app.test_client()
    assert c.get("/api/test/locked").get_json()["error"]["code"] == "database_busy"
    _assert_unavailable(c.get("/api/test/gone"))
