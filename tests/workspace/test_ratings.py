"""Store ratings of their distributor: who may write one, once a month after doing business, what each side reads."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.core.clock import business_day_start, now_utc, today_business
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import Conflict
from app.extensions import db
from app.orders.models import Order
from app.ratings import services
from app.ratings.models import StoreRating
from tests.conftest import hq_login, mp_login
from tests.helpers import assert_db_unchanged

MP = "/api/mp/v1"
_rid = iter(range(1, 10**6))


def _rate(client, headers, status=201, **body):
    body = {"request_id": f"r-{next(_rid)}", "score": 4, **body}
    resp = client.post(f"{MP}/ratings", json=body, headers=headers)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def _owner(facts, store: str, name: str) -> Principal:
    """An owner of a demo store (a user made for it), as the service sees the caller."""
    with transaction():
        user = User(openid=f"owner-{store}-{name}", display_name=name)
        db.session.add(user)
        db.session.flush()
        user_id = user.id
    return Principal(user_id, "mp", (Binding("store_owner", store_id=facts.stores[store]),))


def test_rating_needs_business_this_month(client, facts):
    owner = mp_login(client, "demo_store_owner")
    with assert_db_unchanged():
        assert _rate(client, owner, status=409)["error"]["code"] == "no_business_this_month"
    facts.order("S1", "cancelled")  # called off: no business
    assert _rate(client, owner, status=409)["error"]["code"] == "no_business_this_month"
    last_month = business_day_start(today_business().replace(day=1)) - timedelta(hours=1)
    facts.order("S1", "completed", at=last_month)  # last month's order, no delivery this month
    assert _rate(client, owner, status=409)["error"]["code"] == "no_business_this_month"
    with transaction():
        db.session.add(Order(number="TDELIV01", request_id="t-deliv", store_id=facts.stores["S1"],
                             created_by_id=facts.admin_id, status="delivered", created_at=last_month,
                             delivered_at=now_utc()))
    rating = _rate(client, owner, score=5, comment="送货准时")  # a delivery this month counts
    assert rating["score"] == 5 and rating["distributor_id"] == facts.partners["D1"]
    assert rating["period"] == today_business().strftime("%Y-%m")


def test_once_a_month_and_a_repeat_gets_the_first_answer(client, facts):
    owner = mp_login(client, "demo_store_owner")
    facts.order("S1", "awaiting_payment")
    body = {"request_id": "same-one", "score": 3}
    first = _rate(client, owner, **body)
    again = _rate(client, owner, status=200, **body)
    assert again == first
    with assert_db_unchanged():
        assert _rate(client, owner, status=409, score=1)["error"]["code"] == "already_rated"
    assert db.session.scalar(sa.select(sa.func.count(StoreRating.id))) == 1


def test_nobody_rates_for_someone_else(client, facts):
    for store in ("S1", "S2"):
        facts.order(store, "awaiting_payment")
    s2 = facts.stores["S2"]
    with assert_db_unchanged():
        for who in ("demo_store_clerk", "demo_distributor", "demo_agent"):
            assert _rate(client, mp_login(client, who), status=403, store_id=facts.stores["S1"])
        assert _rate(client, hq_login(client), status=403, store_id=facts.stores["S1"])
        assert _rate(client, mp_login(client, "demo_store_owner"), status=403, store_id=s2)["error"]["code"] == \
            "out_of_scope"
    # There is no route to edit or delete a rating.
    rating = _rate(client, mp_login(client, "demo_store_owner_2"))
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.open(f"{MP}/ratings/{rating['id']}", method=method, json={"score": 1},
                           headers=hq_login(client)).status_code in (404, 405)


@pytest.mark.parametrize("body", [{"score": 0}, {"score": 6}, {"score": "5"}, {"score": 4.5}, {"comment": "字" * 501},
                                  {"request_id": ""}, {"extra": 1}, {"store_id": 0}])
def test_bad_rating_input_is_a_422(client, facts, body):
    facts.order("S1", "awaiting_payment")
    with assert_db_unchanged():
        payload = {"request_id": "r-bad", "score": 4, **body}
        resp = client.post(f"{MP}/ratings", json=payload, headers=mp_login(client, "demo_store_owner"))
        assert resp.status_code == 422, (body, resp.get_json())


def _three_ratings(facts, app) -> None:
    """S1, S3 and S4 (all served by D1) rate it 5, 4 and 2; S2 rates D2 1."""
    for store, score, comment in (("S1", 5, "很好"), ("S3", 4, None), ("S4", 2, "补货慢"), ("S2", 1, "不来")):
        facts.order(store, "awaiting_payment")
        services.rate_distributor(_owner(facts, store, f"u{store}"), request_id=f"x-{store}", score=score,
                                  comment=comment)


def test_the_distributor_sees_its_average_and_comments_but_not_who(client, facts, app):
    d1 = mp_login(client, "demo_distributor")
    facts.order("S1", "awaiting_payment")
    services.rate_distributor(_owner(facts, "S1", "a"), request_id="x1", score=5, comment="很好")
    body = client.get(f"{MP}/ratings/summary", headers=d1).get_json()
    (item,) = body["items"]
    assert item["count"] == 1 and not item["counted"] and item["average"] is None and item["min_count"] == 3
    for store, score, comment in (("S3", 4, None), ("S4", 2, "补货慢"), ("S2", 1, "不来")):
        facts.order(store, "awaiting_payment")
        services.rate_distributor(_owner(facts, store, "b"), request_id=f"x-{store}", score=score, comment=comment)
    body = client.get(f"{MP}/ratings/summary", headers=d1).get_json()
    assert body["period"] == today_business().strftime("%Y-%m")
    (item,) = body["items"]
    assert item["distributor_code"] == "D1" and item["count"] == 3 and item["counted"]
    assert item["average"] == round(11 / 3, 2)
    assert item["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert item["comments"] == [{"score": 2, "comment": "补货慢"}, {"score": 5, "comment": "很好"}]
    text = str(body)
    for secret in ("store_id", "user_id", "S1", "S3", "S4", "created_at", "owner-"):
        assert secret not in text
    assert [i["distributor_code"] for i in client.get(f"{MP}/ratings/summary", headers=mp_login(
        client, "demo_distributor_2")).get_json()["items"]] == ["D2"]
    assert [i["distributor_code"] for i in client.get(f"{MP}/ratings/summary", headers=mp_login(
        client, "demo_agent")).get_json()["items"]] == ["D1"]
    assert client.get(f"{MP}/ratings/summary", headers=mp_login(client, "demo_store_owner")).status_code == 403
    assert client.get(f"{MP}/ratings/summary?period=2026-13", headers=d1).status_code == 422
    assert client.get(f"{MP}/ratings/summary?period=1999-12", headers=d1).status_code == 422
    assert client.get(f"{MP}/ratings/summary?period=2025-01", headers=d1).get_json()["items"] == []


def test_the_minimum_count_is_a_setting(client, facts, make_app):
    facts.order("S1", "awaiting_payment")
    services.rate_distributor(_owner(facts, "S1", "m"), request_id="m1", score=4)
    other = make_app(RATING_MIN_COUNT=1).test_client()
    (item,) = other.get(f"{MP}/ratings/summary", headers=mp_login(other, "demo_distributor")).get_json()["items"]
    assert item["counted"] and item["average"] == 4.0 and item["min_count"] == 1


def test_hq_sees_every_rating_with_store_and_writer(client, facts, app):
    _three_ratings(facts, app)
    admin = hq_login(client)
    body = client.get("/api/hq/v1/ratings", headers=admin).get_json()
    groups = {g["distributor_code"]: g for g in body["items"]}
    assert set(groups) == {"D1", "D2"} and body["total"] == 2
    assert {r["store_code"] for r in groups["D1"]["ratings"]} == {"S1", "S3", "S4"}
    assert all(r["user_id"] for r in groups["D1"]["ratings"]) and groups["D1"]["average"] == round(11 / 3, 2)
    assert groups["D2"]["average"] is None  # one rating: not enough to count
    period = today_business().strftime("%Y-%m")
    only_d2 = client.get(f"/api/hq/v1/ratings?period={period}&partner_id={facts.partners['D2']}",
                         headers=admin).get_json()
    assert [g["distributor_code"] for g in only_d2["items"]] == ["D2"]
    by_agent = client.get(f"/api/hq/v1/ratings?partner_id={facts.partners['A1']}", headers=admin).get_json()
    assert [g["distributor_code"] for g in by_agent["items"]] == ["D1"]
    assert client.get("/api/hq/v1/ratings?period=2026-1", headers=admin).status_code == 422
    assert client.get("/api/hq/v1/ratings", headers=mp_login(client, "demo_distributor")).status_code == 403


def test_two_owners_of_a_store_at_once_one_wins(postgres, facts):
    app = postgres
    facts.order("S1", "awaiting_payment")
    owners = [_owner(facts, "S1", f"race{i}") for i in range(2)]
    barrier, results = threading.Barrier(2), []

    def go(principal):
        with app.app_context():
            barrier.wait()
            try:
                services.rate_distributor(principal, request_id="race", score=3)
                results.append("ok")
            except Conflict as exc:
                results.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=go, args=(p,)) for p in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["already_rated", "ok"]
    assert db.session.scalar(sa.select(sa.func.count(StoreRating.id))) == 1
