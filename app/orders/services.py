"""Ordering: placing, confirming, rejecting and cancelling orders, cancellation requests, and the expiry job.

Each public function is one use case in one transaction, and calls WeChat Pay only outside it. Paying and refunds
live in `app.orders.payments`, allocation, shipping and receipt in `app.orders.fulfilment`, the profit split in
`app.orders.commission`; every one of them locks the order first (`app.orders.locks`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.accounts.roles import STORE_ROLES
from app.catalog.models import Sku, SkuPrice
from app.catalog.units import cases_text, pack_text
from app.channel.models import Store
from app.channel.registrations import convert_for_store
from app.core.clock import business_day, now_utc
from app.core.security import Principal, authorize_store
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from app.extensions import db
from app.orders import states
from app.orders.fulfilment import release_stock
from app.orders.lines import skus_of_lines
from app.orders.locks import lock_order, require_store
from app.orders.models import CancelRequest, Order, OrderEvent, OrderLine
from app.orders.notifications import notify_after_commit
from app.orders.numbers import make_order_number
from app.orders.payments import close_or_book, refund_all

MAX_LINES = 100
MAX_QUANTITY = 100_000


def _is_store_user(principal: Principal, store_id: int) -> bool:
    return any(b.role in STORE_ROLES and b.store_id == store_id for b in principal.bindings)


def _new_number() -> str:
    day = business_day(now_utc())
    for _ in range(20):
        number = make_order_number(day)
        if not db.session.scalar(sa.select(Order.id).where(Order.number == number)):
            return number
    raise ServiceUnavailable("订单号生成失败，请重试", code="order_number_exhausted")


def _check_quantity(sku: Sku, quantity: int) -> None:
    if quantity < sku.min_order_quantity:
        least = cases_text(sku.min_order_quantity, sku.case_pack, sku.unit, sku.case_unit)
        raise ValidationFailed(f"{sku.name}至少订 {least}", code="below_minimum_quantity",
                               details={"sku_id": sku.id, "min_order_quantity": sku.min_order_quantity})
    if quantity % sku.case_pack:
        pack = pack_text(sku.case_pack, sku.unit, sku.case_unit)
        raise ValidationFailed(f"{sku.name}要按整{sku.case_unit}订，{pack}", code="not_case_multiple",
                               details={"sku_id": sku.id, "case_pack": sku.case_pack})


def _priced_lines(store: Store, lines: list[dict[str, int]]) -> list[OrderLine]:
    sku_ids, skus = skus_of_lines(lines, max_lines=MAX_LINES)
    prices = dict(db.session.execute(sa.select(SkuPrice.sku_id, SkuPrice.price_fen).where(
        SkuPrice.sku_id.in_(sku_ids), SkuPrice.price_tier_id == store.price_tier_id)).all())
    out = []
    for line in lines:
        sku = skus.get(line["sku_id"])
        if sku is None or not sku.is_active:
            raise ValidationFailed("没有这个商品", code="sku_not_found", details={"sku_id": line["sku_id"]})
        quantity = line["quantity"]
        if quantity < 1 or quantity > MAX_QUANTITY:
            raise ValidationFailed("数量不对", code="bad_quantity", details={"sku_id": sku.id})
        _check_quantity(sku, quantity)
        if sku.id not in prices:
            raise ValidationFailed(f"{sku.name}没有这家门店的价格", code="no_price", details={"sku_id": sku.id})
        # The tier price is copied onto the line: later price changes never touch this order.
        out.append(OrderLine(sku_id=sku.id, quantity=quantity, unit_price_fen=prices[sku.id],
                             amount_fen=prices[sku.id] * quantity))
    return out


def _attribution(store: Store, proxy: bool, principal: Principal) -> dict[str, int | None]:
    """Who the order counts for, written on it now: the partner who brought it (a partner's proxy order: that
    partner; else the store's distributor) and the one serving the store's place (`app.channel.routing`; the store's
    own distributor when no territory covers it), each with its parent agent at this moment."""
    from app.channel.routing import agent_of, store_route

    served = store_route(store)
    routed, routed_agent = served.partner_id, served.agent_id
    if routed is None:
        routed, routed_agent = store.distributor_id, agent_of(store.distributor_id)
    bringer = principal.partner_id if proxy and principal.partner_id else store.distributor_id
    return {"bringing_partner_id": bringer,
            "bringing_agent_id": routed_agent if bringer == routed else agent_of(bringer),
            "routed_partner_id": routed, "routed_agent_id": routed_agent}


def create_order(principal: Principal, *, request_id: str, store_id: int, lines: list[dict[str, int]],
                 note: str | None = None) -> Order:
    """Place an order for a store; a partner's order for a store is a proxy order the owner must confirm."""
    authorize_store(principal, "order.create", store_id)
    existing = _find_replay(principal.user_id, request_id)
    if existing is not None:
        return _same_request(existing, store_id)
    try:
        with transaction():
            store = require_store(store_id)
            if not store.is_active:
                raise Conflict("这家门店已停用", code="store_inactive")
            order_lines = _priced_lines(store, lines)
            proxy = not _is_store_user(principal, store_id)
            now = now_utc()
            order = Order(number=_new_number(), request_id=request_id, store_id=store_id,
                          created_by_id=principal.user_id, is_proxy=proxy, note=note or "",
                          **_attribution(store, proxy, principal), lines=order_lines,
                          total_fen=sum(line.amount_fen for line in order_lines), created_at=now,
                          status=states.AWAITING_CONFIRMATION if proxy else states.AWAITING_PAYMENT)
            if proxy:
                days = int(current_app.config["PROXY_ORDER_CONFIRM_DAYS"])
                order.confirm_by_at = now + timedelta(days=days)
            order.events.append(OrderEvent(from_status=None, to_status=order.status, action="create",
                                           user_id=principal.user_id, at=now))
            db.session.add(order)
            db.session.flush()
            convert_for_store(store_id, via="first_order", user_id=principal.user_id)
            if proxy:
                notify_after_commit(order.id, "order_awaiting_confirmation")
            return order
    except sa.exc.IntegrityError:
        # The same request raced itself: the other one won; answer with its order.
        existing = _find_replay(principal.user_id, request_id)
        if existing is None:
            raise
        return _same_request(existing, store_id)


def _find_replay(user_id: int, request_id: str) -> Order | None:
    return db.session.scalar(sa.select(Order).where(Order.created_by_id == user_id, Order.request_id == request_id))


def _same_request(order: Order, store_id: int) -> Order:
    if order.store_id != store_id:
        raise Conflict("这个 request_id 已经用于另一张订单", code="request_id_reused",
                       details={"order_id": order.id})
    return order


def confirm_order(principal: Principal, order_id: int, *, lines: list[dict[str, int]] | None = None) -> Order:
    """The owner accepts a proxy order, optionally lowering quantities (a zero drops the line)."""
    with transaction():
        order = lock_order(order_id)
        authorize_store(principal, "order.confirm", order.store_id)
        order.move_to(states.AWAITING_PAYMENT, action="confirm", user_id=principal.user_id)
        if lines:
            _lower_quantities(order, lines)
        order.confirmed_at = now_utc()
        return order


def _lower_quantities(order: Order, changes: list[dict[str, int]]) -> None:
    by_sku = {line.sku_id: line for line in order.lines}
    for change in changes:
        line = by_sku.get(change["sku_id"])
        if line is None:
            raise ValidationFailed("订单里没有这个商品", code="sku_not_on_order", details={"sku_id": change["sku_id"]})
        quantity = change["quantity"]
        if quantity < 0 or quantity > line.quantity:
            raise ValidationFailed("确认时只能减少数量", code="quantity_not_lowered",
                                   details={"sku_id": line.sku_id, "quantity": line.quantity})
        if quantity:
            _check_quantity(db.session.get(Sku, line.sku_id), quantity)
            line.quantity, line.amount_fen = quantity, quantity * line.unit_price_fen
        else:
            order.lines.remove(line)
    if not order.lines:
        raise ValidationFailed("请至少保留一种商品，不要的话请拒绝订单", code="no_lines")
    order.total_fen = sum(line.amount_fen for line in order.lines)


def reject_order(principal: Principal, order_id: int, *, reason: str) -> Order:
    """The owner turns down a proxy order, saying why."""
    with transaction():
        order = lock_order(order_id)
        authorize_store(principal, "order.confirm", order.store_id)
        states.check_move(order.status, states.AWAITING_PAYMENT, action="reject")  # only a waiting proxy order
        order.move_to(states.CANCELLED, action="reject", user_id=principal.user_id, note=reason)
        order.reject_reason = reason
        order.cancelled_at = now_utc()
        return order


def cancel_order(principal: Principal, order_id: int, *, reason: str | None = None,
                 action: str = "order.cancel") -> Order:
    """Cancel before shipping. An unpaid order is cancelled at once (an open WeChat payment is closed first). A paid
    one (WeChat, credit or offline) is only asked for: a cancellation request that HQ approves, and the money goes
    back then (`decide_cancel_request`); HQ itself cancels and refunds at once. Asking twice is one request."""
    with transaction():
        order = lock_order(order_id)
        authorize_store(principal, action, order.store_id)
        if order.status not in states.CANCELLABLE:
            states.check_move(order.status, states.CANCELLED, action="cancel")
        if order.status in states.HOLDS_MONEY and not _decides_refunds(principal):
            _request_cancel(order, user_id=principal.user_id, reason=reason)
            return order
        prepay = order.prepay_id if order.status == states.AWAITING_PAYMENT else None
        number = order.number
    if prepay:
        # Close the WeChat order first, so it cannot be paid after we cancel; a payment that beat us is booked.
        close_or_book(number)
    with transaction():
        order = lock_order(order_id)
        if order.status not in states.CANCELLABLE:
            states.check_move(order.status, states.CANCELLED, action="cancel")
        if order.status in states.HOLDS_MONEY and not _decides_refunds(principal):
            _request_cancel(order, user_id=principal.user_id, reason=reason)  # the payment beat the close
            return order
        _cancel_locked(order, user_id=principal.user_id, reason=reason or "")
        return order


def _decides_refunds(principal: Principal) -> bool:
    """HQ decides whether a paid order's money goes back; stores and partners ask."""
    return principal.kind == "hq" and principal.can("hq.write")


def _pending_request(order_id: int) -> CancelRequest | None:
    return db.session.scalar(sa.select(CancelRequest).where(CancelRequest.order_id == order_id,
                                                            CancelRequest.status == "pending"))


def _request_cancel(order: Order, *, user_id: int, reason: str | None) -> CancelRequest:
    """The order's pending cancellation request, made if there is none (the order is locked; the partial unique
    index keeps it one per order where the lock is not a real one)."""
    pending = _pending_request(order.id)
    if pending is not None:
        return pending
    request = CancelRequest(order_id=order.id, status="pending", reason=(reason or "")[:200],
                            requested_by_id=user_id, requested_at=now_utc())
    try:
        with db.session.begin_nested():
            db.session.add(request)
    except sa.exc.IntegrityError:
        return _pending_request(order.id)
    order.events.append(OrderEvent(from_status=order.status, to_status=order.status, action="cancel_request",
                                   user_id=user_id, note=(reason or None) and reason[:255]))
    db.session.flush()
    db.session.expire(order, ["cancel_requests"])
    return request


def decide_cancel_request(principal: Principal, request_id: int, *, approve: bool, note: str | None = None
                          ) -> CancelRequest:
    """HQ approves a cancellation request (the order is cancelled and refunded, as HQ's refund does) or rejects
    it with a reason (the order goes on). An order that shipped meanwhile can no longer be cancelled: reject it."""
    with transaction():
        order_id = db.session.scalar(sa.select(CancelRequest.order_id).where(CancelRequest.id == request_id))
        if order_id is None:
            raise NotFound("找不到这个取消申请", code="cancel_request_not_found")
        order = lock_order(order_id)  # the order first, as every change of an order
        authorize_store(principal, "order.cancel", order.store_id)
        request = db.session.scalar(sa.select(CancelRequest).where(CancelRequest.id == request_id)
                                    .with_for_update().execution_options(populate_existing=True))
        if request.status != "pending":
            raise Conflict("这个取消申请已经处理过了", code="cancel_request_decided",
                           details={"status": request.status})
        if approve:
            if order.status not in states.CANCELLABLE:
                states.check_move(order.status, states.CANCELLED, action="cancel")
            _cancel_locked(order, user_id=principal.user_id, reason=request.reason or "门店申请取消",
                           note=note)
        else:
            request.status, request.decided_by_id, request.decided_at = "rejected", principal.user_id, now_utc()
            request.decision_note = note
            order.events.append(OrderEvent(from_status=order.status, to_status=order.status, action="cancel_reject",
                                           user_id=principal.user_id, note=note))
        db.session.flush()
        db.session.refresh(request)
        return request


def _cancel_locked(order: Order, *, user_id: int | None, reason: str, action: str = "cancel",
                   note: str | None = None) -> None:
    # A pending cancellation request is answered by this cancellation, whoever made it.
    db.session.execute(sa.update(CancelRequest).where(CancelRequest.order_id == order.id,
                                                      CancelRequest.status == "pending")
                       .values(status="approved", decided_by_id=user_id, decided_at=now_utc(), decision_note=note)
                       .execution_options(synchronize_session=False))
    db.session.expire(order, ["cancel_requests"])
    held = order.status in states.HOLDS_MONEY
    if order.status == states.ALLOCATED:
        release_stock(order, user_id=user_id)
    order.move_to(states.CANCELLED, action=action, user_id=user_id, note=reason or None)
    order.cancel_reason = reason or None
    order.cancelled_at = now_utc()
    if held or order.paid_fen > order.refunded_fen:
        refund_all(order, user_id=user_id, reason=reason or "订单取消")


def refund_order(principal: Principal, order_id: int, *, reason: str) -> Order:
    """HQ refunds a paid order that has not shipped: it is cancelled, reservations released, money returned."""
    with transaction():
        order = lock_order(order_id)
        authorize_store(principal, "order.cancel", order.store_id)
        if order.status not in states.HOLDS_MONEY:
            states.check_move(order.status, "", action="refund")
        _cancel_locked(order, user_id=principal.user_id, reason=reason, action="refund")
        return order


def expire_unconfirmed(now: datetime | None = None) -> int:
    """Cancel proxy orders the owner left unconfirmed past their deadline; returns how many."""
    now = now or now_utc()
    ids = list(db.session.scalars(sa.select(Order.id).where(Order.status == states.AWAITING_CONFIRMATION,
                                                            Order.confirm_by_at < now)))
    db.session.rollback()
    done = 0
    for order_id in ids:
        with transaction():
            order = lock_order(order_id)
            if order.status == states.AWAITING_CONFIRMATION and order.confirm_by_at < now:
                order.move_to(states.CANCELLED, action="expire", note="店主未在期限内确认")
                order.cancel_reason, order.cancelled_at = "店主未在期限内确认", now
                done += 1
    return done
