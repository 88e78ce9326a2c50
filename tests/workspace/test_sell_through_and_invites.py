"""Sell-through in the caller's scope, and a store's invites made from the mini-program by those serving it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Membership, User
from app.channel.models import Invite
from app.core.clock import today_business
from app.extensions import db
from tests.conftest import hq_login, mp_login
from tests.helpers import assert_db_unchanged

MP = "/api/mp/v1"


def _get(client, headers, url, status=200):
    resp = client.get(url, headers=headers)
    assert resp.status_code == status, (url, resp.get_json())
    return resp.get_json()


# --- sell-through ----------------------------------------------------------------------------------------------

@pytest.fixture()
def sales(facts):
    """Yesterday's sales of S1 (D1), S5 (D3, under the agent) and S2 (D2)."""
    day = today_business() - timedelta(days=1)
    for store, units in (("S1", 5), ("S5", 7), ("S2", 11)):
        facts.sale(store, "BISC", day, units)
    facts.sale("S1", "MILK250", day, 2)
    return day


def _by_store(client, headers, url=f"{MP}/sell-through?group_by=store"):
    body = _get(client, headers, url)
    return {int(r["key"]): r["units"] for r in body["items"]}


def test_sell_through_stays_in_the_callers_scope(client, facts, sales):
    s = facts.stores
    d1, agent, owner, owner2 = (mp_login(client, who) for who in (
        "demo_distributor", "demo_agent", "demo_store_owner", "demo_store_owner_2"))
    assert _by_store(client, d1) == {s["S1"]: 7}
    assert _by_store(client, agent) == {s["S1"]: 7, s["S5"]: 7}
    assert _by_store(client, owner) == {s["S1"]: 7}
    assert _by_store(client, owner2) == {s["S2"]: 11}
    assert _by_store(client, hq_login(client)) == {s["S1"]: 7, s["S5"]: 7, s["S2"]: 11}
    skus = _get(client, d1, f"{MP}/sell-through?group_by=sku")
    assert {r["label"]: r["units"] for r in skus["items"]} == {"散装苏打饼干": 5, "山泉纯牛奶": 2}


def test_sell_through_has_the_hq_answer_shape(client, facts, sales):
    d1 = mp_login(client, "demo_distributor")
    frm, to = sales - timedelta(days=6), sales
    body = _get(client, d1, f"{MP}/sell-through?group_by=day&from={frm}&to={to}")
    assert body["group_by"] == "day" and body["total"] == 7 and len(body["items"]) == 7
    assert body["period"] == {"from": frm.isoformat(), "to": to.isoformat(),
                              "previous_from": (frm - timedelta(days=7)).isoformat(),
                              "previous_to": (frm - timedelta(days=1)).isoformat()}
    last = body["items"][-1]
    by_unit = last.pop("units_by_unit")
    assert last == {"key": to.isoformat(), "label": to.isoformat(), "units": 7, "amount_fen": 700,
                    "previous_units": 0, "previous_units_by_unit": [], "previous_amount_fen": 0, "change_pct": None}
    assert sum(g["quantity"] for g in by_unit) == 7 and all(g["unit"] for g in by_unit)  # never 提 and 袋 added
    body["items"][-1] = {**last, "units_by_unit": by_unit}
    hq = _get(client, hq_login(client), f"/api/hq/v1/sell-through?group_by=day&from={frm}&to={to}")
    assert set(hq["items"][0]) == set(body["items"][0]) and set(hq["period"]) == set(body["period"])
    page = _get(client, d1, f"{MP}/sell-through?group_by=day&from={frm}&to={to}&page=2&page_size=3")
    assert [r["key"] for r in page["items"]] == [r["key"] for r in body["items"][3:6]]


def test_sales_stay_with_the_distributor_that_served_the_store(client, facts, sales):
    """A store moved to another distributor: its history stays where it was made (the rollup row's distributor)."""
    from app.channel.models import Store
    from app.core.tx import transaction

    with transaction():
        db.session.get(Store, facts.stores["S1"]).distributor_id = facts.partners["D2"]
    facts.sale("S1", "BISC", today_business(), 3)
    d1, d2 = mp_login(client, "demo_distributor"), mp_login(client, "demo_distributor_2")
    url = f"{MP}/sell-through?group_by=store&from={sales}&to={today_business()}"
    assert _by_store(client, d1, url) == {facts.stores["S1"]: 7}
    assert _by_store(client, d2, url) == {facts.stores["S1"]: 3, facts.stores["S2"]: 11}


@pytest.mark.parametrize("query", [
    "group_by=province", "group_by=distributor", "group_by=planet", "from=2026-02-01&to=2026-01-01",
    "from=1999-12-31", "to=2100-01-01", "from=yesterday", "page=0", "page_size=500"])
def test_bad_sell_through_input_is_a_422(client, facts, query):
    body = _get(client, mp_login(client, "demo_distributor"), f"{MP}/sell-through?{query}", status=422)
    assert body["error"]["code"] in ("validation_failed", "bad_period") and set(body["error"]) == {
        "code", "message", "details"}


# --- invites ---------------------------------------------------------------------------------------------------

