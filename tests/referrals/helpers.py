"""Helpers for referral tests: consumers, the policy, sales and verifications through the real routes."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.referrals.models import ReferralAccount, ReferralReward
from tests.scans.helpers import body, codes_in

MP = "/api/mp/v1"
ON = {"enabled": True, "binding_days": 30, "purchase_window_days": 7, "reward_fen": 500, "freeze_days": 7,
      "daily_cap_fen": 100_000, "levels": 1, "level2_reward_fen": 0}


def consumer(client, openid: str) -> tuple[dict[str, str], int]:
    resp = client.post(f"{MP}/consumer-sessions", json={"code": f"demo:{openid}"})
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    return {"Authorization": f"Bearer {data['token']}"}, data["user"]["id"]


def policy(client, admin, **changes) -> dict:
    resp = client.put("/api/hq/v1/referral-policy", json={**ON, **changes}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def verify(client, headers, serial: str) -> dict:
    resp = client.post(f"{MP}/consumer-verifications", json={"code": serial}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def link(client, headers) -> str:
    resp = client.post(f"{MP}/referral-links", headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["link"]


def bind(client, headers, token: str):
    return client.post(f"{MP}/referrals/{token}/bind", headers=headers)


def sharer(client, openid: str) -> tuple[dict[str, str], int, str]:
    """A consumer who verified a genuine unit and made their link."""
    headers, uid = consumer(client, openid)
    unit = unused_units("S2")[0]
    verify(client, headers, unit.serial)
    return headers, uid, link(client, headers)


_used: set[str] = set()


def unused_units(store: str = "S1", n: int = 1):
    units = [c for c in codes_in(store, n=n + 40) if c.serial not in _used][:n]
    assert len(units) == n
    _used.update(c.serial for c in units)
    return units


def sold_unit(client, owner) -> str:
    """A unit of S1 sold just now by its owner."""
    serial = unused_units("S1")[0].serial
    resp = client.post(f"{MP}/scans", json=body(serial), headers=owner)
    assert resp.get_json()["status"] == "accepted", resp.get_json()
    return serial


def rewards(referrer_id: int) -> list[ReferralReward]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(ReferralReward).where(ReferralReward.referrer_id == referrer_id)
                                   .order_by(ReferralReward.id)))


def account(user_id: int) -> tuple[int, int, int]:
    db.session.expire_all()
    a = db.session.get(ReferralAccount, user_id)
    return (a.pending_fen, a.available_fen, a.paid_fen) if a else (0, 0, 0)
