"""Users (mini-program or HQ console) and their role bindings."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    openid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(sa.String(64))
    # Kept on the server only: WeChat's session key never goes to the client.
    session_key: Mapped[str | None] = mapped_column(sa.String(64))
    username: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    display_name: Mapped[str] = mapped_column(sa.String(64), default="")
    phone: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised on logout-everywhere, a role removed or the user deactivated: tokens issued with an older version
    # stop working (app/accounts/revocation.py).
    token_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                         order_by="Membership.id")


class Membership(db.Model):
    """A role a user holds, and the scope it holds it in: a store, a partner subtree, a region, or everything."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "role", "store_id", "partner_id", "warehouse_id", "region_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(32))
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    warehouse_id: Mapped[int | None] = mapped_column(sa.ForeignKey("warehouses.id"))
    # HQ staff limited to a region (adcode); null means the whole country.
    region_code: Mapped[str | None] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    user: Mapped[User] = relationship(back_populates="memberships")
