"""Partners, stores, territories and invites."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db

PARTNER_KINDS = ("hq", "agent", "distributor")


class Partner(db.Model):
    """A node of the channel tree. `path` ("/1/4/9/") makes "everything under this partner" one LIKE."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(16))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    path: Mapped[str] = mapped_column(sa.String(255), index=True, default="")
    level: Mapped[str] = mapped_column(sa.String(16), default="standard")
    contact_phone: Mapped[str | None] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    parent: Mapped[Partner | None] = relationship(remote_side=[id])
    territories: Mapped[list[Territory]] = relationship(back_populates="partner", cascade="all, delete-orphan")


TERRITORY_KINDS = ("exclusive", "shared")


class Territory(db.Model):
    """An assignment of a region (adcode: province, city or district) and optionally an industry ("any" when
    empty) to a partner, `exclusive` or `shared`, valid from `valid_from` until `valid_to` (open when empty).

    Two exclusive assignments never overlap (same region or one inside the other, same industry or either "any",
    overlapping dates): `app.channel.territories` checks it under a lock. Ending an assignment moves `valid_to`
    and records who ended it and why; rows are never deleted, so who held a place when stays readable. Who serves
    a place is `app.channel.routing.route`.
    """

    __tablename__ = "territories"
    __table_args__ = (
        sa.Index("ix_territories_region_code_valid_from", "region_code", "valid_from"),
        sa.CheckConstraint("kind IN ('exclusive', 'shared')", name="kind_known"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_to_after_valid_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    industry: Mapped[str | None] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(16), default="shared")
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    end_reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    partner: Mapped[Partner] = relationship(back_populates="territories")


class Store(db.Model):
    """A shop at the end of the channel, served by exactly one distributor."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    owner_name: Mapped[str] = mapped_column(sa.String(64), default="")
    phone: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    address: Mapped[str] = mapped_column(sa.String(255), default="")
    province_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    city_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    district_code: Mapped[str | None] = mapped_column(sa.String(12))
    industry: Mapped[str | None] = mapped_column(sa.String(32))
    distributor_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    price_tier_id: Mapped[int] = mapped_column(sa.ForeignKey("price_tiers.id"))
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("locations.id"), unique=True)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    distributor: Mapped[Partner] = relationship()


class Invite(db.Model):
    """A single-use invitation into a role at a store or partner, shown as a mini-program code."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The scene of the mini-program code: at most 32 characters (WeChat's limit).
    token: Mapped[str] = mapped_column(sa.String(32), unique=True)
    role: Mapped[str] = mapped_column(sa.String(32))
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    qr_png: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
