"""Referral guards under real threads, on whichever engine the suite runs (SQLite: the write lock BEGIN IMMEDIATE
takes; PostgreSQL: the counter row's compare-and-set, the unique index, the policy row's lock)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.extensions import db
from app.referrals.models import ReferralBinding, ReferralDailyTotal
from tests.referrals.helpers import MP, account, bind, consumer, policy, rewards, sharer, sold_unit


def _at_once(app, calls) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(calls))
    out, lock = [], threading.Lock()

    def run(method, path, json, headers):
        client = app.test_client()
        barrier.wait()
        resp = client.open(path, method=method, json=json, headers=headers)
        with lock:
            out.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_the_daily_cap_holds_when_many_purchases_land_at_once(app, client, demo, admin, owner):
    policy(client, admin, reward_fen=500, daily_cap_fen=1500)
    _a, a_id, token_a = sharer(client, "shopper_a")
    buyers = []
    for i in range(8):
        headers, _ = consumer(client, f"buyer_{i}")
        bind(client, headers, token_a)
        buyers.append((headers, sold_unit(client, owner)))
    replies = _at_once(app, [("POST", f"{MP}/consumer-verifications", {"code": serial}, headers)
                             for headers, serial in buyers])
    assert all(status == 200 for status, _ in replies), replies
    statuses = sorted(r.status for r in rewards(a_id))
    assert statuses == ["cancelled"] * 5 + ["pending"] * 3
    assert {r.cancel_reason for r in rewards(a_id) if r.status == "cancelled"} == {"daily_cap"}
    assert account(a_id) == (1500, 0, 0)
    assert db.session.scalar(sa.select(ReferralDailyTotal.earned_fen)
                             .where(ReferralDailyTotal.referrer_id == a_id)) == 1500


def test_one_unit_checked_by_two_bound_consumers_at_once_earns_once(app, client, demo, admin, owner):
    policy(client, admin)
    _a, a_id, token_a = sharer(client, "shopper_a")
    calls = []
    serial = sold_unit(client, owner)
    for i in range(4):
        headers, _ = consumer(client, f"buyer_{i}")
        bind(client, headers, token_a)
        calls.append(("POST", f"{MP}/consumer-verifications", {"code": serial}, headers))
    assert all(status == 200 for status, _ in _at_once(app, calls))
    assert [r.status for r in rewards(a_id)] == ["pending"] and account(a_id) == (500, 0, 0)


def test_two_consumers_binding_to_each_other_at_once_make_no_loop(app, client, demo, admin):
    policy(client, admin)
    for round_ in range(4):
        a, a_id, token_a = sharer(client, f"pair_a{round_}")
        b, b_id, token_b = sharer(client, f"pair_b{round_}")
        replies = _at_once(app, [("POST", f"{MP}/referrals/{token_b}/bind", None, a),
                                 ("POST", f"{MP}/referrals/{token_a}/bind", None, b)])
        assert sorted(status for status, _ in replies) == [200, 409], replies
        db.session.expire_all()
        held = db.session.scalars(sa.select(ReferralBinding.consumer_id)
                                  .where(ReferralBinding.consumer_id.in_((a_id, b_id)))).all()
        assert len(held) == 1
