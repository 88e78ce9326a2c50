"""Order use cases: each public function is one use case in one transaction, and calls WeChat Pay only outside it.

Concurrency: every change of an order first locks its row (`SELECT ... FOR UPDATE`, re-read), so two requests
about one order serialize and the second sees what the first did. Payments are booked once per WeChat transaction
id (unique) and notifications once per notification id (unique), so a callback delivered ten times at once pays
the order once. An order is locked before its codes and its stock (the lock order in `app.inventory.services`);
the use cases that lock stock as well (allocate, ship, confirm receipt) run again if PostgreSQL still aborts one
for a deadlock (`app.core.retry`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import User
from app.accounts.roles import STORE_ROLES
from app.catalog.models import Sku, SkuPrice
from app.channel.models import Store
from app.core.clock import business_day, now_utc
from app.core.events import units_received, units_shipped
from app.core.retry import retried
from app.core.security import Principal, authorize, authorize_store
from app.core.tx import transaction
from app.errors import AppError, Conflict, NotFound, ServiceUnavailable, ValidationFailed
from app.extensions import db
from app.inventory.models import Warehouse, WarehouseCity
from app.inventory.services import InsufficientStock, get_level, lock_levels, move_stock, transit_location_id
from app.orders import states
from app.orders.models import (
    CancelRequest,
    CommissionEntry,
    CommissionRule,
    CreditAccount,
    CreditLedger,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    PaymentNotification,
    Refund,
    Shipment,
    ShipmentLine,
)
from app.orders.numbers import make_order_number

log = logging.getLogger(__name__)

MAX_LINES = 100
MAX_QUANTITY = 100_000


class UnknownPaidOrder(AppError):
    """A payment notice names an order we never placed."""

    status, code, message = 404, "pay_order_unknown", "找不到通知里的订单"


class AmountMismatch(AppError):
    """A payment notice's amount is not the order's total."""

    status, code, message = 400, "pay_amount_mismatch", "支付金额与订单金额不一致"


# ---- helpers (flush only) -------------------------------------------------------------------------------------


def _lock(order_id: int) -> Order:
    """The order, locked for this transaction and re-read, or 404."""
    order = db.session.scalar(sa.select(Order).where(Order.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    if order is None:
        raise NotFound("找不到这个订单", code="order_not_found")
    return order


def lock_orders(order_ids: list[int]) -> None:
    """Lock these orders in id order (the lock order) for the caller's transaction, before their codes and stock."""
    if order_ids:
        db.session.execute(sa.select(Order.id).where(Order.id.in_(sorted(set(order_ids)))).order_by(Order.id)
                           .with_for_update())


def _lock_by_number(number: str) -> Order | None:
    return db.session.scalar(sa.select(Order).where(Order.number == number).with_for_update()
                             .execution_options(populate_existing=True))


def _after_commit(kind: str, *args: Any) -> None:
    """Queue work (a notification, a refund call) to run only once this transaction has committed."""
    if kind == "notify" and db.session.info.get("orders_silent"):
        return  # the demo seed: no messages for made-up history
    db.session.info.setdefault("orders_after_commit", []).append((kind, args))


@sa.event.listens_for(sa.orm.Session, "after_commit")
def _run_after_commit(session: sa.orm.Session) -> None:
    pending = session.info.pop("orders_after_commit", None)
    if not pending:
        return
    from app.integrations.jobs import enqueue

    for kind, args in pending:
        try:
            if kind == "notify":
                enqueue("app.orders.notifications.send_order_message", *args, retries=3)
            elif kind == "refund":
                enqueue("app.orders.services.start_refund", *args, retries=3)
            elif kind == "close":
                enqueue("app.orders.services.close_wechat_order", *args, retries=3)
        except Exception:  # a queue outage must never undo or block the order itself
            log.exception("orders: could not queue %s %s", kind, args)


@sa.event.listens_for(sa.orm.Session, "after_rollback")
def _forget_after_rollback(session: sa.orm.Session) -> None:
    session.info.pop("orders_after_commit", None)


def _store(store_id: int) -> Store:
    store = db.session.get(Store, store_id)
    if store is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return store


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
        raise ValidationFailed(f"{sku.name}至少订 {sku.min_order_quantity}{sku.unit}", code="below_minimum_quantity",
                               details={"sku_id": sku.id, "min_order_quantity": sku.min_order_quantity})
    if quantity % sku.case_pack:
        raise ValidationFailed(f"{sku.name}要按整箱订，每箱 {sku.case_pack}{sku.unit}", code="not_case_multiple",
                               details={"sku_id": sku.id, "case_pack": sku.case_pack})


def _priced_lines(store: Store, lines: list[dict[str, int]]) -> list[OrderLine]:
    if not lines:
        raise ValidationFailed("请至少订一种商品", code="no_lines", details={"fields": {"lines": ["至少一行"]}})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"一张订单最多 {MAX_LINES} 种商品", code="too_many_lines")
    sku_ids = [line["sku_id"] for line in lines]
    if len(set(sku_ids)) != len(sku_ids):
        raise ValidationFailed("同一商品请写在一行", code="duplicate_sku")
    skus = {s.id: s for s in db.session.scalars(sa.select(Sku).where(Sku.id.in_(sku_ids)))}
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


