"""Orders and what hangs off them: lines, status history, shipments, payments, refunds, credit, commission."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Sku
from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db
from app.orders import states


class Order(db.Model):
    """One order of a store; prices are locked on its lines at creation, in fen."""

    __tablename__ = "orders"
    __table_args__ = (
        # A retried POST from the same user with the same request_id finds the first order.
        sa.UniqueConstraint("created_by_id", "request_id", name="uq_orders_request"),
        sa.CheckConstraint("total_fen >= 0", name="total_not_negative"),
        sa.Index("ix_orders_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    is_proxy: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # The partner who brought the order in, and the one whose territory holds the store (fulfils and serves).
    bringing_partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    routed_partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    # Their parent agents when the order was placed (attribution is written once: moving a territory or a
    # partner later never changes whom an old order counts for). Partner ids; no foreign key, so adding them
    # never rebuilt this table (SQLite) under the rows that point at it.
    bringing_agent_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    routed_agent_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(24), default=states.AWAITING_PAYMENT)
    total_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    paid_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    payment_method: Mapped[str | None] = mapped_column(sa.String(16))
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    reject_reason: Mapped[str | None] = mapped_column(sa.String(200))
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(200))
    warehouse_id: Mapped[int | None] = mapped_column(sa.ForeignKey("warehouses.id"))
    prepay_id: Mapped[str | None] = mapped_column(sa.String(64))
    prepay_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirm_by_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    allocated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", cascade="all, delete-orphan",
                                                  order_by="OrderLine.id")
    events: Mapped[list[OrderEvent]] = relationship(back_populates="order", cascade="all, delete-orphan",
                                                    order_by="OrderEvent.id")
    shipments: Mapped[list[Shipment]] = relationship(back_populates="order", order_by="Shipment.id")
    cancel_requests: Mapped[list[CancelRequest]] = relationship(order_by="CancelRequest.id", viewonly=True)

    @property
    def cancel_request(self) -> CancelRequest | None:
        """The latest cancellation request of the order, if any."""
        return self.cancel_requests[-1] if self.cancel_requests else None

    def move_to(self, target: str, *, action: str, user_id: int | None = None, note: str | None = None) -> None:
        """Change status, refusing an illegal move, and append the history row."""
        states.check_move(self.status, target, action=action)
        self.events.append(OrderEvent(from_status=self.status, to_status=target, action=action, user_id=user_id,
                                      note=note))
        self.status = target


class OrderLine(db.Model):
    __tablename__ = "order_lines"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "sku_id"),
        sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        sa.CheckConstraint("shipped_quantity <= quantity", name="shipped_within_ordered"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    unit_price_fen: Mapped[int] = mapped_column(sa.BigInteger)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    reserved_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    shipped_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    received_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)

    order: Mapped[Order] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship(lazy="joined", viewonly=True)


class OrderEvent(db.Model):
    """The status history of an order (append-only)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(24))
    to_status: Mapped[str] = mapped_column(sa.String(24))
    action: Mapped[str] = mapped_column(sa.String(24))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    order: Mapped[Order] = relationship(back_populates="events")


class Shipment(db.Model):
    """Goods that left one warehouse for the order's store, with the codes on them."""

    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(sa.ForeignKey("warehouses.id"))
    case_codes: Mapped[list] = mapped_column(sa.JSON, default=list)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship(back_populates="shipments")
    lines: Mapped[list[ShipmentLine]] = relationship(back_populates="shipment", cascade="all, delete-orphan",
                                                     order_by="ShipmentLine.id")


