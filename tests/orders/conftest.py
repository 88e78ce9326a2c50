"""Helpers for the order tests."""

from __future__ import annotations

import itertools

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db

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