def _invite(client, headers, store_id, role, status=201):
    resp = client.post(f"{MP}/stores/{store_id}/invites", json={"role": role}, headers=headers)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def test_a_distributor_invites_a_stores_owner_who_joins(client, facts):
    d1 = mp_login(client, "demo_distributor")
    s1 = facts.stores["S1"]
    invite = _invite(client, d1, s1, "owner")
    assert invite["role"] == "store_owner" and invite["store_id"] == s1 and invite["status"] == "open"
    assert invite["qr_url"] == f"/api/mp/v1/stores/{s1}/invites/{invite['id']}/qr.png"
    qr = client.get(invite["qr_url"], headers=d1)
    assert qr.status_code == 200 and qr.mimetype == "image/png" and qr.data[:8] == b"\x89PNG\r\n\x1a\n"

    newcomer = mp_login(client, "new_owner_openid")
    joined = client.post(f"{MP}/invites/{invite['token']}/redeem", json={}, headers=newcomer)
    assert joined.status_code == 200, joined.get_json()
    assert "store_owner" in joined.get_json()["user"]["roles"]
    user_id = db.session.scalar(sa.select(User.id).where(User.openid == "new_owner_openid"))
    assert db.session.scalar(sa.select(Membership.store_id).where(Membership.user_id == user_id)) == s1
    listed = _get(client, d1, f"{MP}/stores/{s1}/invites")
    assert listed["total"] == 1 and listed["items"][0]["status"] == "redeemed"
    # The same domain functions as HQ's: the HQ API sees the invite, and a used one cannot be revoked.
    resp = client.post(f"{MP}/stores/{s1}/invites/{invite['id']}/revoke", json={}, headers=d1)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "invite_used"


def test_who_may_invite_at_which_store(client, facts):
    d1, agent, owner, clerk, d2 = (mp_login(client, who) for who in (
        "demo_distributor", "demo_agent", "demo_store_owner", "demo_store_clerk", "demo_distributor_2"))
    s = facts.stores
    with assert_db_unchanged():
        for headers, store, role in ((d1, "S2", "owner"), (d1, "S5", "clerk"), (d2, "S1", "clerk"),
                                     (owner, "S1", "owner"), (owner, "S2", "clerk"), (clerk, "S1", "clerk")):
            body = _invite(client, headers, s[store], role, status=403)
            assert set(body["error"]) == {"code", "message", "details"}
    assert _invite(client, agent, s["S5"], "owner")["role"] == "store_owner"
    assert _invite(client, owner, s["S1"], "clerk")["role"] == "store_clerk"
    assert _invite(client, d2, s["S2"], "clerk")["store_id"] == s["S2"]
    missing = db.session.scalar(sa.text("SELECT max(id) FROM stores")) + 1000
    assert _invite(client, d1, missing, "clerk", status=404)["error"]["code"] == "store_not_found"
    for bad in ({"role": "store_owner"}, {"role": "distributor_staff"}, {}, {"role": "clerk", "ttl_hours": 0},
                {"role": "clerk", "extra": 1}):
        resp = client.post(f"{MP}/stores/{s['S1']}/invites", json=bad, headers=d1)
        assert resp.status_code == 422, (bad, resp.get_json())


def test_listing_and_revoking_a_stores_invites(client, facts):
    d1, owner = mp_login(client, "demo_distributor"), mp_login(client, "demo_store_owner")
    s1, s3 = facts.stores["S1"], facts.stores["S3"]
    for_owner = _invite(client, d1, s1, "owner")
    for_clerk = _invite(client, d1, s1, "clerk")
    _invite(client, d1, s3, "clerk")
    listed = _get(client, d1, f"{MP}/stores/{s1}/invites")
    assert [i["id"] for i in listed["items"]] == [for_clerk["id"], for_owner["id"]]
    # The owner sees the clerks' invites (an owner's invite is not theirs to hand out), and cannot revoke one.
    assert [i["id"] for i in _get(client, owner, f"{MP}/stores/{s1}/invites")["items"]] == [for_clerk["id"]]
    resp = client.post(f"{MP}/stores/{s1}/invites/{for_owner['id']}/revoke", json={}, headers=owner)
    assert resp.status_code == 403
    assert _get(client, d1, f"{MP}/stores/{facts.stores['S2']}/invites", status=403)["error"]["code"] == \
        "out_of_scope"
    # An invite is found only under its own store.
    resp = client.post(f"{MP}/stores/{s3}/invites/{for_owner['id']}/revoke", json={}, headers=d1)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "invite_not_found"
    assert client.get(f"{MP}/stores/{s3}/invites/{for_owner['id']}/qr.png", headers=d1).status_code == 404
    resp = client.post(f"{MP}/stores/{s1}/invites/{for_owner['id']}/revoke", json={}, headers=d1)
    assert resp.status_code == 200 and resp.get_json()["status"] == "revoked"
    assert db.session.get(Invite, for_owner["id"]).revoked_at is not None
    redeem = client.post(f"{MP}/invites/{for_owner['token']}/redeem", json={},
                         headers=mp_login(client, "someone_else"))
    assert redeem.status_code == 409 and redeem.get_json()["error"]["code"] == "invite_revoked"