class ShipmentLine(db.Model):
    __tablename__ = "shipment_lines"
    __table_args__ = (sa.UniqueConstraint("shipment_id", "sku_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(sa.ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    received_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)

    shipment: Mapped[Shipment] = relationship(back_populates="lines")


class Payment(db.Model):
    """Money received for an order: by WeChat Pay (one per transaction id), store credit, or offline."""

    __tablename__ = "payments"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    method: Mapped[str] = mapped_column(sa.String(16))  # wechat | credit | offline
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    # WeChat's transaction id: unique, so the same payment can never be booked twice.
    transaction_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    reference: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class Refund(db.Model):
    __tablename__ = "refunds"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"))
    out_refund_no: Mapped[str] = mapped_column(sa.String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending|processing|succeeded|failed
    reason: Mapped[str] = mapped_column(sa.String(80), default="")
    refund_id: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CreditAccount(db.Model):
    """A store's credit line: it may owe up to `limit_fen`; `balance_fen` is what it owes now."""

    __tablename__ = "credit_accounts"
    __table_args__ = (
        sa.CheckConstraint("balance_fen >= 0", name="balance_not_negative"),
        sa.CheckConstraint("balance_fen <= limit_fen", name="balance_within_limit"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"), unique=True)
    limit_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    balance_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)


class CreditLedger(db.Model):
    """One change of a credit account (append-only): a charge for an order, a refund, a repayment."""

    __tablename__ = "credit_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("credit_accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # charge | refund | repay
    delta_fen: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after_fen: Mapped[int] = mapped_column(sa.BigInteger)
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class CommissionRule(db.Model):
    """HQ's split rule: the channel margin on an order, and the bringing partner's share of it (basis points)."""

    __tablename__ = "commission_rules"
    __table_args__ = (
        sa.CheckConstraint("margin_bp BETWEEN 0 AND 10000", name="margin_bp_range"),
        sa.CheckConstraint("bringer_share_bp BETWEEN 0 AND 10000", name="bringer_share_bp_range"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    margin_bp: Mapped[int] = mapped_column(sa.Integer)
    bringer_share_bp: Mapped[int] = mapped_column(sa.Integer)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The latest rule applies; older ones stay for the record of what earlier entries used.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class CommissionEntry(db.Model):
    """A partner's share of a completed order's margin: a store order's or a consumer order's (exactly one)."""

    __tablename__ = "commission_entries"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "partner_id", "role"),
        sa.UniqueConstraint("consumer_order_id", "partner_id", "role"),
        sa.CheckConstraint("(order_id IS NULL) <> (consumer_order_id IS NULL)", name="one_order"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    consumer_order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("consumer_orders.id"), index=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    # The partner's parent agent as the order recorded it (the attribution the order was placed under).
    agent_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # a partner id
    role: Mapped[str] = mapped_column(sa.String(16))  # bringer | servicer | sole
    base_fen: Mapped[int] = mapped_column(sa.BigInteger)
    share_bp: Mapped[int] = mapped_column(sa.Integer)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    rule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("commission_rules.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class PaymentNotification(db.Model):
    """A WeChat Pay notification already handled, by its notification id: a redelivery is answered, not redone."""

    __tablename__ = "payment_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notification_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    event_type: Mapped[str] = mapped_column(sa.String(32))
    transaction_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class CancelRequest(db.Model):
    """A store's (or its partner's) request to cancel an order that is paid: HQ approves (and the money goes back
    then) or rejects it. At most one is pending per order."""

    __tablename__ = "order_cancel_requests"
    __table_args__ = (
        sa.Index("uq_order_cancel_requests_pending", "order_id", unique=True,
                 postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'")),
        sa.Index("ix_order_cancel_requests_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending | approved | rejected
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.String(200))


# --- consumer orders (CHANNEL.md section 4) ------------------------------------------------------------------

CONSUMER_STATUSES = ("routed", "accepted", "shipped", "completed", "with_hq", "cancelled")


class ConsumerOrder(db.Model):
    """A consumer's order taken by a partner (or HQ's own shop), served by the partner holding the address.

    Attribution is written when it happens: who brought it (and that partner's agent) at creation, who serves it
    (and that partner's agent, and the territory assignment) at every routing. The consumer's confirmation code is
    never stored: it is derived from the server's key and `confirmation_salt` (see app/orders/consumer_orders.py).
    """

    __tablename__ = "consumer_orders"
    __table_args__ = (
        # A retried POST from the same user with the same request_id finds the first order.
        sa.UniqueConstraint("created_by_id", "request_id", name="uq_consumer_orders_request"),
        sa.CheckConstraint("total_fen >= 0", name="total_not_negative"),
        sa.CheckConstraint("confirmation_tries >= 0", name="tries_not_negative"),
        sa.Index("ix_consumer_orders_status_accept_by", "status", "accept_by_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    brought_by_partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    brought_by_agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    serving_partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    serving_agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    assignment_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The partners it was routed to and that passed (declined or let the time run out), in order.
    passed_partner_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    customer_name: Mapped[str] = mapped_column(sa.String(64))
    customer_phone: Mapped[str] = mapped_column(sa.String(20))
    address: Mapped[str] = mapped_column(sa.String(255))
    region_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    city_code: Mapped[str | None] = mapped_column(sa.String(12))
    province_code: Mapped[str] = mapped_column(sa.String(12))
    needs_service: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[str] = mapped_column(sa.String(16))
    # Why HQ holds it: no_territory | nobody_accepted | hq_routed.
    hq_reason: Mapped[str | None] = mapped_column(sa.String(32))
    total_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    confirmation_salt: Mapped[str] = mapped_column(sa.String(32))
    confirmation_tries: Mapped[int] = mapped_column(sa.Integer, default=0)
    warehouse_id: Mapped[int | None] = mapped_column(sa.ForeignKey("warehouses.id"))
    accept_by_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[ConsumerOrderLine]] = relationship(back_populates="order", cascade="all, delete-orphan",
                                                          order_by="ConsumerOrderLine.id")
    events: Mapped[list[ConsumerOrderEvent]] = relationship(back_populates="order", cascade="all, delete-orphan",
                                                            order_by="ConsumerOrderEvent.id")


class ConsumerOrderLine(db.Model):
    __tablename__ = "consumer_order_lines"
    __table_args__ = (
        sa.UniqueConstraint("consumer_order_id", "sku_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consumer_order_id: Mapped[int] = mapped_column(sa.ForeignKey("consumer_orders.id", ondelete="CASCADE"),
                                                   index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    unit_price_fen: Mapped[int] = mapped_column(sa.BigInteger)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)

    order: Mapped[ConsumerOrder] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship(lazy="joined", viewonly=True)


class ConsumerOrderEvent(db.Model):
    """What happened to a consumer order, by whom and why (append-only)."""

    __tablename__ = "consumer_order_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consumer_order_id: Mapped[int] = mapped_column(sa.ForeignKey("consumer_orders.id", ondelete="CASCADE"),
                                                   index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    # create | accept | decline | pass_on | route | ship | complete | wrong_code | remind
    action: Mapped[str] = mapped_column(sa.String(16))
    # The partner the order is with after this event (None: HQ).
    partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    order: Mapped[ConsumerOrder] = relationship(back_populates="events")
