"""Helpers for scan tests: find demo codes, make scan bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from app.channel.models import Store
from app.codes.models import Code
from app.extensions import db
from app.inventory.services import get_level


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
