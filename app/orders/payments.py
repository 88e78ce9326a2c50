"""Paying for orders and giving the money back: WeChat Pay (prepay, notifications, checks, closing), credit lines,
offline payments, refunds, and the reconciliation job.

Each public function is one use case in one transaction, and calls WeChat Pay only outside it. Payments are booked
once per WeChat transaction id (unique) and notifications once per notification id (unique), so a callback
delivered ten times at once pays the order once. The order's row is locked first (`app.orders.locks`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.accounts.models import User
from app.channel.models import Store
from app.core.clock import now_utc
from app.core.security import Principal, authorize_store
from app.core.tx import after_commit, transaction
from app.errors import AppError, Conflict, ValidationFailed
from app.extensions import db
from app.orders import states
from app.orders.locks import lock_order, lock_order_by_number, require_store
from app.orders.models import CreditAccount, CreditLedger, Order, OrderEvent, Payment, PaymentNotification, Refund
from app.orders.notifications import notify_after_commit

log = logging.getLogger(__name__)


class UnknownPaidOrder(AppError):
    """A payment notice names an order we never placed."""

    status, code, message = 404, "pay_order_unknown", "找不到通知里的订单"


class AmountMismatch(AppError):
    """A payment notice's amount is not the order's total."""

    status, code, message = 400, "pay_amount_mismatch", "支付金额与订单金额不一致"


def _queue_refund(refund_id: int) -> None:
    """Ask WeChat Pay for this refund once the transaction has committed (a queued job, retried)."""
    after_commit(lambda: _enqueue("app.orders.payments.start_refund", refund_id))


def _queue_close(number: str) -> None:
    """Close this WeChat order once the transaction has committed (a queued job, retried)."""
    after_commit(lambda: _enqueue("app.orders.payments.close_wechat_order", number))


def _enqueue(path: str, *args: Any) -> None:
    from app.integrations.jobs import enqueue

    try:
        enqueue(path, *args, retries=3)
    except Exception:  # a queue outage must never undo or block the order itself
        log.exception("orders: could not queue %s %s", path, args)


def refund_all(order: Order, *, user_id: int | None, reason: str) -> None:
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
        _queue_refund(refund.id)
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


def start_wechat_payment(principal: Principal, order_id: int) -> dict[str, Any]:
    """Prepay the order with WeChat Pay and answer the parameters for wx.requestPayment."""
    from app.integrations.wechatpay import get_wechatpay

    with transaction():
        order = lock_order(order_id)
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
        order = lock_order(order_id)
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
            order = lock_order_by_number(out_trade_no)
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
    notify_after_commit(order.id, "order_paid")
    if method != "wechat" and order.prepay_id:
        # Paid another way while a WeChat payment was open: close it so it cannot be paid as well. If the owner
        # paid it already, the close fails and that payment is refunded when it is booked (book_wechat_payment).
        _queue_close(order.number)


def check_wechat_payment(principal: Principal, order_id: int) -> Order:
    """The phone says it paid: ask WeChat Pay and book the payment if it went through."""
    from app.integrations.wechatpay import PayOrderNotFound, get_wechatpay

    with transaction():
        order = lock_order(order_id)
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
        order = lock_order(order_id)
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
        order = lock_order(order_id)
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
        require_store(store_id)
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
    order = lock_order(refund.order_id)
    if refund_status == "SUCCESS":
        refund.status, refund.completed_at = "succeeded", now_utc()
        order.refunded_fen += refund.amount_fen
        _maybe_refunded(order)
    else:
        # ABNORMAL / CLOSED: someone at HQ must return the money by hand; the order stays cancelled.
        refund.status = "failed"
        log.error("orders: refund %s ended %s", refund.out_refund_no, refund_status)
    return refund.status


def close_or_book(number: str) -> None:
    """Close the order's open WeChat payment (outside any transaction); one that was paid after all is booked."""
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
