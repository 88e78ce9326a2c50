"""Code batches, codes and their history. A case (箱码) is a code of kind `case`; its units point at it with
`case_id`. Every step of a code (commissioned, packed, put away, shipped, received, sold, returned, undone,
counted) is a `ScanEvent` in the GS1 EPCIS vocabulary: the putaway and shipping here, the store's scans in
`app.scans`, the trace and the EPCIS export read them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core import partitions
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
    # A unit HQ shipped to a consumer (a consumer order) is `sold` at no store: its destination names the partner
    # serving the consumer and the address's city.
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


# Our action → (EPCIS business step, disposition after it).
BIZ_STEPS = {
    "commission": ("commissioning", "active"),
    "pack": ("packing", "in_progress"),
    "putaway": ("storing", "sellable_not_accessible"),
    "ship": ("shipping", "in_transit"),
    "receive": ("receiving", "sellable_accessible"),
    "sell": ("retail_selling", "retail_sold"),
    "return": ("returning", "returned"),
    "undo": ("void_shipping", "unknown"),  # exported as an EPCIS errorDeclaration on the corrected event
    "adjust": ("inspecting", "sellable_accessible"),
    # A stocktake by codes: a unit on the books here but not found (missing), or found here (back on the shelf).
    "missing": ("cycle_counting", "unknown"),
    "found": ("cycle_counting", "sellable_accessible"),
}


class ScanEvent(db.Model):
    """One append-only event: what (code or SKU × quantity), when (device and server), where, why, who."""

    __tablename__ = "scan_events"
    __table_args__ = (
        sa.Index("ix_scan_events_store_id_id", "store_id", "id"),
        sa.Index("ix_scan_events_recorded_at", "recorded_at"),
        # The hot sell path's idempotency key: the event is the request's record (see `request_id`).
        sa.Index("uq_scan_events_user_id_request_id", "user_id", "request_id", unique=True,
                 postgresql_where=sa.text("request_id IS NOT NULL"), sqlite_where=sa.text("request_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("codes.id"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    quantity: Mapped[int] = mapped_column(sa.Integer, default=1)
    action: Mapped[str] = mapped_column(sa.String(16))
    biz_step: Mapped[str] = mapped_column(sa.String(32))
    disposition: Mapped[str] = mapped_column(sa.String(32))
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("locations.id"))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)  # from the device
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)  # when we received it
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    order_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    lat: Mapped[float | None] = mapped_column(sa.Float)
    lng: Mapped[float | None] = mapped_column(sa.Float)
    # The units of a case scan point at the case's event, so one undo corrects the whole scan.
    parent_event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan_events.id"), index=True)
    # An undo names the event it corrects; unique, so an event is corrected at most once.
    corrects_event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scan_events.id"), unique=True)
    diverted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # A sell done by the hot path (app/scans/hot.py) records its client request here rather than in
    # `scan_requests`, with the stock it left, so a replay's answer is rebuilt from the event: one row per sell,
    # not two. Every other scan leaves these empty and stores its answer in `scan_requests`.
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    on_hand_after: Mapped[int | None] = mapped_column(sa.Integer)
    # A sell's attribution, written with it: the distributor serving the store then, and that distributor's
    # parent agent (none when it hangs under HQ). Later moves of the store or its partner leave it as it was.
    partner_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    agent_id: Mapped[int | None] = mapped_column(sa.BigInteger)


# On PostgreSQL `scan_events` and `stock_movements` are partitioned by month (app/core/partitions.py); create_all
# builds them so, as the migrations do.
sa.event.listen(db.metadata, "after_create", partitions.convert_after_create_all)
sa.event.listen(db.metadata, "before_drop", partitions.drop_side_tables_before_drop_all)
