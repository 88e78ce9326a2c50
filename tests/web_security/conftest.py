"""Apps in development and in production settings over the test database, and a logged-in console."""

from __future__ import annotations

import re

import pytest


@pytest.fixture()
def production_app(make_app, monkeypatch):
    """The app as `APP_ENV=production` builds it, over the test database.

    The start-up check would refuse the test database (SQLite) and the fake WeChat; what it demands of the
    cookies is tested on its own (test_headers.py), so here it is skipped.
    """
    monkeypatch.setattr("app.check_production", lambda cfg: None)
    return make_app(APP_ENV="production")


def csrf_of(client, path="/hq/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def console_login(client, username="admin", password="admin"):
    resp = client.post("/hq/login", data={"username": username, "password": password, "csrf": csrf_of(client)})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp
