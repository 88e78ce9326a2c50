"""Locations, warehouses, stock levels and the append-only movement ledger."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db

LOCATION_KINDS = ("warehouse", "store", "transit")


class Location(db.Model):
    """Anything that holds stock: a warehouse, a store, or goods in transit to a destination."""

    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(100))
    city_code: Mapped[str | None] = mapped_column(sa.String(12), index=True)
    # For a transit location: where the goods in it are going (a store's or a warehouse's location).
    destination_id: Mapped[int | None] = mapped_column(sa.ForeignKey("locations.id"), unique=True)


class Warehouse(db.Model):
    """The central warehouse, or a city sub-warehouse serving a list of cities."""

    __tablename__ = "warehouses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(16))  # central | sub
    city_code: Mapped[str] = mapped_column(sa.String(12))
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("locations.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    cities: Mapped[list[WarehouseCity]] = relationship(back_populates="warehouse", cascade="all, delete-orphan")
    location: Mapped[Location] = relationship()


class WarehouseCity(db.Model):
    """A city a sub-warehouse serves; each city is served by at most one sub-warehouse."""

    __tablename__ = "warehouse_cities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(sa.ForeignKey("warehouses.id", ondelete="CASCADE"), index=True)
    city_code: Mapped[str] = mapped_column(sa.String(12), unique=True)

    warehouse: Mapped[Warehouse] = relationship(back_populates="cities")


class StockLevel(db.Model):
    """The cached sum of the ledger for one location and SKU. Never negative; reserved never exceeds on hand."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        sa.UniqueConstraint("location_id", "sku_id"),
        sa.CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("locations.id"))
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"), index=True)
    on_hand: Mapped[int] = mapped_column(sa.Integer, default=0)
    reserved: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class StockMovement(db.Model):
    """One line of the append-only ledger: what changed, where, why, and what caused it."""

    __tablename__ = "stock_movements"
    __table_args__ = (sa.Index("ix_stock_movements_location_sku", "location_id", "sku_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("locations.id"))
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    delta_on_hand: Mapped[int] = mapped_column(sa.Integer, default=0)
    delta_reserved: Mapped[int] = mapped_column(sa.Integer, default=0)
    # receive | ship | sell | return | adjust | stocktake | transfer_out | transfer_in | reserve | release | undo
    kind: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    ref_type: Mapped[str | None] = mapped_column(sa.String(32))
    ref_id: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
