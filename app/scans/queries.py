"""Reads about scans: a store's recent scans, diversion alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.codes.models import Code, ScanEvent
from app.codes.queries import visible_store_ids
from app.core.regions import region_name
from app.core.security import Principal, authorize_store
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.scans.models import DiversionAlert, DiversionAlertEvent


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
                     until: datetime | None = None, source: str | None = None, status: str | None = None,
                     alert_id: int | None = None, principal: Principal | None = None) -> sa.Select:
    """Alerts, newest first, filtered by source, status, SKU, selling store, region (expected or actual; a province
    or city takes in everything under it) and period.

    With `principal`, only the alerts they may read (in SQL, so a limit applies to what they see): where the
    unit was sold, or meant to be, at a store in their scope; the whole network for HQ staff not bound to a region.
    """
    stmt = sa.select(DiversionAlert, Code.serial).join(Code, Code.id == DiversionAlert.code_id)
    if principal is not None:
        stores = visible_store_ids(principal)
        if stores is not None:
            stmt = stmt.where(sa.or_(DiversionAlert.actual_store_id.in_(stores),
                                     DiversionAlert.expected_store_id.in_(stores)))
    if alert_id is not None:
        stmt = stmt.where(DiversionAlert.id == alert_id)
    if source is not None:
        stmt = stmt.where(DiversionAlert.source == source)
    if status is not None:
        stmt = stmt.where(DiversionAlert.status == status)
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
        stmt = stmt.where(sa.or_(DiversionAlert.actual_region.startswith(prefix, autoescape=True),
                                 DiversionAlert.expected_region.startswith(prefix, autoescape=True)))
    if since is not None:
        stmt = stmt.where(DiversionAlert.created_at >= since)
    if until is not None:
        stmt = stmt.where(DiversionAlert.created_at < until)
    return stmt.order_by(DiversionAlert.id.desc())


def _user_name(display_name: str | None, username: str | None) -> str | None:
    return display_name or username or None


def _alert_rows(alerts: sa.Select) -> list[dict[str, Any]]:
    """The alerts of `alerts` (a select of `diversion_alerts`) with the names beside the ids."""
    expected_store, actual_store = aliased(Store), aliased(Store)
    expected_partner, actual_partner = aliased(Partner), aliased(Partner)
    sub = alerts.subquery()
    a = aliased(DiversionAlert, sub)
    rows = db.session.execute(
        sa.select(a, sub.c.serial, Sku.name, expected_store.name, expected_partner.name, actual_store.name,
                  actual_partner.name, User.display_name, User.username)
        .outerjoin(Sku, Sku.id == a.sku_id)
        .outerjoin(expected_store, expected_store.id == a.expected_store_id)
        .outerjoin(expected_partner, expected_partner.id == a.expected_distributor_id)
        .outerjoin(actual_store, actual_store.id == a.actual_store_id)
        .outerjoin(actual_partner, actual_partner.id == a.actual_distributor_id)
        .outerjoin(User, User.id == a.handled_by_id)
        .order_by(a.id.desc())).all()
    return [{"id": r.id, "created_at": r.created_at, "serial": serial, "sku_id": r.sku_id, "sku_name": sku,
             "source": r.source, "event_id": r.event_id, "policy": r.policy,
             "expected_store_id": r.expected_store_id, "expected_store_name": es,
             "expected_distributor_id": r.expected_distributor_id, "expected_distributor_name": ep,
             "expected_region": r.expected_region,
             "expected_region_name": region_name(r.expected_region) if r.expected_region else None,
             "actual_store_id": r.actual_store_id, "actual_store_name": as_,
             "actual_distributor_id": r.actual_distributor_id, "actual_distributor_name": ap,
             "actual_region": r.actual_region,
             "actual_region_name": region_name(r.actual_region) if r.actual_region else None,
             "status": r.status, "handled_by_id": r.handled_by_id, "handled_by_name": _user_name(dn, un),
             "handled_at": r.handled_at}
            for r, serial, sku, es, ep, as_, ap, dn, un in rows]


def list_alert_rows(principal: Principal, *, limit: int = 200, offset: int = 0,
                    **filters: Any) -> list[dict[str, Any]]:
    """The newest alerts the caller may read (filtered in SQL), with the SKU, store, distributor, region and
    handler names beside the ids (the console's list, the HQ API's list and its export)."""
    return _alert_rows(list_diversion_alerts(principal, **filters).limit(limit).offset(offset))


def count_alerts(principal: Principal, **filters: Any) -> int:
    stmt = list_diversion_alerts(principal, **filters).order_by(None)
    return db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0


def get_alert_detail(principal: Principal, alert_id: int) -> dict[str, Any]:
    """One alert with its names and its whole history, oldest first; 404 when there is none, 403 when it lies
    outside the caller's region."""
    rows = _alert_rows(diversion_alerts(alert_id=alert_id, principal=principal))
    if not rows:
        if db.session.get(DiversionAlert, alert_id) is None:
            raise NotFound("找不到这条预警", code="alert_not_found")
        raise Forbidden("这条预警不在你负责的地区", code="out_of_scope", details={"action": "hq.read"})
    events = db.session.execute(
        sa.select(DiversionAlertEvent, User.display_name, User.username)
        .outerjoin(User, User.id == DiversionAlertEvent.user_id)
        .where(DiversionAlertEvent.alert_id == alert_id).order_by(DiversionAlertEvent.id)).all()
    return {**rows[0], "events": [
        {"id": e.id, "kind": e.kind, "from_status": e.from_status, "to_status": e.to_status, "note": e.note,
         "user_id": e.user_id, "user_name": _user_name(dn, un), "created_at": e.created_at}
        for e, dn, un in events]}


def list_diversion_alerts(principal: Principal, *, store_id: int | None = None, **filters: Any) -> sa.Select:
    """`diversion_alerts` the caller may read, filtered in SQL: a region-bound caller sees the alerts where the unit
    was sold, or was meant to be, at a store in their region (a store asked for must be one they may read)."""
    if store_id is not None:
        authorize_store(principal, "hq.read", store_id)
    return diversion_alerts(store_id=store_id, principal=principal, **filters)
