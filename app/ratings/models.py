"""A store owner's monthly rating of the distributor serving the store."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class StoreRating(db.Model):
    """One store's rating of its distributor for one business month (`YYYY-MM`, Asia/Shanghai).

    At most one per store and month (a unique index, so two owners of a store rating at once: one wins), written
    by the store's owner (`user_id`, shown to HQ only) and never edited. `distributor_id` is the distributor
    serving the store when the rating was written: a later move of the store does not move the rating.
    """

    __tablename__ = "store_ratings"
    __table_args__ = (
        sa.UniqueConstraint("store_id", "period", name="uq_store_ratings_store_id_period"),
        sa.UniqueConstraint("user_id", "request_id", name="uq_store_ratings_user_id_request_id"),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="score_1_to_5"),
        sa.Index("ix_store_ratings_distributor_id_period", "distributor_id", "period"),
        sa.Index("ix_store_ratings_period", "period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"))
    distributor_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    period: Mapped[str] = mapped_column(sa.String(7))
    score: Mapped[int] = mapped_column(sa.SmallInteger)
    comment: Mapped[str | None] = mapped_column(sa.String(500))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    request_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
