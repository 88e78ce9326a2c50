"""Products and SKUs with their GTINs, case packs and tier prices (in fen)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class Product(db.Model):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    brand: Mapped[str] = mapped_column(sa.String(64), default="")
    category: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    skus: Mapped[list[Sku]] = relationship(back_populates="product", order_by="Sku.id")


class Sku(db.Model):
    """A sellable item. `gtin` is stored as 14 digits (a GTIN-13 gets a leading zero).

    `unit` is what one code, one scan and one unit of an order's quantity count (提, 瓶, 袋); `case_unit` is the
    shipping case (箱) holding `case_pack` of them. Orders count units and come in whole cases, so the minimum
    order quantity is a whole number of cases too (`app.catalog.services`).
    """

    __tablename__ = "skus"
    __table_args__ = (
        sa.CheckConstraint("case_pack >= 1", name="case_pack_positive"),
        sa.CheckConstraint("min_order_quantity >= 1", name="moq_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    specification: Mapped[str] = mapped_column(sa.String(64), default="")
    unit: Mapped[str] = mapped_column(sa.String(16), default="件")
    case_unit: Mapped[str] = mapped_column(sa.String(16), default="箱", server_default="箱")
    gtin: Mapped[str] = mapped_column(sa.String(14), unique=True)
    case_pack: Mapped[int] = mapped_column(sa.Integer, default=1)
    min_order_quantity: Mapped[int] = mapped_column(sa.Integer, default=1)
    serialized: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    product: Mapped[Product] = relationship(back_populates="skus")
    prices: Mapped[list[SkuPrice]] = relationship(back_populates="sku", cascade="all, delete-orphan")


class PriceTier(db.Model):
    __tablename__ = "price_tiers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))


class SkuPrice(db.Model):
    __tablename__ = "sku_prices"
    __table_args__ = (
        sa.UniqueConstraint("sku_id", "price_tier_id"),
        sa.CheckConstraint("price_fen >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id", ondelete="CASCADE"))
    price_tier_id: Mapped[int] = mapped_column(sa.ForeignKey("price_tiers.id"))
    price_fen: Mapped[int] = mapped_column(sa.BigInteger)

    sku: Mapped[Sku] = relationship(back_populates="prices")
