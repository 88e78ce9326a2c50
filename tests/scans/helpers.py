"""Helpers for scan tests: find demo codes, make scan bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.roles import STORE_OWNER
from app.channel.models import Store
from app.codes.models import Code, CodeBatch
from app.codes.services import generate_batch
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.inventory.services import get_level, move_stock


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def body(code: str, action: str = "sell", **extra) -> dict:
    return {"request_id": uuid.uuid4().hex, "code": code, "action": action, "scanned_at": now_iso(), **extra}


def store(code: str) -> Store:
    return db.session.scalar(sa.select(Store).where(Store.code == code))


def codes_in(store_code: str, state: str = "in_store", kind: str = "unit", n: int = 1, sku_id: int | None = None):
    s = store(store_code)
    column = Code.destination_store_id if state == "in_transit" else Code.store_id
    stmt = sa.select(Code).where(column == s.id, Code.state == state, Code.kind == kind).order_by(Code.id)
    if sku_id is not None:
        stmt = stmt.where(Code.sku_id == sku_id)
    return list(db.session.scalars(stmt.limit(n)))


def on_hand(store_code: str, sku_id: int) -> int:
    return get_level(location_id=store(store_code).location_id, sku_id=sku_id).on_hand


def owner_principal(store_code: str, user_openid: str = "demo_store_owner") -> Principal:
    """The caller a store owner's token states: the demo user `user_openid` as owner of the store."""
    uid = db.session.scalar(sa.select(User.id).where(User.openid == user_openid))
    return Principal(user_id=uid, kind="mp", bindings=(Binding(role=STORE_OWNER, store_id=store(store_code).id),))


def stock_store_with_codes(store_code: str, sku_id: int, n: int) -> list[str]:
    """n fresh codes of a SKU in the store's stock (issued, then booked straight in for the test)."""
    with transaction():
        batch = CodeBatch(sku_id=sku_id, quantity=n, status="pending")
        db.session.add(batch)
    generate_batch(batch.id)
    s = store(store_code)
    with transaction():
        db.session.execute(sa.update(Code).where(Code.batch_id == batch.id).values(
            state="in_store", store_id=s.id, location_id=s.location_id, destination_store_id=s.id,
            destination_distributor_id=s.distributor_id, destination_region=s.city_code))
        move_stock(location_id=s.location_id, sku_id=sku_id, on_hand=n, kind="receive", reason="test")
    return list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id).order_by(Code.id)))
