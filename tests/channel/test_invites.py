"""Invites: who may invite whom, the cached QR, redeeming once, expiry, revocation, and a race."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Membership
from app.channel.models import Invite, Partner, Store
from app.core.clock import now_utc
from app.extensions import db
from tests.conftest import mp_login
from tests.helpers import assert_db_unchanged, assert_error

INVITES = "/api/hq/v1/invites"


def _ids(app):
    with app.app_context():
        stores = dict(db.session.execute(sa.select(Store.code, Store.id)).all())
        partners = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
    return stores, partners


@pytest.fixture()
def ids(app, demo):
    return _ids(app)


def _invite(client, headers, **body):
    return client.post(INVITES, json=body, headers=headers)


# --- who may invite ------------------------------------------------------------------------------------------

def test_hq_invites_anywhere(client, admin, ids):
    stores, partners = ids
    assert _invite(client, admin, role="store_owner", store_id=stores["S2"]).status_code == 201
    assert _invite(client, admin, role="distributor_staff", partner_id=partners["D4"]).status_code == 201
    assert _invite(client, admin, role="agent_staff", partner_id=partners["A1"]).status_code == 201


def test_distributor_invites_within_subtree_only(client, distributor, ids):
    stores, partners = ids
    assert _invite(client, distributor, role="store_owner", store_id=stores["S1"]).status_code == 201
    assert _invite(client, distributor, role="store_clerk", store_id=stores["S4"]).status_code == 201
    assert _invite(client, distributor, role="distributor_staff", partner_id=partners["D1"]).status_code == 201
    with assert_db_unchanged():
        assert_error(_invite(client, distributor, role="store_owner", store_id=stores["S2"]), 403, "out_of_scope")
        assert_error(_invite(client, distributor, role="distributor_staff", partner_id=partners["D2"]), 403,
                     "out_of_scope")
        assert_error(_invite(client, distributor, role="agent_staff", partner_id=partners["A1"]), 403,
                     "out_of_scope")


def test_owner_invites_clerks_of_own_store_only(client, owner, ids):
    stores, partners = ids
    resp = _invite(client, owner, role="store_clerk", store_id=stores["S1"])
    assert resp.status_code == 201 and resp.get_json()["token"]
    with assert_db_unchanged():
        assert_error(_invite(client, owner, role="store_owner", store_id=stores["S1"]), 403, "out_of_scope")
        assert_error(_invite(client, owner, role="store_clerk", store_id=stores["S2"]), 403, "out_of_scope")
        assert_error(_invite(client, owner, role="distributor_staff", partner_id=partners["D1"]), 403)


def test_clerk_cannot_invite(client, clerk, ids):
    stores, _ = ids
    with assert_db_unchanged():
        assert_error(_invite(client, clerk, role="store_clerk", store_id=stores["S1"]), 403)


BAD_INVITES = [
    {"role": "hq_admin"},
    {"role": "store_owner"},
    {"role": "store_owner", "partner_id": 1},
    {"role": "distributor_staff"},
    {"role": "store_clerk", "store_id": 1, "ttl_hours": 0},
    {"role": "store_clerk", "store_id": 1, "ttl_hours": 24 * 31},
    {"role": "pope", "store_id": 1},
    {"role": "store_clerk", "store_id": "1"},
]


def test_bad_invites_change_nothing(client, admin, ids):
    for body in BAD_INVITES:
        with assert_db_unchanged():
            resp = _invite(client, admin, **body)
            assert resp.status_code == 422, (body, resp.get_json())
            assert_error(resp, 422)


def test_invite_for_unknown_store_or_partner(client, admin, ids):
    with assert_db_unchanged():
        assert_error(_invite(client, admin, role="store_clerk", store_id=999999), 404, "store_not_found")
        assert_error(_invite(client, admin, role="agent_staff", partner_id=999999), 404, "partner_not_found")


def test_invite_token_is_a_valid_scene(client, admin, ids):
    token = _invite(client, admin, role="store_clerk", store_id=ids[0]["S1"]).get_json()["token"]
    assert 1 <= len(token) <= 32 and token.isalnum()


# --- QR ------------------------------------------------------------------------------------------------------

def test_qr_png_is_made_once_then_cached(client, admin, ids, fake_wechat):
    invite = _invite(client, admin, role="store_clerk", store_id=ids[0]["S1"]).get_json()
    before = fake_wechat.state.stats["/wxa/getwxacodeunlimit"]
    first = client.get(invite["qr_url"], headers=admin)
    assert first.status_code == 200 and first.mimetype == "image/png"
    assert first.data.startswith(b"\x89PNG\r\n\x1a\n")
    # One call (or two, when the gateway's cached access token was forgotten by the reset fake and it retried).
    after_first = fake_wechat.state.stats["/wxa/getwxacodeunlimit"]
    assert after_first > before
    second = client.get(invite["qr_url"], headers=admin)
    assert second.data == first.data
    assert fake_wechat.state.stats["/wxa/getwxacodeunlimit"] == after_first


def test_qr_out_of_scope(client, admin, owner2, ids):
    invite = _invite(client, admin, role="store_clerk", store_id=ids[0]["S1"]).get_json()
    assert_error(client.get(invite["qr_url"], headers=owner2), 403)
    assert_error(client.get("/api/hq/v1/invites/999999/qr.png", headers=admin), 404)


# --- redeem --------------------------------------------------------------------------------------------------

def _redeem(client, headers, token):
    return client.post(f"/api/mp/v1/invites/{token}/redeem", json={}, headers=headers)


def test_redeem_binds_and_returns_a_token_with_the_store(client, admin, ids):
    token = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()["token"]
    newcomer = mp_login(client, "newcomer_1")
    resp = _redeem(client, newcomer, token)
    assert resp.status_code == 200
    body = resp.get_json()
    me = client.get("/api/mp/v1/me", headers={"Authorization": f"Bearer {body['token']}"}).get_json()
    assert me["store"]["code"] == "S2" and me["roles"] == ["store_clerk"]
    # The new token carries the role: the clerk can read S2's stock right away.
    stock = client.get(f"/api/mp/v1/stock?store_id={ids[0]['S2']}",
                       headers={"Authorization": f"Bearer {body['token']}"})
    assert stock.status_code == 200, stock.get_json()


def test_redeem_without_body(client, admin, ids):
    token = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()["token"]
    resp = client.post(f"/api/mp/v1/invites/{token}/redeem", headers=mp_login(client, "newcomer_nb"))
    assert resp.status_code == 200, resp.get_json()


def test_redeem_is_single_use(client, admin, ids):
    token = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()["token"]
    assert _redeem(client, mp_login(client, "newcomer_1"), token).status_code == 200
    other = mp_login(client, "newcomer_2")
    with assert_db_unchanged("invites", "memberships"):
        assert_error(_redeem(client, other, token), 409, "invite_used")


def test_redeem_expired(app, client, admin, ids):
    invite = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()
    with app.app_context():
        db.session.execute(sa.update(Invite).where(Invite.id == invite["id"])
                           .values(expires_at=now_utc() - timedelta(minutes=1)))
        db.session.commit()
    newcomer = mp_login(client, "newcomer_1")
    with assert_db_unchanged("invites", "memberships"):
        assert_error(_redeem(client, newcomer, invite["token"]), 409, "invite_expired")


def test_redeem_revoked(client, admin, ids):
    invite = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()
    revoked = client.post(f"{INVITES}/{invite['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    newcomer = mp_login(client, "newcomer_1")
    with assert_db_unchanged("invites", "memberships"):
        assert_error(_redeem(client, newcomer, invite["token"]), 409, "invite_revoked")


def test_revoke_used_invite_is_refused(client, admin, ids):
    invite = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()
    _redeem(client, mp_login(client, "newcomer_1"), invite["token"])
    assert_error(client.post(f"{INVITES}/{invite['id']}/revoke", headers=admin), 409, "invite_used")


def test_revoke_out_of_scope(client, admin, distributor, ids):
    invite = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()
    with assert_db_unchanged("invites"):
        assert_error(client.post(f"{INVITES}/{invite['id']}/revoke", headers=distributor), 403)
        assert_error(client.post(f"{INVITES}/999999/revoke", headers=admin), 404)


def test_redeem_unknown_token(client, owner):
    for token in ("nope", "i" + "x" * 40, "bad-token!"):
        with assert_db_unchanged():
            assert_error(_redeem(client, owner, token), 404, "invite_not_found")


def test_redeem_needs_login(client, admin, ids):
    token = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()["token"]
    assert_error(client.post(f"/api/mp/v1/invites/{token}/redeem", json={}), 401)


def test_concurrent_redeem_one_winner(postgres, client, admin, ids):
    app = postgres
    token = _invite(client, admin, role="store_clerk", store_id=ids[0]["S2"]).get_json()["token"]
    headers = [mp_login(client, f"racer_{i}") for i in range(8)]
    barrier = threading.Barrier(8)
    results: list[int] = []
    lock = threading.Lock()

    def run(h):
        c = app.test_client()
        barrier.wait()
        status = c.post(f"/api/mp/v1/invites/{token}/redeem", json={}, headers=h).status_code
        with lock:
            results.append(status)

    threads = [threading.Thread(target=run, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 7
    with app.app_context():
        invite = db.session.scalar(sa.select(Invite).where(Invite.token == token))
        clerks = db.session.scalar(sa.select(sa.func.count(Membership.id)).where(
            Membership.role == "store_clerk", Membership.store_id == ids[0]["S2"]))
        assert invite.redeemed_at is not None and clerks == 1
