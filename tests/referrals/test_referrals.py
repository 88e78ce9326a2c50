"""Consumer referral rewards (CHANNEL.md §9): the off switch, share links after a genuine check, binding (first
touch, expiry, no self-referral, no loops of any length), rewards once per unit and level with a freeze, the
daily cap, returns cancelling or reversing, payouts recorded, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.codes.models import Code
from app.core.tx import transaction
from app.extensions import db
from app.referrals.models import ReferralBinding, ReferralLedger
from app.referrals.services import release_due
from tests.referrals.helpers import (
    MP,
    account,
    bind,
    consumer,
    link,
    policy,
    rewards,
    sharer,
    sold_unit,
    unused_units,
    verify,
)
from tests.scans.helpers import body

LATER = timedelta(days=8)


def test_off_by_default_every_route_says_referral_off(client, demo, admin):
    assert client.get("/api/hq/v1/referral-policy", headers=admin).get_json()["enabled"] is False
    a, _ = consumer(client, "shopper_a")
    answer = verify(client, a, unused_units()[0].serial)  # verification itself works while off
    assert answer["genuine"] and answer["referral_rewards"] == []
    for method, path in (("POST", f"{MP}/referral-links"), ("POST", f"{MP}/referrals/abc/bind"),
                         ("GET", f"{MP}/referral-rewards")):
        resp = client.open(path, method=method, headers=a)
        assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "referral_off", path
    policy(client, admin)
    policy(client, admin, enabled=False)
    assert client.get(f"{MP}/referral-rewards", headers=a).get_json()["error"]["code"] == "referral_off"


def test_the_consumer_session_holds_only_the_consumer_role(client, demo, owner):
    a, uid = consumer(client, "shopper_a")
    me = client.get(f"{MP}/me", headers=a).get_json()
    assert me["roles"] == ["consumer"] and me["id"] == uid
    assert consumer(client, "shopper_a")[1] == uid  # logging in again: the same user, one consumer role
    assert client.get(f"{MP}/stores", headers=a).status_code == 403
    assert client.post(f"{MP}/referral-links", headers=owner).status_code == 403  # a store owner is no consumer
    assert client.post(f"{MP}/consumer-verifications", json={"code": "x"}, headers=owner).status_code == 403


def test_a_link_needs_a_genuine_check_recorded_against_the_consumer(client, demo, admin):
    policy(client, admin)
    a, _ = consumer(client, "shopper_a")
    resp = client.post(f"{MP}/referral-links", headers=a)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "verify_first"
    client.get(f"/api/public/v1/verify?code={unused_units()[0].serial}")  # the public page: nobody's check
    assert verify(client, a, "FAKE0000000000")["genuine"] is False
    assert client.post(f"{MP}/referral-links", headers=a).get_json()["error"]["code"] == "verify_first"
    verify(client, a, unused_units()[0].serial)
    token = link(client, a)
    assert link(client, a) == token  # the same link each time


def test_binding_first_touch_wins_never_self_and_lasts_the_set_days(client, demo, admin):
    policy(client, admin, binding_days=10)
    a, _, token_a = sharer(client, "shopper_a")
    _c, _, token_c = sharer(client, "shopper_c")
    b, b_id = consumer(client, "shopper_b")
    resp = bind(client, a, token_a)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "self_referral"
    first = bind(client, b, token_a).get_json()
    assert first["status"] == "bound" and first["mine"]
    until = datetime.fromisoformat(first["expires_at"]) - datetime.fromisoformat(first["bound_at"])
    assert until == timedelta(days=10)
    again = bind(client, b, token_c).get_json()
    assert again["status"] == "already_bound" and again["mine"] is False
    assert bind(client, b, token_a).get_json()["mine"] is True
    with transaction():  # the binding has run out: the next link opened binds afresh
        db.session.execute(sa.update(ReferralBinding).where(ReferralBinding.consumer_id == b_id)
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert bind(client, b, token_c).get_json() | {"bound_at": None, "expires_at": None} == {
        "status": "bound", "mine": True, "bound_at": None, "expires_at": None}
    resp = bind(client, b, "no-such-link")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "referral_link_not_found"
    assert bind(client, b, "x" * 300).status_code == 404


def test_no_loops_of_two_or_three(client, demo, admin):
    policy(client, admin)
    a, _, token_a = sharer(client, "shopper_a")
    b, _, token_b = sharer(client, "shopper_b")
    c, _, token_c = sharer(client, "shopper_c")
    assert bind(client, b, token_a).get_json()["status"] == "bound"  # B → A
    resp = bind(client, a, token_b)  # A → B would close A→B→A
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "referral_loop"
    assert bind(client, c, token_b).get_json()["status"] == "bound"  # C → B → A
    resp = bind(client, a, token_c)  # A → C would close A→C→B→A
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "referral_loop"
    d, _, token_d = sharer(client, "shopper_d")
    assert bind(client, d, token_c).get_json()["status"] == "bound"  # D → C → B → A: a chain, not a loop
    assert bind(client, a, token_d).get_json()["error"]["code"] == "referral_loop"  # a loop of four


def test_a_bound_consumers_purchase_earns_a_frozen_reward_once_then_available(client, demo, admin, owner):
    policy(client, admin, freeze_days=7)
    a, a_id, token_a = sharer(client, "shopper_a")
    b, b_id = consumer(client, "shopper_b")
    unsold = unused_units()[0].serial
    bind(client, b, token_a)
    assert verify(client, b, unsold)["referral_rewards"] == []  # not sold by a store: no purchase
    serial = sold_unit(client, owner)
    assert verify(client, b, serial)["referral_rewards"] == [{"level": 1, "status": "pending"}]
    assert verify(client, b, serial)["referral_rewards"] == []  # once per unit
    (reward,) = rewards(a_id)
    assert reward.status == "pending" and reward.amount_fen == 500 and reward.consumer_id == b_id
    assert timedelta(days=7) - timedelta(minutes=1) < reward.frozen_until - reward.created_at <= timedelta(days=7)
    assert account(a_id) == (500, 0, 0)
    assert release_due() == 0  # still frozen
    assert release_due(datetime.now(UTC) + LATER) == 1
    assert rewards(a_id)[0].status == "available" and account(a_id) == (0, 500, 0)
    mine = client.get(f"{MP}/referral-rewards", headers=a).get_json()
    assert mine["total"] == 1 and mine["balance"] == {"pending_fen": 0, "available_fen": 500, "paid_fen": 0}
    assert "consumer_id" not in mine["items"][0] and mine["items"][0]["serial"] == serial
    assert client.get(f"{MP}/referral-rewards", headers=b).get_json()["total"] == 0


def test_a_unit_sold_before_the_purchase_window_earns_nothing(client, demo, admin, owner):
    policy(client, admin, purchase_window_days=3)
    _a, a_id, token_a = sharer(client, "shopper_a")
    b, _ = consumer(client, "shopper_b")
    bind(client, b, token_a)
    serial = sold_unit(client, owner)
    with transaction():
        db.session.execute(sa.update(Code).where(Code.serial == serial)
                           .values(sold_at=datetime.now(UTC) - timedelta(days=4)))
    assert verify(client, b, serial)["referral_rewards"] == [] and rewards(a_id) == []


def test_two_levels_the_referrers_referrer_earns_the_second_levels_reward(client, demo, admin, owner):
    policy(client, admin, levels=2, reward_fen=500, level2_reward_fen=200)
    _a, a_id, token_a = sharer(client, "shopper_a")
    b, b_id, token_b = sharer(client, "shopper_b")
    c, _, token_c = sharer(client, "shopper_c")
    d, _ = consumer(client, "shopper_d")
    bind(client, b, token_a)
    bind(client, c, token_b)
    bind(client, d, token_c)  # D → C → B → A: two levels at most
    serial = sold_unit(client, owner)
    assert verify(client, c, serial)["referral_rewards"] == [{"level": 1, "status": "pending"},
                                                             {"level": 2, "status": "pending"}]
    assert [(r.level, r.amount_fen) for r in rewards(b_id)] == [(1, 500)]
    assert [(r.level, r.amount_fen) for r in rewards(a_id)] == [(2, 200)]
    assert len(verify(client, d, sold_unit(client, owner))["referral_rewards"]) == 2  # C and B, never A
    assert len(rewards(a_id)) == 1


def test_a_return_cancels_a_frozen_reward(client, demo, admin, owner):
    policy(client, admin)
    _a, a_id, token_a = sharer(client, "shopper_a")
    b, _ = consumer(client, "shopper_b")
    bind(client, b, token_a)
    serial = sold_unit(client, owner)
    verify(client, b, serial)
    assert account(a_id) == (500, 0, 0)
    resp = client.post(f"{MP}/scans", json=body(serial, "return"), headers=owner)
    assert resp.get_json()["status"] == "accepted", resp.get_json()
    (reward,) = rewards(a_id)
    assert (reward.status, reward.cancel_reason) == ("cancelled", "returned") and account(a_id) == (0, 0, 0)
    assert release_due(datetime.now(UTC) + LATER) == 0 and rewards(a_id)[0].status == "cancelled"
    kinds = db.session.scalars(sa.select(ReferralLedger.kind).where(ReferralLedger.user_id == a_id)
                               .order_by(ReferralLedger.id)).all()
    assert kinds == ["earned", "cancelled"]


def test_an_undone_sale_cancels_its_frozen_reward(client, demo, admin, owner):
    policy(client, admin)
    _a, a_id, token_a = sharer(client, "shopper_a")
    b, _ = consumer(client, "shopper_b")
    bind(client, b, token_a)
    serial = unused_units("S1")[0].serial
    sold = client.post(f"{MP}/scans", json=body(serial), headers=owner).get_json()
    verify(client, b, serial)
    resp = client.post(f"{MP}/scans/{sold['event_id']}/undo", headers=owner)
    assert resp.status_code == 200, resp.get_json()
    assert rewards(a_id)[0].status == "cancelled" and account(a_id) == (0, 0, 0)


def test_a_return_after_payout_reverses_without_a_negative_balance(client, demo, admin, owner):
    policy(client, admin)
    _a, a_id, token_a = sharer(client, "shopper_a")
    b, _ = consumer(client, "shopper_b")
    bind(client, b, token_a)
    serial = sold_unit(client, owner)
    verify(client, b, serial)
    release_due(datetime.now(UTC) + LATER)
    pay = {"user_id": a_id, "amount_fen": 300, "method": "wechat_transfer", "reference": "10000123"}
    resp = client.post("/api/hq/v1/referral-payouts", json=pay, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    again = client.post("/api/hq/v1/referral-payouts", json=pay | {"amount_fen": 100}, headers=admin)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "payout_duplicate"
    over = client.post("/api/hq/v1/referral-payouts", json=pay | {"reference": "x2", "amount_fen": 201},
                       headers=admin)
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "insufficient_balance"
    assert account(a_id) == (0, 200, 300)
    client.post(f"{MP}/scans", json=body(serial, "return"), headers=owner)
    assert rewards(a_id)[0].status == "reversed"
    assert account(a_id) == (0, 0, 300)  # what was left is taken back; the 300 paid out is not, nor owed
    entry = db.session.scalars(sa.select(ReferralLedger).where(ReferralLedger.kind == "reversed")).one()
    assert (entry.available_delta_fen, entry.unrecovered_fen) == (-200, 300)


def test_policy_and_payout_bad_input(client, demo, admin):
    put = "/api/hq/v1/referral-policy"
    for bad in ({"levels": 3}, {"reward_fen": "500"}, {"reward_fen": -1}, {"binding_days": 0}, {"bogus": 1},
                {"enabled": "yes"}, {"daily_cap_fen": 1.5}):
        assert client.put(put, json=bad, headers=admin).status_code == 422, bad
    resp = client.put(put, json={"levels": 2, "level2_reward_fen": 0}, headers=admin)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "referral_policy_invalid"
    assert client.get(put, headers=admin).get_json()["levels"] == 1  # nothing saved
    for bad in ({"user_id": 1, "amount_fen": 0, "method": "offline", "reference": "r"},
                {"user_id": 1, "amount_fen": 10, "method": "cash", "reference": "r"},
                {"user_id": 1, "amount_fen": 10, "method": "offline", "reference": ""}):
        assert client.post("/api/hq/v1/referral-payouts", json=bad, headers=admin).status_code == 422, bad
    a, _ = consumer(client, "shopper_a")
    assert client.post(f"{MP}/consumer-verifications", json={}, headers=a).status_code == 422
    assert client.post(f"{MP}/consumer-verifications", json={"code": "x", "lat": 30}, headers=a).status_code == 422
    policy(client, admin)
    assert client.get(f"{MP}/referral-rewards?status=bogus", headers=a).status_code == 422
    assert client.get("/api/hq/v1/referral-rewards?level=3", headers=admin).status_code == 422
    assert client.get("/api/hq/v1/referral-rewards?from=2026-13-01", headers=admin).status_code == 422


def test_hq_ledger_filters_and_totals(client, demo, admin, owner):
    policy(client, admin, daily_cap_fen=500)
    _a, a_id, token_a = sharer(client, "shopper_a")
    b, _ = consumer(client, "shopper_b")
    bind(client, b, token_a)
    verify(client, b, sold_unit(client, owner))
    verify(client, b, sold_unit(client, owner))  # over the day's cap: recorded as cancelled
    ledger = client.get("/api/hq/v1/referral-rewards", headers=admin).get_json()
    assert ledger["total"] == 2 and ledger["totals"]["pending"] == 500 and ledger["totals"]["cancelled"] == 500
    assert {i["cancel_reason"] for i in ledger["items"]} == {None, "daily_cap"}
    only = client.get(f"/api/hq/v1/referral-rewards?status=pending&referrer_id={a_id}", headers=admin).get_json()
    assert only["total"] == 1 and only["totals"]["cancelled"] == 0
    today = datetime.now(UTC).date()
    none = client.get(f"/api/hq/v1/referral-rewards?to={today - timedelta(days=2)}", headers=admin).get_json()
    assert none["total"] == 0
    policy(client, admin, enabled=False)  # what is owed stays visible to HQ
    assert client.get("/api/hq/v1/referral-rewards", headers=admin).get_json()["total"] == 2


def test_the_demo_saves_the_policy_switched_off_and_seeding_again_changes_nothing(client, demo, admin):
    from app.demo.seed import seed
    from app.referrals.models import ReferralPolicy

    row = db.session.get(ReferralPolicy, 1)
    assert row is not None and row.enabled is False and row.reward_fen > 0
    before = client.get("/api/hq/v1/referral-policy", headers=admin).get_json()
    assert seed() == "demo data already present: nothing changed"
    assert client.get("/api/hq/v1/referral-policy", headers=admin).get_json() == before
