"""Reads about orders, always inside the caller's scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.accounts.roles import PARTNER_ROLES, PERMISSIONS
from app.channel.models import Partner, Store
from app.channel.queries import visible_partners_condition, visible_stores_condition
from app.core.security import Principal, authorize, authorize_store
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.orders.models import (
    CancelRequest,
    CommissionEntry,
    CommissionRule,
    ConsumerOrder,
    CreditAccount,
    CreditLedger,
    Order,
    Refund,
)


def get_order_for(principal: Principal, order_id: int, action: str = "order.read") -> Order:
    """The order if it exists (404) and the caller may `action` on its store (403 out_of_scope).

    Reading is also open to the partner an order was routed to (cross-region): it fulfils and serves it.
    """
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFound("找不到这个订单", code="order_not_found")
    try:
        authorize_store(principal, action, order.store_id)
    except Forbidden:
        if action != "order.read" or not _routed_to_caller(principal, order):
            raise
    return order


def _partner_paths(principal: Principal, action: str) -> list[str]:
    return [b.partner_path for b in principal.bindings
            if b.role in PARTNER_ROLES and b.partner_path and action in PERMISSIONS.get(b.role, ())]


def _routed_to_caller(principal: Principal, order: Order) -> bool:
    if order.routed_partner_id is None:
        return False
    path = db.session.scalar(sa.select(Partner.path).where(Partner.id == order.routed_partner_id)) or ""
    return any(path.startswith(p) for p in _partner_paths(principal, "order.read"))


def list_orders(principal: Principal, *, store_id: int | None = None, status: str | None = None,
                partner_id: int | None = None, number: str | None = None, warehouse_id: int | None = None,
                created_from: datetime | None = None, created_to: datetime | None = None) -> sa.Select:
    """Orders of the stores the caller may see, newest first, with optional filters."""
    visible = visible_stores_condition(principal, "order.read")
    paths = _partner_paths(principal, "order.read")
    if paths:
        visible = sa.or_(visible, Order.routed_partner_id.in_(
            sa.select(Partner.id).where(sa.or_(*(Partner.path.startswith(p) for p in paths)))))
    stmt = (sa.select(Order).join(Store, Store.id == Order.store_id).options(selectinload(Order.lines))
            .where(visible)
            .order_by(Order.created_at.desc(), Order.id.desc()))
    if store_id is not None:
        authorize_store(principal, "order.read", store_id)
        stmt = stmt.where(Order.store_id == store_id)
    if status:
        stmt = stmt.where(Order.status == status)
    if partner_id is not None:
        stmt = stmt.where(sa.or_(Order.routed_partner_id == partner_id, Order.bringing_partner_id == partner_id))
    if number:
        stmt = stmt.where(Order.number == number.replace("-", "").replace(" ", ""))
    if warehouse_id is not None:
        stmt = stmt.where(Order.warehouse_id == warehouse_id)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    return stmt


def refunds_of(order_id: int) -> list[Refund]:
    """The refunds of an order, oldest first."""
    return list(db.session.scalars(sa.select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))


def get_credit_account(store_id: int) -> CreditAccount | None:
    """A store's credit account, if it has one."""
    return db.session.scalar(sa.select(CreditAccount).where(CreditAccount.store_id == store_id))


def credit_ledger(account_id: int, limit: int = 50) -> list[CreditLedger]:
    """The latest lines of a credit account's ledger, newest first."""
    return list(db.session.scalars(sa.select(CreditLedger).where(CreditLedger.account_id == account_id)
                                   .order_by(CreditLedger.id.desc()).limit(limit)))


def current_commission_rule() -> CommissionRule | None:
    """The split rule in force (the latest one set)."""
    return db.session.scalar(sa.select(CommissionRule).order_by(CommissionRule.created_at.desc(),
                                                                CommissionRule.id.desc()))


def commission_report(principal: Principal, *, partner_id: int | None, date_from: datetime | None,
                      date_to: datetime | None) -> dict[str, Any]:
    """Commission per partner over a period (by entry time), with the entries: the partners the caller may see."""
    cond = [CommissionEntry.partner_id.in_(sa.select(Partner.id).where(visible_partners_condition(principal)))]
    if partner_id is not None:
        path = db.session.scalar(sa.select(Partner.path).where(Partner.id == partner_id))
        if path is None:
            raise NotFound("找不到这个合作方", code="partner_not_found")
        authorize(principal, "partner.read", partner_path=path)
        cond.append(CommissionEntry.partner_id == partner_id)
    if date_from is not None:
        cond.append(CommissionEntry.created_at >= date_from)
    if date_to is not None:
        cond.append(CommissionEntry.created_at < date_to)
    totals = db.session.execute(
        sa.select(CommissionEntry.partner_id, Partner.name, sa.func.count(CommissionEntry.id),
                  sa.func.sum(CommissionEntry.amount_fen))
        .join(Partner, Partner.id == CommissionEntry.partner_id).where(*cond)
        .group_by(CommissionEntry.partner_id, Partner.name).order_by(CommissionEntry.partner_id)).all()
    # One ledger for store orders and consumer orders: each entry names the order it came from.
    entries = db.session.execute(
        sa.select(CommissionEntry, sa.func.coalesce(Order.number, ConsumerOrder.number))
        .outerjoin(Order, Order.id == CommissionEntry.order_id)
        .outerjoin(ConsumerOrder, ConsumerOrder.id == CommissionEntry.consumer_order_id).where(*cond)
        .order_by(CommissionEntry.id).limit(1000)).all()
    return {
        "partners": [{"partner_id": r[0], "partner_name": r[1], "entries": r[2], "amount_fen": int(r[3] or 0)}
                     for r in totals],
        "total_fen": sum(int(r[3] or 0) for r in totals),
        "entries": [{"id": e.id, "order_id": e.order_id, "consumer_order_id": e.consumer_order_id,
                     "kind": "consumer" if e.consumer_order_id else "store", "order_number": number,
                     "partner_id": e.partner_id,
                     "role": e.role, "base_fen": e.base_fen, "share_bp": e.share_bp, "amount_fen": e.amount_fen,
                     "created_at": e.created_at} for e, number in entries],
    }


def _cancel_request_select() -> sa.Select:
    return (sa.select(CancelRequest, Order.number, Order.status, Order.store_id, Store.name, Order.paid_fen,
                      Order.payment_method)
            .join(Order, Order.id == CancelRequest.order_id).join(Store, Store.id == Order.store_id))


def cancel_requests(principal: Principal, *, status: str) -> sa.Select:
    """Cancellation requests of orders in the stores the caller may see, oldest first (HQ works through them)."""
    return (_cancel_request_select().where(visible_stores_condition(principal, "order.read"),
                                           CancelRequest.status == status)
            .order_by(CancelRequest.id))


def cancel_request_dict(row: sa.Row) -> dict[str, Any]:
    request, number, order_status, store_id, store_name, paid_fen, method = row
    return {"id": request.id, "order_id": request.order_id, "order_number": number, "order_status": order_status,
            "store_id": store_id, "store_name": store_name, "paid_fen": paid_fen, "payment_method": method,
            "status": request.status, "reason": request.reason, "requested_by_id": request.requested_by_id,
            "requested_at": request.requested_at, "decided_by_id": request.decided_by_id,
            "decided_at": request.decided_at, "decision_note": request.decision_note}


def cancel_request_detail(request_id: int) -> dict[str, Any]:
    row = db.session.execute(_cancel_request_select().where(CancelRequest.id == request_id)).one()
    return cancel_request_dict(row)
