"""Store stocktakes and adjustments: on hand brought to what was counted, every change explained in the ledger."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.core.tx import transaction
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.inventory.services import InsufficientStock, get_level, move_stock, set_counted


def store_location(store_id: int) -> int:
    """The stock location of a store, or 404."""
    location_id = db.session.scalar(sa.select(Store.location_id).where(Store.id == store_id))
    if location_id is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return location_id


def _check_skus(sku_ids: list[int]) -> None:
    found = set(db.session.scalars(sa.select(Sku.id).where(Sku.id.in_(sku_ids))))
    missing = sorted(set(sku_ids) - found)
    if missing:
        raise NotFound("找不到这个商品", code="sku_not_found", details={"sku_ids": missing})


def record_count(*, store_id: int, lines: list[dict], user_id: int, reason: str) -> list[dict[str, Any]]:
    """Stocktake: for each counted SKU, an adjustment to the counted quantity (all lines or none)."""
    if len({line["sku_id"] for line in lines}) != len(lines):
        raise ValidationFailed("同一个商品只能填一行", code="duplicate_sku")
    with transaction():
        location_id = store_location(store_id)
        _check_skus([line["sku_id"] for line in lines])
        out = []
        for line in sorted(lines, key=lambda x: x["sku_id"]):  # a fixed lock order across concurrent counts
            before = get_level(location_id=location_id, sku_id=line["sku_id"]).on_hand
            level = set_counted(location_id=location_id, sku_id=line["sku_id"], counted=line["counted"],
                                user_id=user_id, reason=reason)
            out.append({"sku_id": line["sku_id"], "before": before, "counted": line["counted"],
                        "delta": line["counted"] - before, "on_hand": level.on_hand})
    return out


def adjust(*, store_id: int, sku_id: int, delta: int, user_id: int, reason: str) -> dict[str, Any]:
    """Add or remove units with a reason (breakage, gift, found); never below zero."""
    if delta == 0:
        raise ValidationFailed("调整数量不能是 0", code="zero_adjustment")
    with transaction():
        location_id = store_location(store_id)
        _check_skus([sku_id])
        try:
            level = move_stock(location_id=location_id, sku_id=sku_id, on_hand=delta, kind="adjust",
                               ref_type="store_adjustment", user_id=user_id, reason=reason)
        except InsufficientStock as exc:
            raise InsufficientStock("店内库存不够，不能减这么多", details=exc.details) from None
    return {"sku_id": sku_id, "delta": delta, "on_hand": level.on_hand, "reason": reason}
