"""The assessment's tables: a scheme per month, the month's close (one row, a unique index), the per-partner
assessment rows (versioned, with their inputs) and the rebate ledger (append-only, integer fen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class AssessmentScheme(db.Model):
    """HQ's scheme of one month: parts' weights, the attainment cap, the diversion penalty, tiers and the base."""

    __tablename__ = "assessment_schemes"
    __table_args__ = (sa.UniqueConstraint("period", name="uq_assessment_schemes_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7))
    weights: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    base: Mapped[str] = mapped_column(sa.String(16))  # sell_in
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class PeriodClose(db.Model):
    """A month's close: at most one (unique period), so of two racing closes one wins. `version` starts at 1 and
    each recompute that changed something bumps it (compare-and-set)."""

    __tablename__ = "period_closes"
    __table_args__ = (sa.UniqueConstraint("period", name="uq_period_closes_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7))
    scheme: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the scheme as it was applied
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    partners: Mapped[int] = mapped_column(sa.Integer, default=0)
    rebate_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # the ledger's sum for the month
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    recomputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PartnerAssessment(db.Model):
    """One partner's assessment of a month at one version of its close: inputs, parts, score, tier, rebate.
    The statement reads the partner's latest version."""

    __tablename__ = "partner_assessments"
    __table_args__ = (
        sa.UniqueConstraint("period", "partner_id", "version", name="uq_partner_assessments_version"),
        sa.Index("ix_partner_assessments_partner_id_period", "partner_id", "period"),
        sa.CheckConstraint("rebate_fen >= 0", name="rebate_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    inputs: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    parts: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    score_x100: Mapped[int] = mapped_column(sa.Integer)  # the score in hundredths of a point
    tier_index: Mapped[int] = mapped_column(sa.Integer)
    tier_name: Mapped[str] = mapped_column(sa.String(40))
    rebate_bp: Mapped[int] = mapped_column(sa.Integer)
    base_fen: Mapped[int] = mapped_column(sa.BigInteger)
    rebate_fen: Mapped[int] = mapped_column(sa.BigInteger)
    movement: Mapped[str] = mapped_column(sa.String(12))  # new | promoted | kept | demoted
    previous_tier: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class RebateEntry(db.Model):
    """The rebate ledger, append-only: a close writes each partner's rebate (`close`), a recompute the exact
    difference (`adjust`, with its reason). A partner's month sums to its statement's rebate."""

    __tablename__ = "rebate_entries"
    __table_args__ = (sa.Index("ix_rebate_entries_period_partner_id", "period", "partner_id"),
                      sa.UniqueConstraint("period", "partner_id", "version", name="uq_rebate_entries_version"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(sa.String(8))  # close | adjust
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
