"""What every order's lines must be, store orders and consumer orders alike."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.errors import ValidationFailed
from app.extensions import db


def skus_of_lines(lines: list[dict[str, int]], *, max_lines: int) -> tuple[list[int], dict[int, Sku]]:
    """The lines' shape checked (at least one, at most `max_lines`, each SKU on one line), and their SKUs by id
    (a missing one is simply absent: the caller refuses it with its line)."""
    if not lines:
        raise ValidationFailed("请至少订一种商品", code="no_lines", details={"fields": {"lines": ["至少一行"]}})
    if len(lines) > max_lines:
        raise ValidationFailed(f"一张订单最多 {max_lines} 种商品", code="too_many_lines")
    sku_ids = [line["sku_id"] for line in lines]
    if len(set(sku_ids)) != len(sku_ids):
        raise ValidationFailed("同一商品请写在一行", code="duplicate_sku")
    return sku_ids, {s.id: s for s in db.session.scalars(sa.select(Sku).where(Sku.id.in_(sku_ids)))}
