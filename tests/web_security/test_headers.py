"""Every kind of page defends itself: security headers, cookie flags, session rotation at login.

Each kind (console login, a console page logged in, the consumer page, the API docs, JSON answers, error pages,
static files) is fetched in development and in production settings, and every header and cookie flag is checked.
The HTML of each page is checked for what the Content-Security-Policy would block (inline scripts, styles and
handlers, resources from elsewhere), and each resource it links is fetched: the page works under its own policy.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from app.config import ConfigError, check_production, load_config
from tests.conftest import hq_login, mp_login
from tests.scans.helpers import codes_in
from tests.web_security.conftest import console_login, csrf_of

YEAR = 365 * 24 * 3600


def csp_of(resp) -> dict[str, list[str]]:
    value = resp.headers.get("Content-Security-Policy", "")
    assert value, f"no Content-Security-Policy on {resp.request.path}"
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def source_list(csp: dict[str, list[str]], directive: str) -> list[str]:
    """The sources a fetch directive allows, falling back to default-src as browsers do."""
    return csp.get(directive, csp.get("default-src", ["*"]))


class _Page(HTMLParser):
    """What a page loads and what of it runs inline."""

    def __init__(self):
        super().__init__()
        self.resources: list[tuple[str, str]] = []  # (kind, url)
        self.inline: list[str] = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...> (inline handler)")
            if name == "style":
                self.inline.append(f"<{tag} style=...> (inline style attribute)")
            if value and value.strip().lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            if a.get("src"):
                self.resources.append(("script", a["src"]))
            else:
                self._in = "script"
        elif tag == "style":
            self.inline.append("<style> element")
        elif tag == "link" and a.get("href") and set((a.get("rel") or "").split()) & {"stylesheet", "icon"}:
            self.resources.append(("style" if "stylesheet" in a["rel"] else "img", a["href"]))
        elif tag == "img" and a.get("src"):
            self.resources.append(("img", a["src"]))

    def handle_data(self, data):
        if self._in == "script" and data.strip():
            self.inline.append("inline <script>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None


def assert_html_headers(resp, production: bool) -> None:
    h = resp.headers
    assert resp.mimetype == "text/html", resp.mimetype
    csp = csp_of(resp)
    for directive in ("script-src", "style-src", "img-src", "font-src", "connect-src", "object-src"):
        allowed = source_list(csp, directive)
        assert set(allowed) <= {"'self'", "'none'"}, (directive, allowed)
    assert csp.get("frame-ancestors") == ["'none'"], csp
    assert csp.get("base-uri") in (["'none'"], ["'self'"]), csp
    assert csp.get("form-action") == ["'self'"], csp
    assert source_list(csp, "object-src") == ["'none'"], csp
    assert h.get("X-Frame-Options") == "DENY"
    assert h.get("X-Content-Type-Options") == "nosniff"
    assert h.get("Referrer-Policy") == "same-origin"
    hsts = h.get("Strict-Transport-Security")
    if production:
        assert hsts and int(re.search(r"max-age=(\d+)", hsts).group(1)) >= YEAR, hsts
    else:
        assert hsts is None, hsts


def assert_page_runs_under_its_policy(client, resp) -> None:
    """No inline script, style or handler; everything the page loads is this app's own and is there."""
    page = _Page()
    page.feed(resp.get_data(as_text=True))
    assert not page.inline, (resp.request.path, page.inline)
    for kind, url in page.resources:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), (kind, url)
        got = client.get(url)
        assert got.status_code == 200, (url, got.status_code)
        want = {"style": "text/css", "script": "text/javascript", "img": "image/"}[kind]
        assert got.mimetype.startswith(want), (url, got.mimetype)
        assert got.headers.get("X-Content-Type-Options") == "nosniff", url
        got.close()


def assert_json_headers(resp, personal: bool) -> None:
    assert resp.mimetype == "application/json", resp.mimetype
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    if personal:
        assert "no-store" in resp.headers.get("Cache-Control", ""), (resp.request.path, resp.headers)


def set_cookies(resp) -> list[str]:
    return resp.headers.getlist("Set-Cookie")


@pytest.fixture(params=["development", "production"])
def env_app(request, app, demo):
    if request.param == "development":
        return app, False
    return request.getfixturevalue("production_app"), True


@pytest.fixture()
def web(env_app):
    application, production = env_app
    client = application.test_client()
    if production:
        client.environ_base["wsgi.url_scheme"] = "https"  # as the load balancer's HTTPS reaches the browser
    return client, production


def test_console_login_page(web):
    client, production = web
    resp = client.get("/hq/login")
    assert resp.status_code == 200
    assert_html_headers(resp, production)
    assert "no-store" in resp.headers.get("Cache-Control", "")
    assert_page_runs_under_its_policy(client, resp)


def test_console_login_cookie_flags_and_rotation(web):
    client, production = web
    before = client.get("/hq/login")
    (pre_cookie,) = set_cookies(before)
    pre_value = pre_cookie.split(";", 1)[0]
    pre_csrf = csrf_of(client)

    resp = console_login(client)
    (cookie,) = set_cookies(resp)
    flags = [f.strip().lower() for f in cookie.split(";")[1:]]
    assert "httponly" in flags, cookie
    assert "samesite=lax" in flags or "samesite=strict" in flags, cookie
    assert "path=/" in flags, cookie
    assert not any(f.startswith("domain=") for f in flags), cookie
    if production:
        assert "secure" in flags, cookie
        assert cookie.startswith("__Host-"), cookie  # only over HTTPS, only for this host, path /
    else:
        assert "secure" not in flags, cookie

    # Rotated at login: a new cookie, a new CSRF token; the cookie from before login is still a stranger.
    assert cookie.split(";", 1)[0] != pre_value
    after_csrf = csrf_of(client, "/hq/")
    assert after_csrf != pre_csrf
    stranger = client.application.test_client()
    name, value = pre_value.split("=", 1)
    stranger.set_cookie(name, value, domain="localhost")
    replay = stranger.get("/hq/")
    assert replay.status_code == 302 and "/hq/login" in replay.headers["Location"]


