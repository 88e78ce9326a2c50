"""Monthly targets of a partner (CHANNEL.md §5): partner × month × metric, versioned.

A change never edits a row: it writes the next version and marks the one it replaces `superseded_at`, in one
transaction; a partial unique index keeps one live row per partner, month, metric and SKU group (none: all SKUs),
so two racing changes cannot both stay live (the loser's INSERT fails and is retried or refused).

A SKU group (`SkuGroup`) is a named set of SKUs a target may be limited to; its actual counts its members only.
A yearly target is split over the months by a template (`TargetTemplate`, twelve shares in basis points totalling
10,000); what is stored is the twelve monthly targets, so a later change to the template rewrites nothing.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db

METRICS = ("sell_through_units", "sell_in_fen", "active_stores", "new_stores")


class PartnerTarget(db.Model):
    __tablename__ = "partner_targets"
    __table_args__ = (
        sa.CheckConstraint("value >= 0", name="target_value_not_negative"),
        sa.CheckConstraint("version >= 1", name="target_version_positive"),
        # A target of all SKUs (no group) and one of a group each have their own pair: NULL never collides with
        # itself in a unique index, so the group's column cannot simply join the first pair.
        sa.Index("uq_partner_targets_live_all", "partner_id", "period", "metric", unique=True,
                 postgresql_where=sa.text("superseded_at IS NULL AND sku_group_id IS NULL"),
                 sqlite_where=sa.text("superseded_at IS NULL AND sku_group_id IS NULL")),
        sa.Index("uq_partner_targets_version_all", "partner_id", "period", "metric", "version", unique=True,
                 postgresql_where=sa.text("sku_group_id IS NULL"), sqlite_where=sa.text("sku_group_id IS NULL")),
        sa.Index("uq_partner_targets_live_group", "partner_id", "period", "metric", "sku_group_id", unique=True,
                 postgresql_where=sa.text("superseded_at IS NULL"), sqlite_where=sa.text("superseded_at IS NULL")),
        sa.Index("uq_partner_targets_version_group", "partner_id", "period", "metric", "sku_group_id", "version",
                 unique=True),
        sa.Index("ix_partner_targets_period", "period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    period: Mapped[str] = mapped_column(sa.String(7))  # 'YYYY-MM', a month in BUSINESS_TZ
    metric: Mapped[str] = mapped_column(sa.String(24))
    sku_group_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sku_groups.id"))
    value: Mapped[int] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SkuGroup(db.Model):
    """A named set of SKUs (e.g. 新品, 礼盒) that a target may count alone."""

    __tablename__ = "sku_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class SkuGroupMember(db.Model):
    __tablename__ = "sku_group_members"

    group_id: Mapped[int] = mapped_column(sa.ForeignKey("sku_groups.id", ondelete="CASCADE"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"), primary_key=True)


class TargetTemplate(db.Model):
    """How a yearly target is split over the months: twelve shares in basis points that total 10,000."""

    __tablename__ = "target_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    shares_bp: Mapped[list[int]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