def _route(store: Store) -> int:
    """The partner whose territory covers the store; it fulfils and serves the order (else the store's own)."""
    from app.channel.queries import partner_for_region

    partner = partner_for_region([c for c in (store.district_code, store.city_code, store.province_code) if c],
                                 store.industry)
    return partner.id if partner is not None else store.distributor_id


# ---- create, confirm, reject, cancel -------------------------------------------------------------------------


def create_order(principal: Principal, *, request_id: str, store_id: int, lines: list[dict[str, int]],
                 note: str | None = None) -> Order:
    """Place an order for a store; a partner's order for a store is a proxy order the owner must confirm."""
    authorize_store(principal, "order.create", store_id)
    existing = _find_replay(principal.user_id, request_id)
    if existing is not None:
        return _same_request(existing, store_id)
    try:
        with transaction():
            store = _store(store_id)
            if not store.is_active:
                raise Conflict("这家门店已停用", code="store_inactive")
            order_lines = _priced_lines(store, lines)
            proxy = not _is_store_user(principal, store_id)
            now = now_utc()
            order = Order(number=_new_number(), request_id=request_id, store_id=store_id,
                          created_by_id=principal.user_id, is_proxy=proxy, note=note or "",
                          bringing_partner_id=(principal.partner_id if proxy and principal.partner_id
                                               else store.distributor_id),
                          routed_partner_id=_route(store), lines=order_lines,
                          total_fen=sum(line.amount_fen for line in order_lines), created_at=now,
                          status=states.AWAITING_CONFIRMATION if proxy else states.AWAITING_PAYMENT)
            if proxy:
                days = int(current_app.config["PROXY_ORDER_CONFIRM_DAYS"])
                order.confirm_by_at = now + timedelta(days=days)
            order.events.append(OrderEvent(from_status=None, to_status=order.status, action="create",
                                           user_id=principal.user_id, at=now))
            db.session.add(order)
            db.session.flush()
            if proxy:
                _after_commit("notify", order.id, "order_awaiting_confirmation")
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
        order = _lock(order_id)
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
        order = _lock(order_id)
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
        order = _lock(order_id)
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
        _close_or_book(number)
    with transaction():
        order = _lock(order_id)
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
        order = _lock(order_id)  # the order first, as every change of an order
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


def _close_or_book(number: str) -> None:
    from app.integrations.wechatpay import PayError, PayOrderNotFound, get_wechatpay

    gateway = get_wechatpay()
    try:
        gateway.close_order(number)
    except PayOrderNotFound:
        return
    except PayError as exc:
        if exc.retryable:
            raise
        result = gateway.query_by_out_trade_no(number)
        if result.get("trade_state") == "SUCCESS":
            book_wechat_payment(out_trade_no=number, transaction_id=result["transaction_id"],
                                amount_fen=int(result["amount"]["total"]))


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
        _release(order, user_id=user_id)
    order.move_to(states.CANCELLED, action=action, user_id=user_id, note=reason or None)
    order.cancel_reason = reason or None
    order.cancelled_at = now_utc()
    if held or order.paid_fen > order.refunded_fen:
        _refund_all(order, user_id=user_id, reason=reason or "订单取消")


def _release(order: Order, *, user_id: int | None) -> None:
    wh = db.session.get(Warehouse, order.warehouse_id)
    for line in sorted(order.lines, key=lambda line: line.sku_id):  # one location: levels in the lock order
        if line.reserved_quantity:
            move_stock(location_id=wh.location_id, sku_id=line.sku_id, reserved=-line.reserved_quantity,
                       kind="release", ref_type="order", ref_id=order.id, user_id=user_id)
            line.reserved_quantity = 0


def _refund_all(order: Order, *, user_id: int | None, reason: str) -> None:
    """Refund every payment of the order: credit and offline at once, WeChat through a queued call."""
    for payment in db.session.scalars(sa.select(Payment).where(Payment.order_id == order.id)):
        _refund_payment(order, payment, user_id=user_id, reason=reason)
    db.session.flush()
    _maybe_refunded(order)


