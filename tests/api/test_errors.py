"""One error shape on every /api/ path, whatever failed; a request id on every response and log line."""

from __future__ import annotations

import logging

import pytest

from app.core.security import issue_token
from tests.conftest import mp_login
from tests.helpers import assert_error

# --- validation -------------------------------------------------------------------------------------------

def test_missing_field(client):
    err = assert_error(client.post("/api/mp/v1/sessions", json={}), 422, "validation_failed")
    assert "code" in err["details"]["fields"]


def test_wrong_type(client):
    err = assert_error(client.post("/api/mp/v1/sessions", json={"code": 12}), 422, "validation_failed")
    assert "code" in err["details"]["fields"]


def test_string_for_integer_is_refused(client, admin):
    body = {"name": "x", "code": "NEW1", "gtin": "6901234567892", "product_id": "1"}
    err = assert_error(client.post("/api/hq/v1/skus", json=body, headers=admin), 422, "validation_failed")
    assert "product_id" in err["details"]["fields"]


def test_string_for_integer_in_query_is_refused(client, owner):
    assert_error(client.get("/api/mp/v1/stock?store_id=abc", headers=owner), 422, "validation_failed")


def test_unknown_field(client):
    err = assert_error(client.post("/api/mp/v1/sessions", json={"code": "demo:x", "extra": 1}), 422,
                       "validation_failed")
    assert "extra" in err["details"]["fields"]


def test_malformed_json(client):
    resp = client.post("/api/mp/v1/sessions", data="{not json", content_type="application/json")
    assert_error(resp, 400, "malformed_json")


def test_non_object_json(client):
    assert_error(client.post("/api/mp/v1/sessions", json=["demo:demo_store_owner"]), 422, "validation_failed")


def test_json_null_body(client):
    assert_error(client.post("/api/mp/v1/sessions", data="null", content_type="application/json"), 422)


# --- auth -------------------------------------------------------------------------------------------------

def test_401_no_token(client):
    assert_error(client.get("/api/mp/v1/me"), 401, "unauthorized")


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer ", "Basic abc", "bearer x.y.z"])
def test_401_bad_token(client, header):
    assert_error(client.get("/api/mp/v1/me", headers={"Authorization": header}), 401)


def test_401_expired_token(app, client):
    with app.app_context():
        token, _ = issue_token(user_id=1, kind="mp", bindings=[], ttl_seconds=-1)
    assert_error(client.get("/api/mp/v1/me", headers={"Authorization": f"Bearer {token}"}), 401, "token_expired")


def test_403(client, owner):
    assert_error(client.get("/api/hq/v1/warehouses", headers=owner), 403)


# --- routing and state ------------------------------------------------------------------------------------

def test_404_unknown_route(client):
    assert_error(client.get("/api/nothing/here"), 404, "not_found")
    assert_error(client.post("/api/mp/v1/nothing", json={}), 404, "not_found")


def test_404_unknown_id(client, admin):
    assert_error(client.get("/api/hq/v1/skus/999999", headers=admin), 404, "sku_not_found")
    assert_error(client.get("/api/hq/v1/stores/999999", headers=admin), 404, "store_not_found")


def test_405(client):
    resp = client.put("/api/mp/v1/sessions")  # DELETE is logout
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


def test_409(client, admin):
    assert_error(client.post("/api/hq/v1/price-tiers", json={"code": "retail", "name": "x"}, headers=admin), 409,
                 "price_tier_code_taken")


def test_413(app, client):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    resp = client.post("/api/mp/v1/sessions", data=big, content_type="application/json")
    assert_error(resp, 413, "payload_too_large")


def test_429_rate_limit(make_app, clean_db):
    limited = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    c = limited.test_client()
    statuses = [c.post("/api/hq/v1/sessions", json={"username": "nobody", "password": "x"}).status_code
                for _ in range(21)]
    assert statuses[:20] == [401] * 20
    err = assert_error(c.post("/api/hq/v1/sessions", json={"username": "nobody", "password": "x"}), 429,
                       "rate_limited")
    assert err["message"]


def test_rate_limit_restored_after_make_app(client, clean_db):
    """The session app (limits off) is not left rate limited by the test above."""
    for _ in range(25):
        assert client.post("/api/hq/v1/sessions", json={"username": "nobody", "password": "x"}).status_code == 401


def test_500_is_the_error_shape(make_app, caplog):
    boom_app = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @boom_app.get("/api/test/boom")
    def boom():
        raise RuntimeError("secret internals")

    @boom_app.get("/html/boom")
    def html_boom():
        raise RuntimeError("secret internals")

    c = boom_app.test_client()
    with caplog.at_level(logging.ERROR):
        resp = c.get("/api/test/boom", headers={"X-Request-ID": "req-boom-12345"})
    err = assert_error(resp, 500, "internal_error")
    assert "secret internals" not in resp.get_data(as_text=True)
    assert err["details"] == {}
    assert any(getattr(r, "request_id", None) == "req-boom-12345" and r.exc_info for r in caplog.records)
    page = c.get("/html/boom", headers={"Accept": "text/html"})
    assert page.status_code == 500 and "secret internals" not in page.get_data(as_text=True)


# --- request id ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/healthz", "/api/nothing", "/api/mp/v1/me", "/api/openapi.json"])
def test_request_id_on_every_response(client, path):
    resp = client.get(path)
    assert len(resp.headers["X-Request-ID"]) >= 8


def test_request_id_echoed_when_valid(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-DEF_123.4"}).headers["X-Request-ID"] == "abc-DEF_123.4"


@pytest.mark.parametrize("bad", ["short", "x" * 65, "has space in it", "evil;header=1", "<script>alert</script>"])
def test_request_id_replaced_when_invalid(client, bad):
    got = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
    assert got != bad and len(got) == 32


def test_request_ids_differ(client):
    assert client.get("/healthz").headers["X-Request-ID"] != client.get("/healthz").headers["X-Request-ID"]


def test_log_lines_carry_the_request_id(client, clean_db, caplog):
    with caplog.at_level(logging.WARNING):
        resp = client.post("/api/mp/v1/sessions", json={"code": "bogus"}, headers={"X-Request-ID": "trace-me-0001"})
    assert resp.status_code == 400
    # The WeChat gateway logs the refused code; the line carries the caller's request id.
    records = [r for r in caplog.records if r.name.startswith("app.")]
    assert records and all(getattr(r, "request_id", None) == "trace-me-0001" for r in records)
    handler_fmt = logging.getLogger().handlers
    assert any("%(request_id)s" in (h.formatter._fmt if h.formatter else "") for h in handler_fmt)


def test_successful_login_still_works_after_errors(client, clean_db):
    assert mp_login(client, "demo_store_owner")
