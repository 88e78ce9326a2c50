"""Reads about orders, always inside the caller's scope."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.accounts.models import User
from app.accounts.roles import PARTNER_ROLES, PERMISSIONS, WAREHOUSE_OPERATOR
from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.channel.queries import visible_partners_condition, visible_stores_condition
from app.core.security import Principal, authorize, authorize_store
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders.models import (
    CancelRequest,
    CommissionEntry,
    CommissionRule,
    ConsumerOrder,
    CreditAccount,
    CreditLedger,
    Order,
    Payment,
    Refund,
)
from app.orders.states import STATUS_NAMES


def _bound_warehouses(principal: Principal, action: str) -> set[int]:
    """The warehouses of the caller's operator bindings that are tied to one warehouse and allow `action`."""
    return {b.warehouse_id for b in principal.bindings
            if b.role == WAREHOUSE_OPERATOR and b.warehouse_id is not None and action in PERMISSIONS.get(b.role, ())}


def _without_bound_operators(principal: Principal) -> Principal:
    """The caller with its one-warehouse operator bindings left out: an operator tied to a warehouse sees the
    orders allocated to it, not every store's (their store scope is any store, for shipping)."""
    return replace(principal, bindings=tuple(b for b in principal.bindings
                                             if not (b.role == WAREHOUSE_OPERATOR and b.warehouse_id is not None)))


def get_order_for(principal: Principal, order_id: int, action: str = "order.read") -> Order:
    """The order if it exists (404) and the caller may `action` on its store (403 out_of_scope).

    Reading is also open to the partner an order was routed to (cross-region): it fulfils and serves it. An
    operator tied to one warehouse reads (and works on) only the orders allocated to that warehouse.
    """
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFound("找不到这个订单", code="order_not_found")
    try:
        authorize_store(_without_bound_operators(principal), action, order.store_id)
    except Forbidden:
        if order.warehouse_id is not None and order.warehouse_id in _bound_warehouses(principal, action):
            return order
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
                created_from: datetime | None = None, created_to: datetime | None = None,
                distributor_id: int | None = None, region: str | None = None) -> sa.Select:
    """Orders of the stores the caller may see, newest first, with optional filters (an operator tied to one
    warehouse: the orders allocated to it). `region` is an adcode: a province, city or district."""
    visible = visible_stores_condition(_without_bound_operators(principal), "order.read")
    paths = _partner_paths(principal, "order.read")
    if paths:
        visible = sa.or_(visible, Order.routed_partner_id.in_(
            sa.select(Partner.id).where(sa.or_(*(Partner.path.startswith(p) for p in paths)))))
    bound = _bound_warehouses(principal, "order.read")
    if bound:
        visible = sa.or_(visible, Order.warehouse_id.in_(sorted(bound)))
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
    if distributor_id is not None:
        stmt = stmt.where(Store.distributor_id == distributor_id)
    if region:
        code = region[:6]
        if code.endswith("0000"):
            stmt = stmt.where(Store.province_code == code)
        elif code.endswith("00"):
            stmt = stmt.where(Store.city_code == code)
        else:
            stmt = stmt.where(Store.district_code == code)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    return stmt


def payments_of(order_id: int) -> list[Payment]:
    """The payments of an order, oldest first."""
    return list(db.session.scalars(sa.select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)))


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


def order_page(principal: Principal, order_id: int) -> dict[str, Any]:
    """One order as the console shows it: the order, its store and warehouse, payments, refunds, shipments (with
    their case codes and SKU names) and its history with who did each step. 404 / 403 as `get_order_for`."""
    order = get_order_for(principal, order_id)
    store = db.session.get(Store, order.store_id)
    distributor = db.session.get(Partner, store.distributor_id) if store.distributor_id else None
    warehouses = dict(db.session.execute(sa.select(Warehouse.id, Warehouse.name)).all())
    user_ids = ({e.user_id for e in order.events} | {s.user_id for s in order.shipments}) - {None}
    users = dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    sku_ids = {sl.sku_id for s in order.shipments for sl in s.lines}
    skus = dict(db.session.execute(sa.select(Sku.id, Sku.name).where(Sku.id.in_(sku_ids))).all()) if sku_ids else {}
    return {
        "order": order, "store": store, "distributor": distributor,
        "warehouse_name": warehouses.get(order.warehouse_id) if order.warehouse_id else None,
        "payments": payments_of(order.id), "refunds": refunds_of(order.id),
        "refundable_fen": max(0, order.paid_fen - order.refunded_fen),
        "events": [{"at": e.at, "action": e.action, "from": e.from_status, "to": e.to_status, "note": e.note,
                    "user": users.get(e.user_id) if e.user_id else None} for e in order.events],
        "shipments": [{"id": s.id, "at": s.shipped_at, "delivered_at": s.delivered_at,
                       "warehouse": warehouses.get(s.warehouse_id), "user": users.get(s.user_id),
                       "case_codes": list(s.case_codes or []),
                       "lines": [{"sku_name": skus.get(sl.sku_id, sl.sku_id), "quantity": sl.quantity,
                                  "received": sl.received_quantity} for sl in s.lines]}
                      for s in order.shipments],
    }


def order_filter_choices(principal: Principal) -> dict[str, list]:
    """What the order list's filters offer the caller: the stores and distributors in their scope, the statuses."""
    visible = visible_stores_condition(_without_bound_operators(principal), "order.read")
    bound = _bound_warehouses(principal, "order.read")
    if bound:  # an operator tied to a warehouse: the stores of the orders allocated to it
        visible = sa.or_(visible, Store.id.in_(sa.select(Order.store_id).where(Order.warehouse_id.in_(sorted(bound)))))
    stores = db.session.execute(sa.select(Store.id, Store.code, Store.name).where(visible)
                                .order_by(Store.id).limit(500)).all()
    distributors = db.session.execute(
        sa.select(Partner.id, Partner.code, Partner.name)
        .where(Partner.id.in_(sa.select(Store.distributor_id).where(visible))).order_by(Partner.id)).all()
    return {"stores": [{"id": i, "code": c, "name": n} for i, c, n in stores],
            "distributors": [{"id": i, "code": c, "name": n} for i, c, n in distributors],
            "statuses": list(STATUS_NAMES.items())}


def credit_page(principal: Principal, store_id: int) -> dict[str, Any]:
    """A store's credit line as the console shows it: limit, what it owes, what is left, the latest ledger lines
    (a store without a line reads as a zero limit). 404 for an unknown store, 403 outside the caller's scope."""
    authorize_store(principal, "order.read", store_id)
    store = db.session.get(Store, store_id)
    if store is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    account = get_credit_account(store_id)
    return {"store": store, "limit_fen": account.limit_fen if account else 0,
            "balance_fen": account.balance_fen if account else 0,
            "available_fen": (account.limit_fen - account.balance_fen) if account else 0,
            "ledger": credit_ledger(account.id) if account else []}