def _refund_payment(order: Order, payment: Payment, *, user_id: int | None, reason: str) -> Refund | None:
    """Refund what is left of one payment (none if it is all refunded or on its way back); flushes only."""
    already = db.session.scalar(sa.select(sa.func.sum(Refund.amount_fen)).where(
        Refund.payment_id == payment.id, Refund.status != "failed")) or 0
    amount = payment.amount_fen - int(already)
    if amount <= 0:
        return None
    refund = Refund(order_id=order.id, payment_id=payment.id, amount_fen=amount, reason=reason[:80],
                    out_refund_no=f"R{order.number}{secrets.token_hex(4)}", user_id=user_id)
    db.session.add(refund)
    if payment.method == "wechat":
        # WeChat Pay refunds this payment's own transaction (its out_trade_no and total), after the commit.
        db.session.flush()
        _after_commit("refund", refund.id)
        return refund
    if payment.method == "credit":
        # What the store still owes is forgiven; anything it already repaid goes back by hand, like offline.
        owed = db.session.scalar(sa.select(CreditAccount.balance_fen).where(
            CreditAccount.store_id == order.store_id).with_for_update()) or 0
        if min(amount, owed):
            _credit_move(order.store_id, -min(amount, owed), kind="refund", order_id=order.id, user_id=user_id)
    # Offline money goes back by hand; recording the refund is what the books need.
    refund.status, refund.completed_at = "succeeded", now_utc()
    order.refunded_fen += amount
    _maybe_refunded(order)
    return refund


def _maybe_refunded(order: Order) -> None:
    if order.status == states.CANCELLED and order.paid_fen and order.refunded_fen >= order.paid_fen:
        order.move_to(states.REFUNDED, action="refund")


# ---- payment --------------------------------------------------------------------------------------------------


def start_wechat_payment(principal: Principal, order_id: int) -> dict[str, Any]:
    """Prepay the order with WeChat Pay and answer the parameters for wx.requestPayment."""
    from app.integrations.wechatpay import get_wechatpay

    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "order.pay", order.store_id)
        states.check_move(order.status, states.PAID, action="pay")
        openid = db.session.scalar(sa.select(User.openid).where(User.id == principal.user_id))
        if not openid:
            raise ValidationFailed("请在微信小程序里付款", code="openid_required")
        store_name = db.session.scalar(sa.select(Store.name).where(Store.id == order.store_id)) or ""
        number, total = order.number, order.total_fen
    # Outside any transaction: a slow WeChat must not hold a lock. Same number and amount → same prepay_id.
    gateway = get_wechatpay()
    prepay_id = gateway.create_jsapi_prepay(out_trade_no=number, description=f"{store_name} 订货单 {number}"[:127],
                                            total_fen=total, openid=openid)
    with transaction():
        order = _lock(order_id)
        if order.status == states.AWAITING_PAYMENT:
            order.prepay_id, order.prepay_at, order.payment_method = prepay_id, now_utc(), "wechat"
    return {"order_id": order_id, "out_trade_no": number, "total_fen": total,
            **gateway.request_payment_params(prepay_id)}


def book_wechat_payment(*, out_trade_no: str, transaction_id: str, amount_fen: int,
                        notification_id: str | None = None, event_type: str = "TRANSACTION.SUCCESS") -> str:
    """Book a successful WeChat payment exactly once; answers "paid", "duplicate" or "refunding"."""
    try:
        with transaction():
            if notification_id:
                if db.session.scalar(sa.select(PaymentNotification.id)
                                     .where(PaymentNotification.notification_id == notification_id)):
                    return "duplicate"
                # Unique: ten deliveries at once wait here on the first one's row; the rest then fail and answer ok.
                db.session.add(PaymentNotification(notification_id=notification_id, event_type=event_type,
                                                   transaction_id=transaction_id))
                db.session.flush()
            order = _lock_by_number(out_trade_no)
            if order is None:
                raise UnknownPaidOrder(details={"out_trade_no": out_trade_no})
            if amount_fen != order.total_fen:
                raise AmountMismatch(details={"expected_fen": order.total_fen, "amount_fen": amount_fen})
            if db.session.scalar(sa.select(Payment.id).where(Payment.transaction_id == transaction_id)):
                return "duplicate"
            payment = Payment(order_id=order.id, method="wechat", amount_fen=amount_fen, transaction_id=transaction_id)
            db.session.add(payment)
            order.paid_fen += amount_fen
            if order.status == states.AWAITING_PAYMENT:
                _mark_paid(order, method="wechat", user_id=None)
                return "paid"
            # Paid after the order was cancelled, or paid already another way (cash, credit): this payment alone
            # goes back, by its own amount; the order keeps the payment it already had.
            log.warning("orders: payment %s for order %s in status %s: refunding it", transaction_id, order.id,
                        order.status)
            db.session.flush()
            cancelled = order.status in (states.CANCELLED, states.REFUNDED)
            _refund_payment(order, payment, user_id=None,
                            reason="订单已取消，自动退款" if cancelled else "订单已付过款，重复付款自动退回")
            yuan = f"{amount_fen // 100}.{amount_fen % 100:02d}"
            order.events.append(OrderEvent(
                from_status=order.status, to_status=order.status, action="refund_surplus",
                note=(f"订单{'已取消' if cancelled else '已付过款'}，又收到微信支付 {yuan} 元"
                      f"（交易号 {transaction_id}），这笔钱原路退回")))
            return "refunding"
    except sa.exc.IntegrityError:
        db.session.rollback()
        return "duplicate"


