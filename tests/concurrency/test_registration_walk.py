"""Registrations on the demo over real HTTP (gunicorn): the acceptance walk of the issue, and two partners'
registrations of one shop at the same instant, from separate client processes."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from app.catalog.models import PriceTier
from app.channel.models import Partner
from app.core.clock import BUSINESS_TZ
from app.extensions import db
from tests.concurrency.clients import Call, fire

REGISTRATIONS = "/api/mp/v1/registrations"


def _shop(phone: str, **extra) -> dict:
    return {"request_id": uuid.uuid4().hex, "name": "西溪新开烟酒店", "phone": phone,
            "address": "杭州市西湖区西溪路 99 号", "industry": "convenience", **extra}


def test_demo_has_protected_converted_and_expired_registrations(live_server):
    hq = live_server.hq_login()
    statuses = {s: live_server.request("GET", f"/api/hq/v1/registrations?status={s}", headers=hq).body["total"]
                for s in ("protected", "converted", "expired")}
    assert all(statuses.values()), statuses
    conflicts = live_server.request("GET", "/api/hq/v1/registrations?conflicts=1", headers=hq).body["items"]
    assert conflicts and conflicts[0]["conflicts"][0]["partner_name"] == "深圳南山分销"


def test_register_refuse_redeem_converted(live_server):
    d1, d2, hq = live_server.login("demo_distributor"), live_server.login("demo_distributor_2"), live_server.hq_login()
    phone = "13955550001"
    # D1's staff registers a shop.
    first = live_server.request("POST", REGISTRATIONS, _shop(phone), headers=d1)
    assert first.status == 201, first.body
    assert first.body["status"] == "protected" and first.body["days_left"] == 30
    # D2's staff registering the same phone is refused with D1's name and the date.
    refused = live_server.request("POST", REGISTRATIONS, _shop("+86 139-5555-0001", name="西溪烟酒"), headers=d2)
    assert refused.status == 409 and refused.body["error"]["code"] == "registration_conflict", refused.body
    assert refused.body["error"]["details"]["held_by"] == "杭州西湖分销"
    until = datetime.fromisoformat(first.body["protected_until"]).astimezone(BUSINESS_TZ).date().isoformat()
    assert refused.body["error"]["details"]["until"] == until  # the day in China
    assert "杭州西湖分销" in refused.body["error"]["message"]
    # The shop becomes a store and its owner redeems an invite: the registration shows converted.
    with live_server.db():
        d1_id = db.session.scalar(sa.select(Partner.id).where(Partner.code == "D1"))
        tier = db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == "retail"))
    store = live_server.request("POST", "/api/hq/v1/stores", {
        "code": "S-WALK", "name": "西溪新开烟酒店", "region_code": "330106", "distributor_id": d1_id,
        "price_tier_id": tier, "phone": phone}, headers=hq)
    assert store.status == 201, store.body
    invite = live_server.request("POST", "/api/hq/v1/invites", {"role": "store_owner",
                                                                "store_id": store.body["id"]}, headers=hq)
    redeemed = live_server.request("POST", f"/api/mp/v1/invites/{invite.body['token']}/redeem", {},
                                   headers=live_server.login("walk_new_owner"))
    assert redeemed.status == 200, redeemed.body
    mine = live_server.request("GET", f"{REGISTRATIONS}?status=converted", headers=d1).body["items"]
    walked = next(i for i in mine if i["id"] == first.body["id"])
    assert walked["status"] == "converted" and walked["store_id"] == store.body["id"]
    assert walked["converted_via"] == "invite"


def test_two_partners_at_the_same_instant_one_wins(live_server):
    d1, d2 = live_server.login("demo_distributor"), live_server.login("demo_distributor_2")
    for round_ in range(5):
        phone = f"1396666{round_:04d}"
        # In Ningbo, where nobody holds the territory exclusively: either partner may bring the shop in.
        calls = [Call("POST", REGISTRATIONS, _shop(phone, name=f"同时报备店{round_}", region_code="330203",
                                                   address="宁波市海曙区中山西路 9 号"), tuple(h.items()))
                 for h in (d1, d2)]
        replies = fire(live_server.base_url, calls, processes=2)
        assert sorted(r.status for r in replies) == [201, 409], [(r.status, r.body) for r in replies]
        assert {r.error_code for r in replies if r.status == 409} == {"registration_conflict"}
