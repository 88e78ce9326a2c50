"""Code batches and codes. A case (箱码) is a code of kind `case`; its units point at it with `case_id`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db

# `missing`: on a store's books but not found there at a stocktake by codes (it comes back when scanned there).
CODE_STATES = ("issued", "packed", "in_warehouse", "in_transit", "in_store", "sold", "returned", "voided", "missing")
CODE_KINDS = ("unit", "case")
BATCH_STATUSES = ("pending", "running", "done", "failed")


class CodeBatch(db.Model):
    """HQ's order for N unit codes of a SKU, optionally packed into cases; made by a background job."""

    __tablename__ = "code_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"), index=True)
    quantity: Mapped[int] = mapped_column(sa.Integer)
    case_size: Mapped[int | None] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    units_made: Mapped[int] = mapped_column(sa.Integer, default=0)
    cases_made: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.String(255))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Code(db.Model):
    """One printed code: a unit, or a case holding units. Its state and where it is now; history is in scans."""

    __tablename__ = "codes"
    __table_args__ = (
        sa.Index("ix_codes_sku_state", "sku_id", "state"),
        sa.Index("ix_codes_store_state", "store_id", "state"),
        sa.Index("ix_codes_location_sku_state", "location_id", "sku_id", "state"),
        sa.CheckConstraint("verify_count >= 0", name="verify_count_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(sa.String(16), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(8), default="unit")
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("code_batches.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("codes.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="issued")
    # Where it is: a warehouse or store location (null while issued, or sold and gone).
    location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("locations.id"))
    # The store holding it (in_store, returned), the store that sold it (sold) or where it went missing (missing).
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    # Anti-diversion: where the shipment was meant to go. order_id has no foreign key so codes do not
    # depend on the orders module.
    order_id: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    destination_store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    destination_distributor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partners.id"))
    destination_region: Mapped[str | None] = mapped_column(sa.String(12))
    sold_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
