"""Registrations (客户报备): a partner's claim on a prospect shop, protected for a time, and HQ's rules for them.

A registration that is `protected` or `converted` holds its shop's identity keys (`registration_identities`, one
row per key, unique on kind and value), so a second claim on the same shop fails on the index, never on a read.
Leaving those states deletes the keys in the same transaction as the move (`Registration.move_to`'s caller).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.errors import Conflict
from app.extensions import db

PROTECTED, CONVERTED, EXPIRED, RELEASED, REASSIGNED = "protected", "converted", "expired", "released", "reassigned"
STATUSES = (PROTECTED, CONVERTED, EXPIRED, RELEASED, REASSIGNED)
HOLDING = (PROTECTED, CONVERTED)  # the states whose identity keys are held
STATUS_NAMES = {PROTECTED: "保护中", CONVERTED: "已成交", EXPIRED: "已过期", RELEASED: "已放弃",
                REASSIGNED: "已改派"}
TRANSITIONS = {
    PROTECTED: {PROTECTED, CONVERTED, EXPIRED, RELEASED, REASSIGNED},  # protected → protected: an extension
    CONVERTED: {REASSIGNED},  # a dormant store, by HQ
}


class RegistrationPolicy(db.Model):
    """HQ's rules for registrations: one row."""

    __tablename__ = "registration_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    protection_days: Mapped[int] = mapped_column(sa.Integer, default=30)
    max_extensions: Mapped[int] = mapped_column(sa.Integer, default=1)
    extension_days: Mapped[int] = mapped_column(sa.Integer, default=15)
    # Active protections a partner may hold, by partner level; a level not listed gets `default_quota`.
    quota_by_level: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    default_quota: Mapped[int] = mapped_column(sa.Integer, default=50)
    reminder_days: Mapped[int] = mapped_column(sa.Integer, default=3)
    dormancy_days: Mapped[int] = mapped_column(sa.Integer, default=90)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class Registration(db.Model):
    """One partner's registration of one shop, with the partner and its agent as they were when it was made."""

    __tablename__ = "registrations"
    __table_args__ = (
        sa.UniqueConstraint("created_by_id", "request_id"),
        sa.Index("ix_registrations_status_protected_until", "status", "protected_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    phone: Mapped[str] = mapped_column(sa.String(20))
    address: Mapped[str] = mapped_column(sa.String(255), default="")
    region_code: Mapped[str] = mapped_column(sa.String(12))
    industry: Mapped[str] = mapped_column(sa.String(32), default="")
    licence_no: Mapped[str | None] = mapped_column(sa.String(18))
    lat: Mapped[float | None] = mapped_column(sa.Float)
    lng: Mapped[float | None] = mapped_column(sa.Float)
    status: Mapped[str] = mapped_column(sa.String(16), default=PROTECTED)
    protected_until: Mapped[datetime] = mapped_column(UTCDateTime)
    extensions_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    converted_via: Mapped[str | None] = mapped_column(sa.String(16))
    # Set by the dormancy job from the store's orders and scans (and cleared when it trades again).
    dormant_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reassigned_from_id: Mapped[int | None] = mapped_column(sa.ForeignKey("registrations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    partner = relationship("Partner", foreign_keys=[partner_id])
    identities: Mapped[list[RegistrationIdentity]] = relationship(
        back_populates="registration", cascade="all, delete-orphan")
    events: Mapped[list[RegistrationEvent]] = relationship(
        back_populates="registration", cascade="all, delete-orphan", order_by="RegistrationEvent.id")

    def move_to(self, status: str, *, action: str, user_id: int | None, reason: str = "",
                at: datetime | None = None, request_id: str | None = None) -> RegistrationEvent:
        """Change state (an illegal move raises `registration_state`) and write its audit row; a state that holds
        no keys gives its identity rows up (deleted at the next flush, in the caller's transaction)."""
        if status not in TRANSITIONS.get(self.status, ()):
            raise Conflict(f"这条报备{STATUS_NAMES[self.status]}，不能再操作", code="registration_state",
                           details={"status": self.status})
        event = RegistrationEvent(from_status=self.status, to_status=status, action=action, user_id=user_id,
                                  reason=reason, at=at or now_utc(), request_id=request_id)
        self.status = status
        self.events.append(event)
        if status not in HOLDING:
            self.identities.clear()
        return event


class RegistrationIdentity(db.Model):
    """One identity key of a registration that holds its shop; unique, so one shop has one holder."""

    __tablename__ = "registration_identities"
    __table_args__ = (sa.UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registrations.id", ondelete="CASCADE"),
                                                 index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.String(160))

    registration: Mapped[Registration] = relationship(back_populates="identities")


class RegistrationEvent(db.Model):
    """The audit row of one transition: who, when, why, from and to."""

    __tablename__ = "registration_events"
    __table_args__ = (
        # A phone's retried extend or release names its request: the repeat finds the first one's row.
        sa.Index("uq_registration_events_registration_id_request_id", "registration_id", "request_id", unique=True,
                 postgresql_where=sa.text("request_id IS NOT NULL"), sqlite_where=sa.text("request_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("registrations.id", ondelete="CASCADE"),
                                                 index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    registration: Mapped[Registration] = relationship(back_populates="events")


class RegistrationConflict(db.Model):
    """A refused registration: who tried, who holds the shop (a registration or a store), and what they were told,
    so a repeat of the request gets the same answer and HQ sees both partners."""

    __tablename__ = "registration_conflicts"
    __table_args__ = (sa.UniqueConstraint("created_by_id", "request_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    holder_partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    registration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("registrations.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(100))
    phone: Mapped[str] = mapped_column(sa.String(20))
    region_code: Mapped[str] = mapped_column(sa.String(12))
    held_by: Mapped[str] = mapped_column(sa.String(100))
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
