"""Monthly targets of a partner (CHANNEL.md §5): partner × month × metric, versioned.

A change never edits a row: it writes the next version and marks the one it replaces `superseded_at`, in one
transaction; a partial unique index keeps one live row per partner, month and metric, so two racing changes
cannot both stay live (the loser's INSERT fails and is retried or refused).
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
        sa.Index("uq_partner_targets_live", "partner_id", "period", "metric", unique=True,
                 postgresql_where=sa.text("superseded_at IS NULL"), sqlite_where=sa.text("superseded_at IS NULL")),
        sa.Index("uq_partner_targets_version", "partner_id", "period", "metric", "version", unique=True),
        sa.Index("ix_partner_targets_period", "period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    period: Mapped[str] = mapped_column(sa.String(7))  # 'YYYY-MM', a month in BUSINESS_TZ
    metric: Mapped[str] = mapped_column(sa.String(24))
    value: Mapped[int] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
