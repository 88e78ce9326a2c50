"""Idempotent scan requests, diversion alerts, the HQ scan policy, and the hot sell path's SQL functions (created
with the tables). The scan events themselves are the codes' history: `app.codes.models.ScanEvent`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class ScanRequest(db.Model):
    """The first answer to a client's `request_id`: a replay gets it back and changes nothing.

    Sells done by the hot path keep their request on their `ScanEvent` instead (see there)."""

    __tablename__ = "scan_requests"
    __table_args__ = (sa.UniqueConstraint("user_id", "request_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    request_id: Mapped[str] = mapped_column(sa.String(64))
    answer: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class DiversionAlert(db.Model):
    """A unit sold (or scanned) outside the store, distributor or region its shipment was meant for."""

    __tablename__ = "diversion_alerts"
    __table_args__ = (sa.Index("ix_diversion_alerts_created_at", "created_at"),
                      sa.Index("ix_diversion_alerts_status_id", "status", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_id: Mapped[int] = mapped_column(sa.ForeignKey("codes.id"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"), index=True)
    source: Mapped[str] = mapped_column(sa.String(16))  # sell | consumer | stocktake
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan_events.id"))
    expected_store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    expected_distributor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    expected_region: Mapped[str | None] = mapped_column(sa.String(12))
    actual_store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    actual_distributor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    actual_region: Mapped[str | None] = mapped_column(sa.String(12))
    policy: Mapped[str] = mapped_column(sa.String(16))  # alert | refuse: what the policy did with the scan
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    # How HQ handled it (`app.scans.alerts`): open → investigating → confirmed | dismissed, and who last moved it.
    status: Mapped[str] = mapped_column(sa.String(16), default="open", server_default="open")
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


ALERT_STATUSES = ("open", "investigating", "confirmed", "dismissed")


class DiversionAlertEvent(db.Model):
    """An alert's history, append-only: every status change (with its note) and every note added on its own."""

    __tablename__ = "diversion_alert_events"
    __table_args__ = (sa.Index("ix_diversion_alert_events_alert_id_id", "alert_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("diversion_alerts.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))  # status | note
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str | None] = mapped_column(sa.String(16))
    note: Mapped[str] = mapped_column(sa.String(1000), default="")
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class ScanPolicy(db.Model):
    """HQ's scan settings (one row); absent means the configured defaults."""

    __tablename__ = "scan_policy"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    diversion_policy: Mapped[str] = mapped_column(sa.String(16), default="alert")  # alert | refuse
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


SQL_DIR = Path(__file__).resolve().parent / "sql"
# The hot sell path's functions (`app.scans.hot`) as this code expects them: the newest version of each, which the
# head migration creates (c4a7d2e91f30; tests/test_migrations.py checks both build the same). Released versions
# never change.
FUNCTION_FILES = (SQL_DIR / "scan_sell_one_v3.sql", SQL_DIR / "scan_sell_many_v3.sql")


def function_sql() -> str:
    """The SQL that creates the hot path's functions (what `create_all` runs; migrations run the same files)."""
    return "\n".join(f.read_text(encoding="utf-8") for f in FUNCTION_FILES)


@sa.event.listens_for(db.metadata, "after_create")
def _create_sell_function(target, connection, **_kw) -> None:
    """`create_all` (tests, benchmarks) makes the hot sell path's function too, as the migrations do."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(function_sql())
