"""Helpers shared by tests: clearing the database, snapshots and the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from app.core import partitions
from app.extensions import db


def clear_tables() -> None:
    """Delete every row of every table (and reset the ids), whatever the engine."""
    db.session.remove()
    tables = [t.name for t in db.metadata.sorted_tables]
    if db.engine.dialect.name == "postgresql":
        _clear_postgres(tables)
        return _forget_cached_users()
    with db.engine.begin() as conn:
        conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
        for t in reversed(tables):
            conn.execute(sa.text(f'DELETE FROM "{t}"'))
        conn.execute(sa.text("DELETE FROM sqlite_sequence")) if conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first() else None
        conn.execute(sa.text("PRAGMA foreign_keys=ON"))
    _forget_cached_users()


def _clear_postgres(tables: list[str]) -> None:
    """DELETE the few rows a test leaves, with foreign-key triggers off, and restart every id sequence: much
    cheaper than a TRUNCATE, which makes new files for each of the hundreds of tables, partitions and indexes.
    Without the right to switch triggers off (not a superuser), TRUNCATE as before."""
    try:
        with db.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for t in tables + partitions.side_tables(conn):
                conn.execute(sa.text(f'DELETE FROM "{t}"'))
            conn.execute(sa.text("SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) "
                                 "FROM pg_sequences WHERE schemaname = current_schema()"))
    except sa.exc.DBAPIError:
        with db.engine.begin() as conn:
            tables = tables + partitions.side_tables(conn)  # the unique keys of partitioned scan_events
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))


def _forget_cached_users() -> None:
    # User ids start again from 1: what this process cached about the old users' token versions is void.
    from flask import current_app

    current_app.extensions["token_versions"].forget_all()


def table_counts() -> dict[str, int]:
    """Rows in every table the models know, read in a fresh session."""
    db.session.remove()
    with db.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in db.metadata.sorted_tables}


def table_snapshot(*names: str) -> dict[str, list[tuple]]:
    """Every row of the named tables (for checking that nothing was updated in place)."""
    db.session.remove()
    out = {}
    with db.engine.connect() as conn:
        for name in names:
            table = db.metadata.tables[name]
            out[name] = sorted(tuple(map(repr, row)) for row in conn.execute(sa.select(table)))
    return out


@contextmanager
def assert_db_unchanged(*snapshot_tables: str) -> Iterator[None]:
    """Fail if the block changes the row count of any table (or any row of `snapshot_tables`)."""
    before, rows_before = table_counts(), table_snapshot(*snapshot_tables)
    yield
    after, rows_after = table_counts(), table_snapshot(*snapshot_tables)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert not changed, f"row counts changed (before, after): {changed}"
    assert rows_before == rows_after, "rows changed in " + ", ".join(
        t for t in snapshot_tables if rows_before[t] != rows_after[t])


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The response is the contract's error shape with this status (and code); returns the error."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/json", resp.mimetype
    body = resp.get_json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and err["code"], err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["details"], dict), err
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    if code is not None:
        assert err["code"] == code, err
    assert resp.headers.get("X-Request-ID")
    return err


# Settings that pass the production start-up checks (tests/test_config.py, tests/web_security).
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "k" * 48,
    "DEMO_ADMIN_PASSWORD": "a-long-and-unguessable-password",
    "WECHAT_MODE": "real",
    "WECHAT_APPID": "wx1234567890abcdef",
    "WECHAT_SECRET": "0123456789abcdef0123456789abcdef",
    "DATABASE_URL": "postgresql://app:pw@db.internal:5432/channel",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "WECHATPAY_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
    "WECHATPAY_CERT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A72",
    "WECHATPAY_APIV3_KEY": "v" * 32,
    "WECHATPAY_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----",
    "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0000000000000000000000",
    "METRICS_TOKEN": "m" * 40,
}


def aborted_by_navigation(request) -> bool:
    """A request the browser itself abandoned because the page moved on (Chromium cancels a still-loading
    favicon on every navigation): not a failure of the app. Anything else that fails is."""
    return request.url.endswith("/favicon.svg") and "ERR_ABORTED" in (request.failure or "")


def console_login(client, username: str = "admin", password: str = "admin"):
    """Log into the HQ console as a person would (the login form with its CSRF token); returns the answer."""
    import re

    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    return client.post("/hq/login", data={"username": username, "password": password, "csrf": csrf})
