"""Helpers for the console's page tests: log in through the form, read a page's CSRF token and its field errors."""

from __future__ import annotations

import re
from html import unescape

HUGE = 2**63  # one past the largest id the database holds


def csrf_of(client, path="/hq/login"):
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def login(client, username="admin"):
    """Log in on the console's form (every demo login's password is `admin`); the session's CSRF token."""
    resp = client.post("/hq/login", data={"username": username, "password": "admin", "csrf": csrf_of(client)})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return csrf_of(client, "/hq/")


def field_error(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<span class="field-error" role="alert">([^<]+)</span>', html)]
