"""Which phone has checked which unit, so a reload by the same phone is not counted as another check."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime
from app.extensions import db


class VerifyViewer(db.Model):
    """One phone's last counted check of one unit. `viewer` is the SHA-256 of the random first-party cookie the
    consumer page and the verify API give a phone (never the cookie itself, nothing about the person)."""

    __tablename__ = "verify_viewers"

    code_id: Mapped[int] = mapped_column(sa.ForeignKey("codes.id"), primary_key=True)
    viewer: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsumerSettings(db.Model):
    """HQ's settings for what the consumer page says about the brand (one row); absent means the configured
    defaults (`BRAND_NAME`, `BRAND_SERVICE_CONTACT`)."""

    __tablename__ = "consumer_settings"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    brand_name: Mapped[str] = mapped_column(sa.String(64))
    service_contact: Mapped[str] = mapped_column(sa.String(200))
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
