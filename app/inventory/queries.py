"""Reads about stock."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.extensions import db
from app.inventory.models import StockLevel, StockMovement


def list_store_stock(store_id: int) -> list[dict]:
    """Every SKU the store holds or has held, with on hand, reserved and available."""
    rows = db.session.execute(
        sa.select(Sku.id, Sku.code, Sku.name, Sku.unit, StockLevel.on_hand, StockLevel.reserved, StockLevel.updated_at)
        .join(StockLevel, StockLevel.sku_id == Sku.id)
        .join(Store, Store.location_id == StockLevel.location_id)
        .where(Store.id == store_id)
        .order_by(Sku.id)
    ).all()
    return [{"sku_id": r[0], "sku_code": r[1], "name": r[2], "unit": r[3], "on_hand": r[4], "reserved": r[5],
             "available": r[4] - r[5], "updated_at": r[6]} for r in rows]


def list_movements(location_id: int, sku_id: int | None = None) -> sa.Select:
    stmt = sa.select(StockMovement).where(StockMovement.location_id == location_id)
    if sku_id is not None:
        stmt = stmt.where(StockMovement.sku_id == sku_id)
    return stmt.order_by(StockMovement.id.desc())
