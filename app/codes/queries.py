"""Reads about codes: find codes, one code's full trace, a period's events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.accounts.roles import HQ_ROLES, PERMISSIONS
from app.catalog.models import Sku
from app.channel.models import Store
from app.channel.queries import visible_stores_condition
from app.codes.models import Code, CodeBatch, ScanEvent
from app.codes.parse import ScanParseError, code_url, grouped, parse_scan
from app.core.security import Principal, authorize_store
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.inventory.models import Location


def url_for_code(gtin: str, serial: str) -> str:
    """What the QR holds."""
    return code_url(current_app.config["CODE_URL_BASE"], gtin, serial)


def visible_store_ids(principal: Principal, action: str = "hq.read") -> sa.Select | None:
    """The stores whose codes and events an HQ caller may read; None when they may read the whole network."""
    if any(b.role in HQ_ROLES and not b.region_code and action in PERMISSIONS.get(b.role, ())
           for b in principal.bindings):
        return None
    return sa.select(Store.id).where(visible_stores_condition(principal, action))


def authorize_code(principal: Principal, code: Code, action: str = "hq.read") -> None:
    """Raise Forbidden unless the caller may read this code: at, or bound for, a store in their scope."""
    if visible_store_ids(principal, action) is None:
        return
    for store_id in {code.store_id, code.destination_store_id} - {None}:
        try:
            authorize_store(principal, action, store_id)
            return
        except Forbidden:
            continue
    raise Forbidden("这不在你的权限范围内", code="out_of_scope", details={"action": action})


def get_batch(batch_id: int) -> CodeBatch | None:
    return db.session.get(CodeBatch, batch_id)


def list_batches(*, limit: int = 200) -> list[dict[str, Any]]:
    """The newest code batches with their SKU's name and progress."""
    rows = db.session.execute(sa.select(CodeBatch, Sku.name).outerjoin(Sku, Sku.id == CodeBatch.sku_id)
                              .order_by(CodeBatch.id.desc()).limit(limit))
    return [{"id": b.id, "sku_id": b.sku_id, "sku_name": name, "quantity": b.quantity, "case_size": b.case_size,
             "status": b.status, "units_made": b.units_made, "created_at": b.created_at} for b, name in rows]


def list_label_rows(batch_id: int, kind: str, offset: int = 0, limit: int | None = None) -> list[dict]:
    """A batch's unit or case codes for printing: serial, kind, printed URL, SKU name and case serial."""
    case = aliased(Code)
    stmt = (sa.select(Code.serial, Code.kind, Sku.gtin, Sku.name, case.serial)
            .join(Sku, Sku.id == Code.sku_id).outerjoin(case, case.id == Code.case_id)
            .where(Code.batch_id == batch_id, Code.kind == kind).order_by(Code.id).offset(offset))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [{"serial": s, "kind": k, "url": url_for_code(g, s), "name": n, "case_serial": cs}
            for s, k, g, n, cs in db.session.execute(stmt)]


def get_code_for(principal: Principal, text: str, action: str = "hq.read") -> Code:
    """The code a serial or printed URL names, which the caller may read; else 404 / 403."""
    code = find_code(text)
    if code is None:
        raise NotFound("找不到这个码", code="code_not_found")
    authorize_code(principal, code, action)
    return code


def get_code_url_for(principal: Principal, serial: str) -> str:
    """What a code's QR holds, for a code the caller may read."""
    code = get_code_for(principal, serial)
    gtin = db.session.scalar(sa.select(Sku.gtin).where(Sku.id == code.sku_id))
    return url_for_code(gtin, code.serial)


def get_trace_for(principal: Principal, text: str) -> dict[str, Any]:
    """`trace` of a code the caller may read."""
    return trace(get_code_for(principal, text))


def list_codes(*, state: str | None = None, store_id: int | None = None, sku_id: int | None = None,
               batch_id: int | None = None, kind: str | None = None, principal: Principal | None = None) -> sa.Select:
    """Codes with their SKU's GTIN, filtered; with `principal`, only the codes they may read."""
    stmt = sa.select(Code, Sku.gtin).join(Sku, Sku.id == Code.sku_id)
    if principal is not None:
        if store_id is not None:
            authorize_store(principal, "hq.read", store_id)
        stores = visible_store_ids(principal)
        if stores is not None:
            stmt = stmt.where(sa.or_(Code.store_id.in_(stores), Code.destination_store_id.in_(stores)))
    if state:
        stmt = stmt.where(Code.state == state)
    if store_id is not None:
        stmt = stmt.where(Code.store_id == store_id)
    if sku_id is not None:
        stmt = stmt.where(Code.sku_id == sku_id)
    if batch_id is not None:
        stmt = stmt.where(Code.batch_id == batch_id)
    if kind:
        stmt = stmt.where(Code.kind == kind)
    return stmt.order_by(Code.id)


