"""Reads about scans: a store's recent scans, diversion alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.catalog.models import Sku
from app.codes.models import Code
from app.extensions import db
from app.scans.models import DiversionAlert, ScanEvent


def list_store_scans(store_id: int, *, page: int, page_size: int) -> dict[str, Any]:
    """A store's scans, newest first, each saying whether it was undone."""
    undo = aliased(ScanEvent)
    base = sa.select(ScanEvent.id).where(ScanEvent.store_id == store_id, ScanEvent.parent_event_id.is_(None),
                                         ScanEvent.action.in_(("receive", "sell", "return", "undo")))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    rows = db.session.execute(
        sa.select(ScanEvent, Code.serial, Sku.name, undo.id)
        .outerjoin(Code, Code.id == ScanEvent.code_id).join(Sku, Sku.id == ScanEvent.sku_id)
        .outerjoin(undo, undo.corrects_event_id == ScanEvent.id)
        .where(ScanEvent.id.in_(base.order_by(ScanEvent.id.desc()).limit(page_size).offset((page - 1) * page_size)))
        .order_by(ScanEvent.id.desc())
    ).all()
    items = [{"id": e.id, "event_id": e.id, "action": e.action, "biz_step": e.biz_step, "serial": serial,
              "sku_id": e.sku_id, "sku_name": name, "quantity": e.quantity, "event_time": e.event_time,
              "recorded_at": e.recorded_at, "user_id": e.user_id, "undone": undo_id is not None,
              "corrects_event_id": e.corrects_event_id, "diverted": e.diverted}
             for e, serial, name, undo_id in rows]
    return {"items": items, "page": page, "page_size": page_size, "total": total}


def diversion_alerts(*, sku_id: int | None = None, store_id: int | None = None, region: str | None = None,
                     distributor_id: int | None = None, since: datetime | None = None,
                     until: datetime | None = None, source: str | None = None) -> sa.Select:
    """Alerts, newest first, filtered by source, SKU, selling store, region (expected or actual) and period."""
    stmt = sa.select(DiversionAlert, Code.serial).join(Code, Code.id == DiversionAlert.code_id)
    if source is not None:
        stmt = stmt.where(DiversionAlert.source == source)
    if sku_id is not None:
        stmt = stmt.where(DiversionAlert.sku_id == sku_id)
    if store_id is not None:
        stmt = stmt.where(sa.or_(DiversionAlert.actual_store_id == store_id,
                                 DiversionAlert.expected_store_id == store_id))
    if distributor_id is not None:
        stmt = stmt.where(sa.or_(DiversionAlert.actual_distributor_id == distributor_id,
                                 DiversionAlert.expected_distributor_id == distributor_id))
    if region:
        prefix = region[:2] if region.endswith("0000") else region[:4] if region.endswith("00") else region
        stmt = stmt.where(sa.or_(DiversionAlert.actual_region.startswith(prefix),
                                 DiversionAlert.expected_region.startswith(prefix)))
    if since is not None:
        stmt = stmt.where(DiversionAlert.created_at >= since)
    if until is not None:
        stmt = stmt.where(DiversionAlert.created_at < until)
    return stmt.order_by(DiversionAlert.id.desc())
