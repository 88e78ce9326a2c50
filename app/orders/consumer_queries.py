"""Reads about consumer orders, filtered in SQL by who is asking.

The partner that brought an order sees it (role `brought`), the partner serving it sees it (role `serving`; its
agent over either side sees both), HQ sees all of them, or those in its region; warehouse operators see all (they
ship them).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.accounts.roles import HQ_ADMIN, HQ_ANALYST, PARTNER_ROLES, PERMISSIONS, WAREHOUSE_OPERATOR
from app.channel.models import Partner
from app.core.regions import region_name
from app.core.security import Principal, authorize_action
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders import consumer_orders
from app.orders.models import CommissionEntry, ConsumerOrder, ConsumerOrderEvent

ACTION = "consumer_order.read"


def _side(column, path: str) -> sa.ColumnElement[bool]:
    return column.in_(sa.select(Partner.id).where(Partner.path.startswith(path)))


def visible_condition(principal: Principal, role: str | None = None) -> sa.ColumnElement[bool]:
    """A WHERE clause over `ConsumerOrder` for the orders the caller may see (`role`: brought or serving only)."""
    clauses: list[sa.ColumnElement[bool]] = []
    for b in principal.bindings:
        if ACTION not in PERMISSIONS.get(b.role, ()):
            continue
        if b.role in PARTNER_ROLES and b.partner_path:
            if role in (None, "brought"):
                clauses.append(_side(ConsumerOrder.brought_by_partner_id, b.partner_path))
            if role in (None, "serving"):
                clauses.append(_side(ConsumerOrder.serving_partner_id, b.partner_path))
        elif b.role in (HQ_ADMIN, HQ_ANALYST, WAREHOUSE_OPERATOR) and role is None:
            if not b.region_code or b.role == WAREHOUSE_OPERATOR:
                return sa.true()
            code = b.region_code[:6]
            if code.endswith("0000"):
                clauses.append(ConsumerOrder.province_code == code)
            elif code.endswith("00"):
                clauses.append(ConsumerOrder.city_code == code)
            else:
                clauses.append(ConsumerOrder.region_code == code)
    return sa.or_(*clauses) if clauses else sa.false()


def list_consumer_orders(principal: Principal, *, role: str | None = None, status: str | None = None,
                         partner_id: int | None = None) -> sa.Select:
    """The consumer orders the caller may see, newest first."""
    stmt = sa.select(ConsumerOrder).where(visible_condition(principal, role))
    if status:
        stmt = stmt.where(ConsumerOrder.status == status)
    if partner_id is not None:
        stmt = stmt.where(sa.or_(ConsumerOrder.brought_by_partner_id == partner_id,
                                 ConsumerOrder.serving_partner_id == partner_id))
    return stmt.order_by(ConsumerOrder.id.desc())


def get_consumer_order_for(principal: Principal, order_id: int) -> ConsumerOrder:
    """One order the caller may see, or 404 / 403."""
    order = consumer_orders.get_consumer_order(order_id)
    consumer_orders.authorize_read(principal, order)
    return order


def _names(ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Partner.id, Partner.name).where(Partner.id.in_(ids))).all())


def order_dicts(orders: list[ConsumerOrder], *, events: bool = False) -> list[dict[str, Any]]:
    """The answer shape of consumer orders (names resolved in one query per kind)."""
    ids = [o.id for o in orders]
    entries = list(db.session.scalars(sa.select(CommissionEntry).where(
        CommissionEntry.consumer_order_id.in_(ids)).order_by(CommissionEntry.id))) if ids else []
    names = _names({o.brought_by_partner_id for o in orders} | {o.serving_partner_id for o in orders}
                   | {o.brought_by_agent_id for o in orders} | {o.serving_agent_id for o in orders}
                   | {e.partner_id for e in entries})
    splits: dict[int, list[dict]] = {}
    for e in entries:
        splits.setdefault(e.consumer_order_id, []).append(
            {"partner_id": e.partner_id, "partner_name": names.get(e.partner_id, ""), "role": e.role,
             "share_bp": e.share_bp, "amount_fen": e.amount_fen, "margin_fen": e.base_fen})
    warehouses = dict(db.session.execute(sa.select(Warehouse.id, Warehouse.name).where(
        Warehouse.id.in_({o.warehouse_id for o in orders if o.warehouse_id}))).all()) if ids else {}
    limit = _tries_limit()
    out = []
    for o in orders:
        item = {
            "id": o.id, "number": o.number, "status": o.status,
            "status_name": consumer_orders.STATUS_NAMES.get(o.status, o.status),
            "message": consumer_orders.routing_message(o, names.get(o.serving_partner_id)),
            "customer": {"name": o.customer_name, "phone": o.customer_phone},
            "address": o.address, "region_code": o.region_code, "region_name": _place(o),
            "needs_service": o.needs_service, "total_fen": o.total_fen,
            "lines": [{"sku_id": ln.sku_id, "sku_name": ln.sku.name if ln.sku else "", "quantity": ln.quantity,
                       "unit": ln.sku.unit if ln.sku else "", "serialized": bool(ln.sku and ln.sku.serialized),
                       "unit_price_fen": ln.unit_price_fen, "amount_fen": ln.amount_fen} for ln in o.lines],
            "brought_by": _party(o.brought_by_partner_id, o.brought_by_agent_id, names),
            "serving": _party(o.serving_partner_id, o.serving_agent_id, names),
            "with_hq": o.serving_partner_id is None, "hq_reason": o.hq_reason,
            "accept_by_at": o.accept_by_at, "warehouse_id": o.warehouse_id,
            "warehouse_name": warehouses.get(o.warehouse_id),
            "confirmation_tries_left": max(0, limit - o.confirmation_tries),
            "created_at": o.created_at, "accepted_at": o.accepted_at, "shipped_at": o.shipped_at,
            "completed_at": o.completed_at, "cancelled_at": o.cancelled_at,
            "split": splits.get(o.id, []),
        }
        if events:
            item["events"] = event_dicts(o)
        out.append(item)
    return out


def _tries_limit() -> int:
    from flask import current_app

    return int(current_app.config["CONSUMER_ORDER_CODE_TRIES"])


def _place(order: ConsumerOrder) -> str:
    if order.city_code and order.city_code != order.region_code:
        return region_name(order.city_code) + region_name(order.region_code)
    return region_name(order.region_code)


def _party(partner_id: int | None, agent_id: int | None, names: dict[int, str]) -> dict | None:
    if partner_id is None:
        return None
    return {"partner_id": partner_id, "partner_name": names.get(partner_id, ""), "agent_id": agent_id,
            "agent_name": names.get(agent_id) if agent_id else None}


def event_dicts(order: ConsumerOrder) -> list[dict[str, Any]]:
    """The order's history, oldest first, with the partner it was with after each event and who acted."""
    from app.accounts.models import User

    partner = aliased(Partner)
    rows = db.session.execute(
        sa.select(ConsumerOrderEvent, partner.name, User.display_name, User.username)
        .outerjoin(partner, partner.id == ConsumerOrderEvent.partner_id)
        .outerjoin(User, User.id == ConsumerOrderEvent.user_id)
        .where(ConsumerOrderEvent.consumer_order_id == order.id).order_by(ConsumerOrderEvent.id)).all()
    return [{"id": e.id, "action": e.action, "from_status": e.from_status, "to_status": e.to_status,
             "partner_id": e.partner_id, "partner_name": pname, "user_id": e.user_id,
             "user_name": display or username, "note": e.note, "at": e.at}
            for e, pname, display, username in rows]


def describe(order: ConsumerOrder) -> dict[str, Any]:
    """One order's answer, with its events."""
    return order_dicts([order], events=True)[0]


def consumer_order_page(principal: Principal, *, page: int, page_size: int, role: str | None = None,
                        status: str | None = None, partner_id: int | None = None) -> dict[str, Any]:
    """One page of the orders the caller may see (`list_consumer_orders`), as answers."""
    from app.core.pagination import paginate

    authorize_action(principal, ACTION)
    result = paginate(list_consumer_orders(principal, role=role, status=status, partner_id=partner_id),
                      page=page, page_size=page_size)
    result["items"] = order_dicts(result["items"])
    return result


def consumer_order_detail(principal: Principal, order_id: int) -> dict[str, Any]:
    """One order the caller may see, with its events."""
    return describe(get_consumer_order_for(principal, order_id))
