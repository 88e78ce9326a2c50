"""Login: mini-program (through the fake WeChat) and HQ console; tokens; phone binding."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.accounts.models import User
from app.core.clock import now_utc
from app.core.security import Binding, issue_token
from app.extensions import db
from tests.conftest import hq_login, mp_login
from tests.helpers import assert_db_unchanged, assert_error


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_demo_owner_login_shows_store_s1(client, demo):
    resp = client.post("/api/mp/v1/sessions", json={"code": "demo:demo_store_owner"})
    assert resp.status_code == 201
    body = resp.get_json()
    assert set(body) == {"token", "expires_at", "user"}
    assert "session_key" not in resp.get_data(as_text=True)
    me = client.get("/api/mp/v1/me", headers=_bearer(body["token"])).get_json()
    assert me["store"]["code"] == "S1" and me["roles"] == ["store_owner"]
    assert me == body["user"]


def test_login_keeps_session_key_on_server(app, client, demo):
    mp_login(client, "demo_store_owner")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.openid == "demo_store_owner"))
        assert user.session_key and user.last_login_at is not None


def test_new_wechat_user_is_created_without_roles(client, demo):
    headers = mp_login(client, "brand_new_person")
    me = client.get("/api/mp/v1/me", headers=headers).get_json()
    assert me["roles"] == [] and me["store"] is None


def test_invalid_code_is_400_and_changes_nothing(client, demo):
    with assert_db_unchanged("users"):
        assert_error(client.post("/api/mp/v1/sessions", json={"code": "not-a-demo-code"}), 400,
                     "wechat_invalid_code")


def test_expired_token(app, client, demo):
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.openid == "demo_store_owner"))
        token, _ = issue_token(user_id=user_id, kind="mp", bindings=[Binding("store_owner", store_id=1)],
                               ttl_seconds=-5)
    assert_error(client.get("/api/mp/v1/me", headers=_bearer(token)), 401, "token_expired")


def test_token_expiry_is_in_the_answer(app, client, demo):
    body = client.post("/api/mp/v1/sessions", json={"code": "demo:demo_store_owner"}).get_json()
    from datetime import datetime

    expires = datetime.fromisoformat(body["expires_at"])
    ttl = app.config["MP_TOKEN_TTL_SECONDS"]
    assert abs((expires - now_utc()).total_seconds() - ttl) < 60


def test_tampered_token(client, owner):
    token = owner["Authorization"][7:]
    payload, sig = token.rsplit(".", 1)
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert_error(client.get("/api/mp/v1/me", headers=_bearer(f"{flipped}.{sig}")), 401, "invalid_token")
    assert_error(client.get("/api/mp/v1/me", headers=_bearer(token + "x")), 401, "invalid_token")


def test_token_signed_with_another_key_is_refused(app, client, demo):
    from itsdangerous import URLSafeSerializer

    forged = URLSafeSerializer("another-key", salt="bearer-token").dumps(
        {"u": 1, "k": "hq", "b": [["hq_admin", None, None, None, None, None]], "e": 2**40})
    assert_error(client.get("/api/hq/v1/me", headers=_bearer(forged)), 401, "invalid_token")


# --- HQ console --------------------------------------------------------------------------------------------

def test_hq_login_and_me(client, demo):
    headers = hq_login(client)
    me = client.get("/api/hq/v1/me", headers=headers).get_json()
    assert me["roles"] == ["hq_admin"]


def test_wrong_password_and_unknown_user_look_the_same(client, demo):
    wrong = assert_error(client.post("/api/hq/v1/sessions", json={"username": "admin", "password": "nope"}), 401)
    unknown = assert_error(client.post("/api/hq/v1/sessions", json={"username": "ghost", "password": "nope"}), 401)
    assert wrong == unknown and wrong["code"] == "invalid_credentials"


def test_lockout_after_failures_then_unlock(app, client, demo):
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert_error(client.post("/api/hq/v1/sessions", json={"username": "admin", "password": "bad"}), 401)
    # Locked now: even the right password is refused.
    assert_error(client.post("/api/hq/v1/sessions", json={"username": "admin", "password": "admin"}), 429,
                 "account_locked")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "admin"))
        assert user.locked_until is not None and user.locked_until > now_utc()
        user.locked_until = now_utc() - timedelta(seconds=1)
        db.session.commit()
    hq_login(client)


def test_failures_below_the_limit_do_not_lock_and_success_resets(app, client, demo):
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        assert_error(client.post("/api/hq/v1/sessions", json={"username": "admin", "password": "bad"}), 401)
    hq_login(client)
    for _ in range(limit - 1):
        assert_error(client.post("/api/hq/v1/sessions", json={"username": "admin", "password": "bad"}), 401)
    hq_login(client)


def test_store_token_refused_on_hq_routes(client, owner):
    for path in ("/api/hq/v1/me", "/api/hq/v1/warehouses", "/api/hq/v1/skus", "/api/hq/v1/partners"):
        assert_error(client.get(path, headers=owner), 403)


def test_hq_token_is_not_a_mini_program_store(client, admin):
    me = client.get("/api/mp/v1/me", headers=admin).get_json()
    assert me["store"] is None


# --- phone --------------------------------------------------------------------------------------------------

def test_bind_phone(client, owner):
    resp = client.post("/api/mp/v1/me/phone", json={"code": "demo:13800000000"}, headers=owner)
    assert resp.status_code == 200 and resp.get_json()["phone"] == "13800000000"
    assert client.get("/api/mp/v1/me", headers=owner).get_json()["phone"] == "13800000000"


def test_bind_phone_bad_code_changes_nothing(client, owner):
    with assert_db_unchanged("users"):
        assert_error(client.post("/api/mp/v1/me/phone", json={"code": "demo:123"}, headers=owner), 400,
                     "wechat_invalid_code")


def test_bind_phone_needs_login(client, demo):
    assert_error(client.post("/api/mp/v1/me/phone", json={"code": "demo:13800000000"}), 401)
