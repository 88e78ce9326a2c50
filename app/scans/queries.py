"""Reads about scans: a store's recent scans, diversion alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.codes.models import Code, ScanEvent
from app.codes.queries import visible_store_ids
from app.core.security import Principal, authorize_store
from app.extensions import db
from app.scans.models import DiversionAlert


def list_store_scans(principal: Principal, store_id: int, *, page: int, page_size: int) -> dict[str, Any]:
    """A store's scans, newest first, each saying whether it was undone."""
    authorize_store(principal, "store.read", store_id)
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
                     until: datetime | None = None, source: str | None = None,
                     principal: Principal | None = None) -> sa.Select:
    """Alerts, newest first, filtered by source, SKU, selling store, region (expected or actual) and period.

    With `principal`, only the alerts they may read (in SQL, so a limit applies to what they see): where the
    unit was sold, or meant to be, at a store in their scope; the whole network for HQ staff not bound to a region.
    """
    stmt = sa.select(DiversionAlert, Code.serial).join(Code, Code.id == DiversionAlert.code_id)
    if principal is not None:
        stores = visible_store_ids(principal)
        if stores is not None:
            stmt = stmt.where(sa.or_(DiversionAlert.actual_store_id.in_(stores),
                                     DiversionAlert.expected_store_id.in_(stores)))
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


def list_alert_rows(principal: Principal, *, limit: int = 200) -> list[dict[str, Any]]:
    """The newest alerts the caller may read, with the SKU, store and distributor names (the console's list)."""
    expected_store, actual_store = aliased(Store), aliased(Store)
    expected_partner, actual_partner = aliased(Partner), aliased(Partner)
    alerts = diversion_alerts(principal=principal).limit(limit).subquery()
    a = aliased(DiversionAlert, alerts)
    rows = db.session.execute(
        sa.select(a, alerts.c.serial, Sku.name, expected_store.name, expected_partner.name, actual_store.name,
                  actual_partner.name)
        .outerjoin(Sku, Sku.id == a.sku_id)
        .outerjoin(expected_store, expected_store.id == a.expected_store_id)
        .outerjoin(expected_partner, expected_partner.id == a.expected_distributor_id)
        .outerjoin(actual_store, actual_store.id == a.actual_store_id)
        .outerjoin(actual_partner, actual_partner.id == a.actual_distributor_id)
        .order_by(a.id.desc())).all()
    return [{"created_at": r.created_at, "sku_id": r.sku_id, "sku_name": sku, "source": r.source, "serial": serial,
             "expected_store": es, "expected_distributor": ep, "expected_region": r.expected_region,
             "actual_store": as_, "actual_distributor": ap, "actual_region": r.actual_region, "policy": r.policy}
            for r, serial, sku, es, ep, as_, ap in rows]


def list_diversion_alerts(principal: Principal, *, store_id: int | None = None, **filters: Any) -> sa.Select:
    """`diversion_alerts` the caller may read, filtered in SQL: a region-bound caller sees the alerts where the unit
    was sold, or was meant to be, at a store in their region (a store asked for must be one they may read)."""
    if store_id is not None:
        authorize_store(principal, "hq.read", store_id)
    return diversion_alerts(store_id=store_id, principal=principal, **filters)