def _mark_paid(order: Order, *, method: str, user_id: int | None) -> None:
    order.move_to(states.PAID, action="pay", user_id=user_id)
    order.payment_method = method
    order.paid_at = now_utc()
    _after_commit("notify", order.id, "order_paid")
    if method != "wechat" and order.prepay_id:
        # Paid another way while a WeChat payment was open: close it so it cannot be paid as well. If the owner
        # paid it already, the close fails and that payment is refunded when it is booked (book_wechat_payment).
        _after_commit("close", order.number)


def check_wechat_payment(principal: Principal, order_id: int) -> Order:
    """The phone says it paid: ask WeChat Pay and book the payment if it went through."""
    from app.integrations.wechatpay import PayOrderNotFound, get_wechatpay

    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "order.read", order.store_id)
        number, pending = order.number, order.status == states.AWAITING_PAYMENT and order.prepay_id
    if pending:
        try:
            result = get_wechatpay().query_by_out_trade_no(number)
        except PayOrderNotFound:
            result = {}
        if result.get("trade_state") == "SUCCESS":
            book_wechat_payment(out_trade_no=number, transaction_id=result["transaction_id"],
                                amount_fen=int(result["amount"]["total"]))
    return db.session.get(Order, order_id)


def pay_with_credit(principal: Principal, order_id: int) -> Order:
    """Pay from the store's credit line, within its limit."""
    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "order.pay", order.store_id)
        states.check_move(order.status, states.PAID, action="pay")
        _credit_move(order.store_id, order.total_fen, kind="charge", order_id=order.id, user_id=principal.user_id)
        db.session.add(Payment(order_id=order.id, method="credit", amount_fen=order.total_fen,
                               user_id=principal.user_id))
        order.paid_fen += order.total_fen
        _mark_paid(order, method="credit", user_id=principal.user_id)
        return order


def record_offline_payment(principal: Principal, order_id: int, *, reference: str,
                           amount_fen: int | None = None) -> Order:
    """The distributor or HQ records money received outside WeChat, with its reference."""
    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "order.offline_pay", order.store_id)
        states.check_move(order.status, states.PAID, action="pay")
        if amount_fen is not None and amount_fen != order.total_fen:
            raise ValidationFailed("收款金额与订单金额不一致", code="amount_mismatch",
                                   details={"total_fen": order.total_fen})
        db.session.add(Payment(order_id=order.id, method="offline", amount_fen=order.total_fen, reference=reference,
                               user_id=principal.user_id))
        order.paid_fen += order.total_fen
        _mark_paid(order, method="offline", user_id=principal.user_id)
        return order


def _credit_move(store_id: int, delta_fen: int, *, kind: str, order_id: int | None, user_id: int | None) -> int:
    """Change what a store owes by one guarded update (never above its limit) plus a ledger row."""
    table = CreditAccount.__table__
    row = db.session.execute(
        sa.update(table).where(table.c.store_id == store_id, table.c.balance_fen + delta_fen <= table.c.limit_fen,
                               table.c.balance_fen + delta_fen >= 0)
        .values(balance_fen=table.c.balance_fen + delta_fen, updated_at=now_utc())
        .returning(table.c.id, table.c.balance_fen)).first()
    if row is None:
        account = db.session.scalar(sa.select(CreditAccount).where(CreditAccount.store_id == store_id))
        if account is None:
            raise Conflict("这家门店没有赊账额度", code="no_credit_line")
        if delta_fen < 0:
            raise Conflict("还款超过了欠款", code="repayment_exceeds_balance",
                           details={"balance_fen": account.balance_fen})
        raise Conflict("赊账额度不够", code="credit_limit_exceeded",
                       details={"limit_fen": account.limit_fen, "balance_fen": account.balance_fen})
    db.session.add(CreditLedger(account_id=row[0], kind=kind, delta_fen=delta_fen, balance_after_fen=row[1],
                                order_id=order_id, user_id=user_id))
    return row[1]


def set_credit_limit(principal: Principal, store_id: int, *, limit_fen: int) -> CreditAccount:
    """HQ sets a store's credit limit; it can never drop below what the store owes now."""
    with transaction():
        authorize_store(principal, "order.offline_pay", store_id)
        _store(store_id)
        account = db.session.scalar(sa.select(CreditAccount).where(CreditAccount.store_id == store_id)
                                    .with_for_update())
        if account is None:
            account = CreditAccount(store_id=store_id, limit_fen=0, balance_fen=0)
            db.session.add(account)
        if limit_fen < account.balance_fen:
            raise Conflict("额度不能低于门店现在欠的钱", code="limit_below_balance",
                           details={"balance_fen": account.balance_fen})
        account.limit_fen = limit_fen
        db.session.flush()
        return account


def repay_credit(principal: Principal, store_id: int, *, amount_fen: int) -> CreditAccount:
    """Record a store paying back what it owes on credit."""
    with transaction():
        authorize_store(principal, "order.offline_pay", store_id)
        _credit_move(store_id, -amount_fen, kind="repay", order_id=None, user_id=principal.user_id)
        return db.session.scalar(sa.select(CreditAccount).where(CreditAccount.store_id == store_id))


