"""Helpers for the registration tests: bodies of fresh shops, ids by demo code, store owners made directly."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.accounts.models import Membership, User
from app.accounts.roles import STORE_OWNER
from app.channel.models import Partner, Store
from app.core.tx import transaction
from app.extensions import db

REGISTRATIONS = "/api/mp/v1/registrations"


def new_shop(**extra) -> dict:
    """A registration body for a shop nobody holds (a fresh phone each time)."""
    n = uuid.uuid4().int % 10**8
    return {"request_id": uuid.uuid4().hex, "name": f"新店{n}", "phone": f"139{n:08d}",
            "address": "杭州市西湖区文一路 1 号", "region_code": "330106", "industry": "convenience", **extra}


def register(client, headers, **extra):
    return client.post(REGISTRATIONS, json=new_shop(**extra), headers=headers)


def ids() -> tuple[dict, dict]:
    stores = dict(db.session.execute(sa.select(Store.code, Store.id)).all())
    partners = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
    return stores, partners


def make_store_owner(store_id: int, openid: str) -> None:
    """Bind a new mini-program user as a store's owner directly (a test set-up, not the invite path)."""
    with transaction():
        user = User(openid=openid, display_name="测试店主")
        user.memberships.append(Membership(role=STORE_OWNER, store_id=store_id))
        db.session.add(user)
