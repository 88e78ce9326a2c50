"""Scan incentive rules (per SKU and step) and the credit ledger a store can see."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db

INCENTIVE_STEPS = ("receive", "sell")


class IncentiveRule(db.Model):
    """What HQ pays a store per verified scan of a SKU at a step."""

    __tablename__ = "incentive_rules"
    __table_args__ = (
        sa.UniqueConstraint("sku_id", "step"),
        sa.CheckConstraint("points >= 0", name="points_not_negative"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    step: Mapped[str] = mapped_column(sa.String(16))
    points: Mapped[int] = mapped_column(sa.Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class IncentiveCredit(db.Model):
    """One entry of a store's incentive ledger (append-only amounts): a credit, or the reversal of one.

    A standing credit holds its code's slot for the step (`code_id`, unique with `step`), so a code pays once per
    step however often it is scanned. When the scan that earned it is undone, a reversal entry (negative amounts,
    `reverses_id`) is added and the credit gives up its slot (`code_id` cleared, the code kept in
    `reversed_code_id`), so scanning the code again earns the step once more. Amounts are never changed or deleted.
    """

    __tablename__ = "incentive_credits"
    __table_args__ = (
        sa.UniqueConstraint("code_id", "step"),
        sa.Index("ix_incentive_credits_store_id_id", "store_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"))
    code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("codes.id"))
    # Set on a reversed credit and on its reversal: the code they were for.
    reversed_code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("codes.id"))
    # On a reversal entry: the credit it reverses (unique: a credit is reversed at most once).
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("incentive_credits.id"), unique=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    step: Mapped[str] = mapped_column(sa.String(16))
    points: Mapped[int] = mapped_column(sa.Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan_events.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