# ---- refunds --------------------------------------------------------------------------------------------------


def refund_order(principal: Principal, order_id: int, *, reason: str) -> Order:
    """HQ refunds a paid order that has not shipped: it is cancelled, reservations released, money returned."""
    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "order.cancel", order.store_id)
        if order.status not in states.HOLDS_MONEY:
            states.check_move(order.status, "", action="refund")
        _cancel_locked(order, user_id=principal.user_id, reason=reason, action="refund")
        return order


def start_refund(refund_id: int) -> str:
    """Job: ask WeChat Pay to refund a pending refund (idempotent by out_refund_no); raises to be retried."""
    from app.integrations.wechatpay import get_wechatpay

    with transaction():
        refund = db.session.get(Refund, refund_id)
        if refund is None or refund.status != "pending":
            return "skipped"
        order = db.session.get(Order, refund.order_id)
        args = {"out_trade_no": order.number, "out_refund_no": refund.out_refund_no, "refund_fen": refund.amount_fen,
                "total_fen": db.session.get(Payment, refund.payment_id).amount_fen, "reason": refund.reason}
    result = get_wechatpay().refund(**args)
    with transaction():
        refund = db.session.get(Refund, refund_id)
        if refund.status == "pending":
            refund.status, refund.refund_id = "processing", result.get("refund_id")
        if result.get("status") == "SUCCESS":
            _refund_done(refund, "SUCCESS")
        return refund.status


def book_refund_result(*, out_refund_no: str, refund_status: str, notification_id: str | None = None,
                       event_type: str = "REFUND.SUCCESS") -> str:
    """Apply a REFUND.* notification (or query result) exactly once."""
    try:
        with transaction():
            if notification_id:
                if db.session.scalar(sa.select(PaymentNotification.id)
                                     .where(PaymentNotification.notification_id == notification_id)):
                    return "duplicate"
                db.session.add(PaymentNotification(notification_id=notification_id, event_type=event_type))
                db.session.flush()
            refund = db.session.scalar(sa.select(Refund).where(Refund.out_refund_no == out_refund_no)
                                       .with_for_update())
            if refund is None:
                raise UnknownPaidOrder("找不到通知里的退款", code="refund_unknown")
            if refund.status in ("succeeded", "failed"):
                return "duplicate"
            return _refund_done(refund, refund_status)
    except sa.exc.IntegrityError:
        db.session.rollback()
        return "duplicate"


def _refund_done(refund: Refund, refund_status: str) -> str:
    order = _lock(refund.order_id)
    if refund_status == "SUCCESS":
        refund.status, refund.completed_at = "succeeded", now_utc()
        order.refunded_fen += refund.amount_fen
        _maybe_refunded(order)
    else:
        # ABNORMAL / CLOSED: someone at HQ must return the money by hand; the order stays cancelled.
        refund.status = "failed"
        log.error("orders: refund %s ended %s", refund.out_refund_no, refund_status)
    return refund.status


def close_wechat_order(number: str) -> None:
    """Job: close an unpaid WeChat order; if it was paid after all (its notice may be lost), book that payment.

    Booking it on an order paid another way refunds it alone (book_wechat_payment): no money is kept twice.
    """
    from app.integrations.wechatpay import PayError, PayOrderNotFound, get_wechatpay

    gateway = get_wechatpay()
    try:
        gateway.close_order(number)
        return
    except PayOrderNotFound:
        return
    except PayError as exc:
        if exc.retryable:
            raise
        log.info("orders: WeChat order %s not closed (%s): asking whether it was paid", number, exc.pay_code)
    result = gateway.query_by_out_trade_no(number)
    if result.get("trade_state") in ("SUCCESS", "REFUND") and result.get("transaction_id"):
        book_wechat_payment(out_trade_no=number, transaction_id=result["transaction_id"],
                            amount_fen=int(result["amount"]["total"]))


# ---- fulfilment -----------------------------------------------------------------------------------------------


def _central() -> Warehouse:
    wh = db.session.scalar(sa.select(Warehouse).where(Warehouse.kind == "central").order_by(Warehouse.id))
    if wh is None:
        raise Conflict("还没有中央仓", code="no_central_warehouse")
    return wh


def _city_warehouse(city_code: str) -> Warehouse | None:
    return db.session.scalar(sa.select(Warehouse).join(WarehouseCity).where(WarehouseCity.city_code == city_code,
                                                                            Warehouse.kind == "sub"))


def _reserve(order: Order, wh: Warehouse, *, user_id: int | None) -> None:
    for line in sorted(order.lines, key=lambda line: line.sku_id):  # one location: levels in the lock order
        try:
            move_stock(location_id=wh.location_id, sku_id=line.sku_id, reserved=line.quantity, kind="reserve",
                       ref_type="order", ref_id=order.id, user_id=user_id)
        except InsufficientStock as exc:
            raise InsufficientStock(f"{wh.name}库存不够，不能分配这张订单", code="insufficient_stock",
                                    details={**exc.details, "warehouse_id": wh.id}) from None
        line.reserved_quantity = line.quantity