def code_item(code: Code, gtin: str) -> dict[str, Any]:
    return {"serial": code.serial, "serial_grouped": grouped(code.serial), "url": url_for_code(gtin, code.serial),
            "sku_id": code.sku_id, "kind": code.kind, "state": code.state, "store_id": code.store_id,
            "location_id": code.location_id, "batch_id": code.batch_id, "case_id": code.case_id,
            "order_id": code.order_id, "destination_store_id": code.destination_store_id,
            "destination_distributor_id": code.destination_distributor_id,
            "destination_region": code.destination_region, "sold_at": code.sold_at,
            "first_verified_at": code.first_verified_at, "verify_count": code.verify_count}


def find_code(text: str) -> Code | None:
    """A code by serial (any accepted spelling) or printed URL; None when it is not one of ours."""
    try:
        scanned = parse_scan(text)
    except ScanParseError:
        return None
    if not scanned.serial:
        return None
    return db.session.scalar(sa.select(Code).where(Code.serial == scanned.serial))


def trace(code: Code) -> dict[str, Any]:
    """One code's product, state, location, case and contents, and every event in time order."""
    sku = db.session.get(Sku, code.sku_id)
    item = code_item(code, sku.gtin)
    item["sku"] = {"sku_id": sku.id, "code": sku.code, "name": sku.name, "gtin": sku.gtin, "unit": sku.unit,
                   "case_unit": sku.case_unit, "case_pack": sku.case_pack}
    item["location_name"] = db.session.scalar(sa.select(Location.name).where(Location.id == code.location_id)) \
        if code.location_id else None
    item["case_serial"] = db.session.scalar(sa.select(Code.serial).where(Code.id == code.case_id)) \
        if code.case_id else None
    item["units"] = list(db.session.scalars(sa.select(Code.serial).where(Code.case_id == code.id).order_by(Code.id))) \
        if code.kind == "case" else []
    undo = aliased(ScanEvent)
    rows = db.session.execute(
        sa.select(ScanEvent, Store.name, User.display_name, undo.id, Location.name)
        .outerjoin(Store, Store.id == ScanEvent.store_id).outerjoin(User, User.id == ScanEvent.user_id)
        .outerjoin(undo, undo.corrects_event_id == ScanEvent.id)
        .outerjoin(Location, Location.id == ScanEvent.location_id)
        .where(ScanEvent.code_id == code.id).order_by(ScanEvent.id)
    ).all()
    item["events"] = [{**event_dict(e, store_name, user_name, undone_by), "location_name": location_name}
                      for e, store_name, user_name, undone_by, location_name in rows]
    return item


def event_dict(e: ScanEvent, store_name: str | None = None, user_name: str | None = None,
               undone_by: int | None = None) -> dict[str, Any]:
    return {"id": e.id, "action": e.action, "biz_step": e.biz_step, "disposition": e.disposition,
            "quantity": e.quantity, "store_id": e.store_id, "store_name": store_name, "location_id": e.location_id,
            "event_time": e.event_time, "recorded_at": e.recorded_at, "user_id": e.user_id, "user_name": user_name,
            "order_id": e.order_id, "lat": e.lat, "lng": e.lng, "parent_event_id": e.parent_event_id,
            "corrects_event_id": e.corrects_event_id, "undone_by_event_id": undone_by, "diverted": e.diverted}


def events_between(since: datetime, until: datetime, limit: int = 100_000,
                   store_ids: sa.Select | None = None) -> list[tuple]:
    """Events recorded in [since, until) with their code's serial and SKU GTIN, for the EPCIS export.

    `store_ids` limits them to events at those stores (a region-bound caller); None means every event.
    """
    stmt = (sa.select(ScanEvent, Code.serial, Code.kind, Sku.gtin, Location.name, Location.kind)
            .outerjoin(Code, Code.id == ScanEvent.code_id).join(Sku, Sku.id == ScanEvent.sku_id)
            .outerjoin(Location, Location.id == ScanEvent.location_id)
            .where(ScanEvent.recorded_at >= since, ScanEvent.recorded_at < until))
    if store_ids is not None:
        stmt = stmt.where(ScanEvent.store_id.in_(store_ids))
    return db.session.execute(stmt.order_by(ScanEvent.id).limit(limit)).all()
