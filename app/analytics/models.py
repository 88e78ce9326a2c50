"""Sell-through rollups, allocation plans and transfer orders."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class DailySales(db.Model):
    """Units and fen sold (scan-outs net of returns and undos) per business day, SKU and store.

    Region and distributor are copied from the store so dashboard reads never join the store table.
    """

    __tablename__ = "daily_sales"
    __table_args__ = (
        sa.UniqueConstraint("day", "sku_id", "store_id"),
        # The dashboards filter a period and group by region or SKU: day leads, the rest covers the read.
        sa.Index("ix_daily_sales_day_city", "day", "city_code", "sku_id", "units", "amount_fen"),
        sa.Index("ix_daily_sales_store_sku", "store_id", "sku_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"))
    province_code: Mapped[str] = mapped_column(sa.String(12))
    city_code: Mapped[str] = mapped_column(sa.String(12))
    distributor_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    units: Mapped[int] = mapped_column(sa.Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class SalesInbox(db.Model):
    """Sales not yet folded into the rollups: the sell, return or undo appends here in its own transaction, and
    `rollups.fold` moves the rows into `daily_sales` and the city tables, exactly once, seconds later (and before
    every dashboard read).

    So a scan never waits on a rollup row that every other store of its city is updating too. No foreign keys:
    a row lives seconds, and its ids come from rows its own transaction just read.
    """

    __tablename__ = "sales_inbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    sku_id: Mapped[int] = mapped_column(sa.BigInteger)
    store_id: Mapped[int] = mapped_column(sa.BigInteger)
    units: Mapped[int] = mapped_column(sa.Integer)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    # When the row was written (the database's clock, so the hot path's SQL functions fill it without naming it):
    # the age of the oldest row is how far the rollups lag behind the sales (`rollups.fold_lag_seconds`).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True),
                                                 server_default=sa.text("CURRENT_TIMESTAMP"))


class DailyCitySales(db.Model):
    """`daily_sales` summed over the stores of a city: what region dashboards read at tens of millions of scans.

    Kept by the same fold as `daily_sales`, in the same transaction; `rollups.refresh_city_rollup` recomputes it
    from `daily_sales` for a range of days (after a rebuild or a bulk load).
    """

    __tablename__ = "daily_city_sales"
    __table_args__ = (
        sa.UniqueConstraint("day", "sku_id", "city_code"),
        # Covering index: a period × city (× SKU) read is an index-only scan.
        sa.Index("ix_daily_city_sales_day_city", "day", "city_code", "sku_id", "units", "amount_fen",
                 "province_code"),
        # One SKU's period (the SKU filter) without walking every other SKU's rows.
        sa.Index("ix_daily_city_sales_sku_day", "sku_id", "day", "city_code", "units", "amount_fen", "province_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    city_code: Mapped[str] = mapped_column(sa.String(12))
    province_code: Mapped[str] = mapped_column(sa.String(12))
    units: Mapped[int] = mapped_column(sa.Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class DailyCityTotal(db.Model):
    """All SKUs of a city per day: the region dashboards with no SKU filter read a few thousand rows from here."""

    __tablename__ = "daily_city_totals"
    __table_args__ = (
        sa.UniqueConstraint("day", "city_code"),
        sa.Index("ix_daily_city_totals_day_city", "day", "city_code", "units", "amount_fen", "province_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    city_code: Mapped[str] = mapped_column(sa.String(12))
    province_code: Mapped[str] = mapped_column(sa.String(12))
    units: Mapped[int] = mapped_column(sa.Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class DailySellIn(db.Model):
    """Units shipped to stores (sell-in) per business day, SKU and store."""

    __tablename__ = "daily_sell_in"
    __table_args__ = (
        sa.UniqueConstraint("day", "sku_id", "store_id"),
        sa.Index("ix_daily_sell_in_day_city", "day", "city_code", "sku_id", "units"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"))
    province_code: Mapped[str] = mapped_column(sa.String(12))
    city_code: Mapped[str] = mapped_column(sa.String(12))
    distributor_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    units: Mapped[int] = mapped_column(sa.Integer, default=0)


PLAN_STATUSES = ("draft", "approved")


class AllocationPlan(db.Model):
    """Proposed transfers central → sub-warehouses; HQ edits the lines, then approves."""

    __tablename__ = "allocation_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    central_warehouse_id: Mapped[int] = mapped_column(sa.ForeignKey("warehouses.id"))
    target_cover_days: Mapped[int] = mapped_column(sa.Integer)
    alpha_milli: Mapped[int] = mapped_column(sa.Integer)  # smoothing factor × 1000 (no floats stored)
    history_days: Mapped[int] = mapped_column(sa.Integer)
    as_of: Mapped[date] = mapped_column(sa.Date)
    note: Mapped[str] = mapped_column(sa.String(255), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[AllocationLine]] = relationship(back_populates="plan", cascade="all, delete-orphan",
                                                       order_by="AllocationLine.id")


class AllocationLine(db.Model):
    """One SKU to one sub-warehouse: the numbers behind the suggestion and the (editable) quantity."""

    __tablename__ = "allocation_lines"
    __table_args__ = (
        sa.UniqueConstraint("plan_id", "warehouse_id", "sku_id"),
        sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("allocation_plans.id", ondelete="CASCADE"), index=True)
    warehouse_id: Mapped[int] = mapped_column(sa.ForeignKey("warehouses.id"))
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    daily_rate_milli: Mapped[int] = mapped_column(sa.Integer)  # smoothed units/day × 1000
    on_hand: Mapped[int] = mapped_column(sa.Integer)
    in_transit: Mapped[int] = mapped_column(sa.Integer)
    suggested: Mapped[int] = mapped_column(sa.Integer)
    quantity: Mapped[int] = mapped_column(sa.Integer)
    cover_after_milli: Mapped[int | None] = mapped_column(sa.Integer)  # days of cover after transfer × 1000

    plan: Mapped[AllocationPlan] = relationship(back_populates="lines")


class TransferOrder(db.Model):
    """Stock moving from one warehouse to another: shipped (in transit) on creation, then received."""

    __tablename__ = "transfer_orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("allocation_plans.id"), index=True)
    from_warehouse_id: Mapped[int] = mapped_column(sa.ForeignKey("warehouses.id"))
    to_warehouse_id: Mapped[int] = mapped_column(sa.ForeignKey("warehouses.id"))
    status: Mapped[str] = mapped_column(sa.String(16), default="in_transit")  # in_transit | received
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    lines: Mapped[list[TransferLine]] = relationship(back_populates="transfer", cascade="all, delete-orphan",
                                                     order_by="TransferLine.id")


class TransferLine(db.Model):
    __tablename__ = "transfer_lines"
    __table_args__ = (sa.CheckConstraint("quantity > 0", name="transfer_quantity_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(sa.ForeignKey("transfer_orders.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    quantity: Mapped[int] = mapped_column(sa.Integer)

    transfer: Mapped[TransferOrder] = relationship(back_populates="lines")