@retried
def allocate_order(principal: Principal, order_id: int, *, warehouse_id: int | None = None) -> Order:
    """Reserve the order's goods: the store's city sub-warehouse if it has every line, else the central one."""
    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "warehouse.operate", order.store_id)
        states.check_move(order.status, states.ALLOCATED, action="allocate")
        if any(line.shipped_quantity for line in order.lines):
            raise Conflict("已经发过货，不能换仓库", code="already_shipping")
        if order.status == states.ALLOCATED:
            # Moving the reservation: the caller must operate the warehouse it leaves as well as the one it goes to.
            authorize(principal, "warehouse.operate", warehouse_id=order.warehouse_id)
            _release(order, user_id=principal.user_id)
        if warehouse_id is not None:
            wh = db.session.get(Warehouse, warehouse_id)
            if wh is None:
                raise NotFound("找不到这个仓库", code="warehouse_not_found")
            _reserve(order, wh, user_id=principal.user_id)
        else:
            store = _store(order.store_id)
            sub = _city_warehouse(store.city_code)
            wh = None
            if sub is not None and all(get_level(location_id=sub.location_id, sku_id=line.sku_id).available
                                       >= line.quantity for line in order.lines):
                try:
                    with db.session.begin_nested():
                        _reserve(order, sub, user_id=principal.user_id)
                    wh = sub
                except InsufficientStock:
                    # Another order took the last units between our look and our reservation: fall back.
                    for line in order.lines:
                        line.reserved_quantity = 0
            if wh is None:
                wh = _central()
                _reserve(order, wh, user_id=principal.user_id)
        # An operator bound to one warehouse reserves only there (the transaction rolls back otherwise).
        authorize(principal, "warehouse.operate", warehouse_id=wh.id)
        order.warehouse_id = wh.id
        order.allocated_at = now_utc()
        order.move_to(states.ALLOCATED, action="allocate", user_id=principal.user_id, note=wh.name)
        return order


@retried
def ship_order(principal: Principal, order_id: int, *, case_codes: list[str],
               lines: list[dict[str, int]] | None = None) -> Shipment:
    """Ship (part of) an allocated order: serialized goods by their codes, the others by quantity."""
    with transaction():
        order = _lock(order_id)
        authorize_store(principal, "warehouse.operate", order.store_id)
        states.check_move(order.status, states.SHIPPED, action="ship")
        authorize(principal, "warehouse.operate", warehouse_id=order.warehouse_id)
        wh = db.session.get(Warehouse, order.warehouse_id)
        store = _store(order.store_id)
        by_sku = {line.sku_id: line for line in order.lines}
        skus = {s.id: s for s in db.session.scalars(sa.select(Sku).where(Sku.id.in_(by_sku)))}
        quantities: dict[int, int] = {}
        if case_codes:
            from app.codes.services import ship_codes

            shipped = ship_codes(serials=case_codes, from_location_id=wh.location_id, to_store_id=store.id,
                                 order_id=order.id, user_id=principal.user_id)
            for sku_id, units in shipped.items():
                quantities[sku_id] = quantities.get(sku_id, 0) + units
        if lines is None:
            # No lines given: what remains of the goods that carry no codes ships with the cases.
            for line in order.lines:
                if not skus[line.sku_id].serialized and line.quantity > line.shipped_quantity:
                    quantities[line.sku_id] = line.quantity - line.shipped_quantity
        else:
            for item in lines:
                sku = skus.get(item["sku_id"])
                if sku is None:
                    raise ValidationFailed("订单里没有这个商品", code="sku_not_on_order",
                                           details={"sku_id": item["sku_id"]})
                if sku.serialized:
                    raise ValidationFailed(f"{sku.name}有码，请扫箱码发货", code="serialized_needs_codes",
                                           details={"sku_id": sku.id})
                if item["quantity"] < 1:
                    raise ValidationFailed("数量不对", code="bad_quantity", details={"sku_id": sku.id})
                quantities[sku.id] = quantities.get(sku.id, 0) + item["quantity"]
        if not quantities:
            raise ValidationFailed("没有可发的货", code="nothing_to_ship")
        now = now_utc()
        shipment = Shipment(order_id=order.id, warehouse_id=wh.id, case_codes=list(case_codes),
                            user_id=principal.user_id, shipped_at=now)
        transit = transit_location_id(store.location_id)
        lock_levels([(loc, sku_id) for sku_id in quantities for loc in (wh.location_id, transit)])
        for sku_id, quantity in sorted(quantities.items()):
            line = by_sku.get(sku_id)
            if line is None:
                raise Conflict("有码不属于这张订单的商品", code="codes_not_on_order", details={"sku_id": sku_id})
            if line.shipped_quantity + quantity > line.quantity:
                raise Conflict("发货数量超过订单数量", code="over_shipment",
                               details={"sku_id": sku_id, "remaining": line.quantity - line.shipped_quantity})
            move_stock(location_id=wh.location_id, sku_id=sku_id, on_hand=-quantity, reserved=-quantity,
                       kind="ship", ref_type="order", ref_id=order.id, user_id=principal.user_id)
            move_stock(location_id=transit, sku_id=sku_id, on_hand=quantity, kind="ship", ref_type="order",
                       ref_id=order.id, user_id=principal.user_id)
            line.shipped_quantity += quantity
            line.reserved_quantity -= quantity
            shipment.lines.append(ShipmentLine(sku_id=sku_id, quantity=quantity))
            units_shipped.send(None, store_id=store.id, sku_id=sku_id, quantity=quantity, at=now, order_id=order.id,
                               warehouse_id=wh.id)
        db.session.add(shipment)
        first = order.status == states.ALLOCATED
        order.move_to(states.SHIPPED, action="ship", user_id=principal.user_id)
        order.shipped_at = order.shipped_at or now
        db.session.flush()
        if first:
            _after_commit("notify", order.id, "order_shipped")
        return shipment


