"""Helpers for the order tests."""

from __future__ import annotations

import itertools

import pytest
import requests
import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN, STORE_OWNER
from app.core.security import Binding, Principal
from app.extensions import db
from app.orders import payments, services

_ids = itertools.count(1)

MP = "/api/mp/v1"
HQ = "/api/hq/v1"


def rid(prefix: str = "t") -> str:
    return f"{prefix}-{next(_ids)}"


def ids(app):
    """Demo ids by code."""
    from app.catalog.models import Sku
    from app.channel.models import Partner, Store
    from app.inventory.models import Warehouse

    with app.app_context():
        out = {
            "stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
            "skus": dict(db.session.execute(sa.select(Sku.code, Sku.id)).all()),
            "partners": dict(db.session.execute(sa.select(Partner.code, Partner.id)).all()),
            "warehouses": dict(db.session.execute(sa.select(Warehouse.code, Warehouse.id)).all()),
        }
        db.session.remove()
    return out


@pytest.fixture()
def demo_ids(app, demo):
    return ids(app)


def place(client, headers, store_id, lines, **extra):
    body = {"request_id": rid(), "store_id": store_id, "lines": lines, **extra}
    return client.post(f"{MP}/orders", json=body, headers=headers)


def fake_messages(fake_wechat):
    return requests.get(fake_wechat.url("/_fake/messages"), timeout=5).json()


def fake_pay(fake_wechat, out_trade_no, notify=True):
    resp = requests.post(fake_wechat.url(f"/_fake/pay/{out_trade_no}/pay"), json={"notify": notify}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def admin_principal(app):
    """HQ's admin as a Principal, for service calls."""
    from app.accounts.models import User

    uid = db.session.scalar(sa.select(User.id).where(User.username == "admin"))
    return Principal(uid, "hq", (Binding(HQ_ADMIN),))


def paid_order(app, store_code, lines, demo_ids, request_id=None):
    """An owner order for the store, paid offline by HQ (service calls; returns the order id)."""
    from app.accounts.models import Membership

    with app.app_context():
        store_id = demo_ids["stores"][store_code]
        owner_id = db.session.scalar(sa.select(Membership.user_id).where(Membership.store_id == store_id,
                                                                          Membership.role == STORE_OWNER))
        owner = Principal(owner_id, "mp", (Binding(STORE_OWNER, store_id=store_id),))
        order = services.create_order(owner, request_id=request_id or rid("svc"), store_id=store_id,
                                      lines=[{"sku_id": demo_ids["skus"][c], "quantity": q} for c, q in lines])
        payments.record_offline_payment(admin_principal(app), order.id, reference="T")
        order_id = order.id
        db.session.remove()
    return order_id