def test_console_page_logged_in(web):
    client, production = web
    console_login(client)
    for path in ("/hq/", "/hq/sell-through?group_by=day", "/hq/store-stock", "/hq/plans", "/hq/alerts",
                 "/hq/code-batches", "/hq/territories"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert_html_headers(resp, production)
        assert "no-store" in resp.headers.get("Cache-Control", ""), path
        assert_page_runs_under_its_policy(client, resp)


def test_console_export_is_not_stored(web):
    client, _production = web
    console_login(client)
    resp = client.get("/hq/api/sell-through?group_by=city&format=csv")
    assert resp.status_code == 200
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert "no-store" in resp.headers.get("Cache-Control", "")


def test_consumer_page(web, app):
    client, production = web
    from app.catalog.models import Sku
    from app.extensions import db

    with app.app_context():
        code = codes_in("S1")[0]
        gtin = db.session.get(Sku, code.sku_id).gtin
    resp = client.get(f"/c/01/{gtin}/21/{code.serial}")
    assert resp.status_code == 200 and "正品" in resp.get_data(as_text=True)
    assert_html_headers(resp, production)
    assert "no-store" in resp.headers.get("Cache-Control", "")  # each check counts: never a cached answer
    # A consumer gets one cookie only, not a session: the phone's random check counter (a reload is not another
    # check), HttpOnly, SameSite=Lax, and in production Secure and host-only (`__Host-`).
    cookies = set_cookies(resp)
    assert len(cookies) == 1 and cookies[0].startswith("__Host-vid=" if production else "vid="), cookies
    assert "HttpOnly" in cookies[0] and "SameSite=Lax" in cookies[0] and "Path=/" in cookies[0], cookies
    assert ("Secure" in cookies[0]) == production and "Domain" not in cookies[0], cookies
    assert_page_runs_under_its_policy(client, resp)

    js = client.get(f"/c/01/{gtin}/21/{code.serial}", headers={"Accept": "application/json"})
    assert_json_headers(js, personal=True)
    assert not set_cookies(js)


def test_api_docs_page(web):
    client, production = web
    resp = client.get("/api/docs")
    assert resp.status_code == 200
    assert_html_headers(resp, production)
    assert_page_runs_under_its_policy(client, resp)
    spec = client.get("/api/openapi.json")
    assert_json_headers(spec, personal=False)


def test_json_answers(web, app):
    client, production = web
    login = client.post("/api/mp/v1/sessions", json={"code": "demo:demo_store_owner"})
    assert login.status_code == 201
    assert_json_headers(login, personal=True)  # it carries a token
    headers = {"Authorization": f"Bearer {login.get_json()['token']}"}
    for path in ("/api/mp/v1/stock", "/api/mp/v1/me", "/api/mp/v1/orders"):
        resp = client.get(path, headers=headers)
        assert resp.status_code == 200, path
        assert_json_headers(resp, personal=True)
        assert not set_cookies(resp)
        if production:
            assert resp.headers.get("Strict-Transport-Security")
    hq = hq_login(client)
    resp = client.get("/api/hq/v1/store-stock", headers=hq)
    assert_json_headers(resp, personal=True)
    with app.app_context():
        serial = codes_in("S1")[0].serial
    resp = client.get(f"/api/public/v1/verify?code={serial}")
    assert_json_headers(resp, personal=True)


def test_error_pages(web):
    client, production = web
    resp = client.get("/hq/no-such-page")
    assert resp.status_code == 404
    assert_html_headers(resp, production)
    assert_page_runs_under_its_policy(client, resp)

    resp = client.post("/hq/login", data={"username": "admin", "password": "wrong", "csrf": csrf_of(client)})
    assert resp.status_code == 401
    assert_html_headers(resp, production)

    for resp in (client.get("/api/mp/v1/stock"), client.get("/api/mp/v1/no-such-route"),
                 client.get("/api/mp/v1/me", headers={"Authorization": "Bearer forged"})):
        assert resp.status_code in (401, 404)
        assert_json_headers(resp, personal=True)


def test_static_files_are_nosniff_and_cacheable(web):
    client, _production = web
    resp = client.get("/hq/static/hq.css")
    assert resp.status_code == 200 and resp.mimetype == "text/css"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert "no-store" not in resp.headers.get("Cache-Control", "")
    resp.close()


def test_bearer_routes_set_no_cookie_even_with_a_console_session(web):
    """A console session in the browser does not leak into the JSON API: no cookie read, none set."""
    client, _production = web
    console_login(client)
    headers = mp_login(client, "demo_store_owner")
    resp = client.get("/api/mp/v1/stock", headers=headers)
    assert resp.status_code == 200 and not set_cookies(resp)


def test_production_refuses_cookies_without_secure():
    from tests.helpers import PRODUCTION

    assert load_config(env=dict(PRODUCTION))["SESSION_COOKIE_SECURE"] is True
    check_production(load_config(env=dict(PRODUCTION)))
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE"):
        check_production(load_config(env={**PRODUCTION, "SESSION_COOKIE_SECURE": "0"}))
    assert load_config(env={})["SESSION_COOKIE_SECURE"] is False