def record_receipt(*, order_id: int, store_id: int, sku_id: int, quantity: int, at: datetime,
                   user_id: int | None = None) -> None:
    """Count units of an order that arrived at its store (called inside the scan's transaction; flushes only)."""
    order = db.session.scalar(sa.select(Order).where(Order.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    if order is None or order.store_id != store_id or quantity <= 0:
        return
    remaining = quantity
    for shipment in order.shipments:
        for sl in shipment.lines:
            if sl.sku_id == sku_id and sl.received_quantity < sl.quantity and remaining:
                take = min(remaining, sl.quantity - sl.received_quantity)
                sl.received_quantity += take
                remaining -= take
    for line in order.lines:
        if line.sku_id == sku_id:
            line.received_quantity = min(line.shipped_quantity, line.received_quantity + quantity - remaining)
    _maybe_deliver(order, at=at, user_id=user_id)


def _maybe_deliver(order: Order, *, at: datetime, user_id: int | None) -> None:
    """Delivered when everything ordered has shipped and arrived; completion follows at once (see complete)."""
    if order.status != states.SHIPPED:
        return
    if not all(line.shipped_quantity >= line.quantity and line.received_quantity >= line.shipped_quantity
               for line in order.lines):
        return
    order.move_to(states.DELIVERED, action="deliver", user_id=user_id)
    order.delivered_at = at
    for shipment in order.shipments:
        shipment.delivered_at = shipment.delivered_at or at
    _after_commit("notify", order.id, "order_delivered")
    _complete(order, user_id=user_id)


def _complete(order: Order, *, user_id: int | None) -> None:
    # Nothing else is awaited after delivery (returns are their own flow), so the order completes right away
    # and its margin is booked to the partners.
    order.move_to(states.COMPLETED, action="complete", user_id=user_id)
    order.completed_at = now_utc()
    _book_commission(order)


@retried
def confirm_receipt(principal: Principal, order_id: int) -> Order:
    """The owner confirms the goods arrived (for those who do not scan): everything shipped is received.

    Coded goods still in transit are received by their codes exactly as a scan-in would receive them (codes in
    store, stock transit → store with ledger rows, events), so they can be sold at once; goods without codes move
    by quantity. One transaction; a repeat (or a confirmation after the scans completed the order) answers the
    order as it is. Locks: the codes, then stock, then the order, as a scan-in takes them.
    """
    from app.scans.services import receive_in_transit

    with transaction():
        order = db.session.get(Order, order_id)
        if order is None:
            raise NotFound("找不到这个订单", code="order_not_found")
        authorize_store(principal, "order.receive", order.store_id)
        if order.status in (states.DELIVERED, states.COMPLETED):
            return order
        states.check_move(order.status, states.DELIVERED, action="deliver")
        store = _store(order.store_id)
        receive_in_transit(store_id=store.id, user_id=principal.user_id, order_id=order.id)
        order = _lock(order_id)
        if order.status != states.SHIPPED:
            return order  # the codes' receipt delivered it (or someone else got here first)
        serialized = set(db.session.scalars(sa.select(Sku.id).where(
            Sku.id.in_([line.sku_id for line in order.lines]), Sku.serialized.is_(True))))
        now = now_utc()
        transit = transit_location_id(store.location_id)
        outstanding: dict[int, int] = {}
        for shipment in order.shipments:
            for sl in shipment.lines:
                if sl.quantity > sl.received_quantity:
                    outstanding[sl.sku_id] = outstanding.get(sl.sku_id, 0) + sl.quantity - sl.received_quantity
        lock_levels([(loc, sku_id) for sku_id in outstanding for loc in (transit, store.location_id)])
        for sku_id, quantity in sorted(outstanding.items()):
            if sku_id in serialized:
                # Shipped codes no longer on their way here (sold or received elsewhere: the scans moved their
                # stock): the owner's word completes the order; there is nothing left in transit to move.
                record_receipt(order_id=order.id, store_id=store.id, sku_id=sku_id, quantity=quantity, at=now,
                               user_id=principal.user_id)
                continue
            move_stock(location_id=transit, sku_id=sku_id, on_hand=-quantity, kind="deliver", ref_type="order",
                       ref_id=order.id, user_id=principal.user_id)
            move_stock(location_id=store.location_id, sku_id=sku_id, on_hand=quantity, kind="receive",
                       ref_type="order", ref_id=order.id, user_id=principal.user_id)
            # The receiver (app.orders.receivers) counts these units on the order, as for a scan.
            units_received.send(None, store_id=store.id, sku_id=sku_id, quantity=quantity, at=now, order_id=order.id,
                                serials=[])
        db.session.flush()
        return _lock(order_id)


# ---- commission -----------------------------------------------------------------------------------------------


def _book_commission(order: Order) -> None:
    rule = db.session.scalar(sa.select(CommissionRule).order_by(CommissionRule.created_at.desc(),
                                                                 CommissionRule.id.desc()))
    if rule is None:
        return
    # What the store paid and kept: a second payment that went back counts in neither.
    base = min(order.total_fen, order.paid_fen - order.refunded_fen)
    margin = base * rule.margin_bp // 10000
    bringer, servicer = order.bringing_partner_id, order.routed_partner_id
    if bringer and servicer and bringer != servicer:
        bringer_fen = margin * rule.bringer_share_bp // 10000
        entries = [(bringer, "bringer", rule.bringer_share_bp, bringer_fen),
                   (servicer, "servicer", 10000 - rule.bringer_share_bp, margin - bringer_fen)]
    else:
        entries = [(servicer or bringer, "sole", 10000, margin)]
    for partner_id, role, share, amount in entries:
        if partner_id:
            db.session.add(CommissionEntry(order_id=order.id, partner_id=partner_id, role=role, base_fen=margin,
                                           share_bp=share, amount_fen=amount, rule_id=rule.id))


def set_commission_rule(principal: Principal, *, margin_bp: int, bringer_share_bp: int) -> CommissionRule:
    """HQ sets the split rule used for orders completed from now on."""
    with transaction():
        rule = CommissionRule(margin_bp=margin_bp, bringer_share_bp=bringer_share_bp, user_id=principal.user_id)
        db.session.add(rule)
        db.session.flush()
        return rule


# ---- jobs -----------------------------------------------------------------------------------------------------


def expire_unconfirmed(now: datetime | None = None) -> int:
    """Cancel proxy orders the owner left unconfirmed past their deadline; returns how many."""
    now = now or now_utc()
    ids = list(db.session.scalars(sa.select(Order.id).where(Order.status == states.AWAITING_CONFIRMATION,
                                                            Order.confirm_by_at < now)))
    db.session.rollback()
    done = 0
    for order_id in ids:
        with transaction():
            order = _lock(order_id)
            if order.status == states.AWAITING_CONFIRMATION and order.confirm_by_at < now:
                order.move_to(states.CANCELLED, action="expire", note="店主未在期限内确认")
                order.cancel_reason, order.cancelled_at = "店主未在期限内确认", now
                done += 1
    return done


def reconcile_payments(*, older_than: timedelta = timedelta(minutes=5), now: datetime | None = None) -> dict[str, int]:
    """Ask WeChat Pay about orders left awaiting payment with a prepay, and retry refunds not yet sent."""
    from app.integrations.wechatpay import PayError, get_wechatpay

    now = now or now_utc()
    numbers = list(db.session.scalars(sa.select(Order.number).where(
        Order.status == states.AWAITING_PAYMENT, Order.prepay_id.is_not(None), Order.prepay_at <= now - older_than)))
    pending_refunds = list(db.session.scalars(sa.select(Refund.id).where(Refund.status == "pending")))
    processing = list(db.session.scalars(sa.select(Refund.out_refund_no).where(Refund.status == "processing")))
    db.session.rollback()
    counts = {"checked": 0, "paid": 0, "refunds_sent": 0, "refunds_done": 0, "errors": 0}
    gateway = get_wechatpay()
    for number in numbers:
        counts["checked"] += 1
        try:
            result = gateway.query_by_out_trade_no(number)
        except PayError:
            counts["errors"] += 1
            continue
        if result.get("trade_state") == "SUCCESS":
            outcome = book_wechat_payment(out_trade_no=number, transaction_id=result["transaction_id"],
                                          amount_fen=int(result["amount"]["total"]))
            counts["paid"] += outcome == "paid"
    for refund_id in pending_refunds:
        try:
            start_refund(refund_id)
            counts["refunds_sent"] += 1
        except PayError:
            counts["errors"] += 1
    for out_refund_no in processing:
        try:
            result = gateway.query_refund(out_refund_no)
        except PayError:
            counts["errors"] += 1
            continue
        if result.get("status") in ("SUCCESS", "CLOSED", "ABNORMAL"):
            book_refund_result(out_refund_no=out_refund_no, refund_status=result["status"])
            counts["refunds_done"] += 1
    return counts
