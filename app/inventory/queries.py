"""Reads about stock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.catalog.models import Sku
from app.catalog.units import sum_by_unit
from app.errors import Conflict
from app.extensions import db
from app.inventory.models import StockLevel, StockMovement, Warehouse


def list_location_stock(location_id: int) -> list[dict]:
    """Every SKU the location holds or has held, with on hand, reserved and available."""
    rows = db.session.execute(
        sa.select(Sku.id, Sku.code, Sku.name, Sku.unit, StockLevel.on_hand, StockLevel.reserved, StockLevel.updated_at)
        .join(StockLevel, StockLevel.sku_id == Sku.id)
        .where(StockLevel.location_id == location_id)
        .order_by(Sku.id)
    ).all()
    return [{"sku_id": r[0], "sku_code": r[1], "name": r[2], "unit": r[3], "on_hand": r[4], "reserved": r[5],
             "available": r[4] - r[5], "updated_at": r[6]} for r in rows]


def list_movements(location_id: int, sku_id: int | None = None) -> sa.Select:
    stmt = sa.select(StockMovement).where(StockMovement.location_id == location_id)
    if sku_id is not None:
        stmt = stmt.where(StockMovement.sku_id == sku_id)
    return stmt.order_by(StockMovement.id.desc())


def get_central_warehouse() -> Warehouse:
    """The central warehouse (the first, if there were several), or a conflict: nothing can ship without one."""
    wh = db.session.scalar(sa.select(Warehouse).where(Warehouse.kind == "central").order_by(Warehouse.id))
    if wh is None:
        raise Conflict("还没有中央仓", code="no_central_warehouse")
    return wh


def list_warehouse_stock() -> list[dict]:
    """On hand per warehouse and SKU (the rows the warehouses hold), warehouses and SKUs in id order."""
    rows = db.session.execute(
        sa.select(Warehouse.id, Warehouse.name, Warehouse.kind, Sku.id, Sku.name, StockLevel.on_hand)
        .join(StockLevel, StockLevel.location_id == Warehouse.location_id).join(Sku, Sku.id == StockLevel.sku_id)
        .order_by(Warehouse.id, Sku.id))
    return [{"warehouse_id": wh_id, "warehouse": wh, "kind": kind, "sku_id": sku_id, "sku": sku, "on_hand": on_hand}
            for wh_id, wh, kind, sku_id, sku, on_hand in rows]


def list_warehouses() -> list[dict]:
    """Every warehouse, the cities it serves and its stock per sellable unit (`stock_by_unit`: 120 提 · 30 袋, as
    a 提 and a 袋 are not added up; `stock_units` counts every unit alike): one query for the list, one for all
    their cities and one for all their stock (none per warehouse)."""
    units = (sa.select(sa.func.coalesce(sa.func.sum(StockLevel.on_hand), 0))
             .where(StockLevel.location_id == Warehouse.location_id).scalar_subquery())
    rows = db.session.execute(sa.select(Warehouse, units.label("stock_units")).order_by(Warehouse.id)
                              .options(selectinload(Warehouse.cities))).all()
    per_unit: dict[int, list[tuple[str, int]]] = {}
    for loc, unit, n in db.session.execute(
            sa.select(StockLevel.location_id, Sku.unit, sa.func.sum(StockLevel.on_hand))
            .join(Sku, Sku.id == StockLevel.sku_id)
            .where(StockLevel.location_id.in_(sa.select(Warehouse.location_id)))
            .group_by(StockLevel.location_id, Sku.unit)):
        per_unit.setdefault(loc, []).append((unit, int(n or 0)))
    return [{"id": w.id, "code": w.code, "name": w.name, "kind": w.kind, "city_code": w.city_code,
             "location_id": w.location_id, "serves": [c.city_code for c in w.cities], "stock_units": int(n or 0),
             "stock_by_unit": [g for g in sum_by_unit(per_unit.get(w.location_id, [])) if g["quantity"]]}
            for w, n in rows]


def page_location_stock(location_id: int, *, page: int, page_size: int) -> dict:
    """One page of `list_location_stock` (by SKU id, a stable order), with the whole count."""
    base = sa.select(StockLevel.sku_id).where(StockLevel.location_id == location_id)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    rows = db.session.execute(
        sa.select(Sku.id, Sku.code, Sku.name, Sku.unit, StockLevel.on_hand, StockLevel.reserved, StockLevel.updated_at)
        .join(StockLevel, StockLevel.sku_id == Sku.id)
        .where(StockLevel.location_id == location_id)
        .order_by(Sku.id).limit(page_size).offset((page - 1) * page_size)
    ).all()
    items = [{"sku_id": r[0], "sku_code": r[1], "name": r[2], "unit": r[3], "on_hand": r[4], "reserved": r[5],
              "available": r[4] - r[5], "updated_at": r[6]} for r in rows]
    return {"items": items, "page": page, "page_size": page_size, "total": total}
