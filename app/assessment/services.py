"""The assessment's writes: HQ's scheme of a month, the month's close and its recompute (CHANNEL.md §8).

The close runs in ONE transaction: its row first (a unique index on the month, so of two racing closes the
second waits on the first and then fails: 409 `period_closed`), then every partner's assessment row and its
rebate entry (`close`). A failure anywhere leaves nothing. A closed month changes only by a recompute, with a
reason, which writes for each partner whose figures moved a new assessment row and an `adjust` entry of exactly
the difference, and bumps the close's version (compare-and-set: of two racing recomputes one wins).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.analytics.targets import check_period, month_bounds
from app.assessment.inputs import compute
from app.assessment.models import AssessmentScheme, PartnerAssessment, PeriodClose, RebateEntry
from app.assessment.scoring import check_scheme, movement
from app.core.clock import now_utc
from app.core.db import on_postgres
from app.core.security import Principal, authorize_action
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db

FIGURES = ("score_x100", "tier_index", "tier_name", "rebate_bp", "base_fen", "rebate_fen", "parts", "inputs")


def previous_period(period: str) -> str:
    year, month = check_period(period)
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def _closed(period: str) -> PeriodClose | None:
    return db.session.scalar(sa.select(PeriodClose).where(PeriodClose.period == period))


def _closed_conflict(close: PeriodClose) -> Conflict:
    return Conflict("这个月已经结算过了", code="period_closed",
                    details={"period": close.period, "version": close.version,
                             "closed_at": close.closed_at.isoformat(), "partners": close.partners,
                             "rebate_fen": close.rebate_fen})


def put_scheme(principal: Principal, *, period: str, weights: Any, tiers: Any, base: Any) -> AssessmentScheme:
    """Set the month's scheme (replacing the one before); refused once the month is closed."""
    authorize_action(principal, "hq.write")
    check_period(period)
    clean = check_scheme(weights, tiers, base)
    try:
        with transaction():
            close = _closed(period)
            if close is not None:
                raise _closed_conflict(close)
            row = db.session.scalar(sa.select(AssessmentScheme).where(AssessmentScheme.period == period))
            if row is None:
                row = AssessmentScheme(period=period)
                db.session.add(row)
            row.weights, row.tiers, row.base = clean["weights"], clean["tiers"], clean["base"]
            row.updated_by_id, row.updated_at = principal.user_id, now_utc()
            db.session.flush()
            return row
    except IntegrityError:
        raise Conflict("这个月的方案刚被别人改过，请刷新后再试", code="scheme_changed",
                       details={"period": period}) from None


def scheme_dict(row: AssessmentScheme) -> dict[str, Any]:
    return {"weights": row.weights, "tiers": row.tiers, "base": row.base}


def _previous_tiers(period: str, partner_ids: list[int]) -> dict[int, tuple[int, str]]:
    """The tier (index, name) of each partner at the previous month's close (its latest version)."""
    prev = previous_period(period)
    pa = PartnerAssessment.__table__
    latest = (sa.select(pa.c.partner_id, sa.func.max(pa.c.version).label("v"))
              .where(pa.c.period == prev).group_by(pa.c.partner_id).subquery())
    rows = db.session.execute(sa.select(pa.c.partner_id, pa.c.tier_index, pa.c.tier_name).join(
        latest, sa.and_(latest.c.partner_id == pa.c.partner_id, latest.c.v == pa.c.version))
        .where(pa.c.period == prev))
    return {pid: (i, name) for pid, i, name in rows}


def _rows(period: str, version: int, figures: dict[int, dict[str, Any]], user_id: int | None,
          kind: str, amounts: dict[int, int], reason: str = "") -> None:
    """Write the assessment rows and rebate entries (one INSERT of many rows each)."""
    now = now_utc()
    prev = _previous_tiers(period, list(figures))
    if figures:
        db.session.execute(sa.insert(PartnerAssessment.__table__), [
            {"period": period, "partner_id": pid, "version": version, "inputs": f["inputs"], "parts": f["parts"],
             "score_x100": f["score_x100"], "tier_index": f["tier_index"], "tier_name": f["tier_name"],
             "rebate_bp": f["rebate_bp"], "base_fen": f["base_fen"], "rebate_fen": f["rebate_fen"],
             "movement": movement(prev[pid][0] if pid in prev else None, f["tier_index"]),
             "previous_tier": prev[pid][1] if pid in prev else None, "created_at": now}
            for pid, f in figures.items()])
    entries = [{"period": period, "partner_id": pid, "kind": kind, "amount_fen": amount, "version": version,
                "reason": reason, "created_by_id": user_id, "created_at": now}
               for pid, amount in amounts.items() if kind == "close" or amount != 0]
    if entries:
        db.session.execute(sa.insert(RebateEntry.__table__), entries)


def _plain_plans() -> None:
    """PostgreSQL: no JIT for this transaction. The month's aggregates are estimated costly (correlated
    subqueries over the scans), so the planner JIT-compiles them, which takes seconds longer than running them."""
    if on_postgres():
        db.session.execute(sa.text("SET LOCAL jit = off"))


def close_period(principal: Principal, period: str) -> PeriodClose:
    """Close a month that has ended: score every agent and distributor, place it in a tier, write its rebate.
    Closing again changes nothing: 409 `period_closed` with the existing close in `details`."""
    authorize_action(principal, "hq.write")
    check_period(period)
    if month_bounds(period)[1] > now_utc():
        raise ValidationFailed("这个月还没结束，不能结算", code="period_not_ended", details={"period": period})
    try:
        with transaction():
            close = _closed(period)
            if close is not None:
                raise _closed_conflict(close)
            scheme_row = db.session.scalar(sa.select(AssessmentScheme).where(AssessmentScheme.period == period))
            if scheme_row is None:
                raise ValidationFailed("这个月还没有考核方案，请先设置", code="scheme_missing",
                                       details={"period": period})
            scheme = scheme_dict(scheme_row)
            # The close's row first: a racing close waits here on the unique index, then fails.
            close = PeriodClose(period=period, scheme=scheme, version=1, closed_by_id=principal.user_id,
                                closed_at=now_utc())
            db.session.add(close)
            db.session.flush()
            _plain_plans()
            figures = compute(period, scheme)
            _rows(period, 1, figures, principal.user_id, "close",
                  {pid: f["rebate_fen"] for pid, f in figures.items()})
            close.partners = len(figures)
            close.rebate_fen = sum(f["rebate_fen"] for f in figures.values())
            db.session.flush()
            return close
    except IntegrityError:
        db.session.rollback()
        close = _closed(period)
        if close is None:
            raise
        raise _closed_conflict(close) from None


def latest_assessments(period: str) -> dict[int, PartnerAssessment]:
    pa = PartnerAssessment.__table__
    latest = (sa.select(pa.c.partner_id, sa.func.max(pa.c.version).label("v"))
              .where(pa.c.period == period).group_by(pa.c.partner_id).subquery())
    rows = db.session.scalars(sa.select(PartnerAssessment).join(
        latest, sa.and_(latest.c.partner_id == PartnerAssessment.partner_id, latest.c.v == PartnerAssessment.version))
        .where(PartnerAssessment.period == period))
    return {r.partner_id: r for r in rows}


def recompute_period(principal: Principal, period: str, reason: str) -> dict[str, Any]:
    """Recompute a closed month from the ledgers as they are now, with the scheme it was closed with. Each
    partner whose figures moved gets a new assessment row and an `adjust` entry of exactly the difference; the
    close's version goes up by one. Nothing moved: nothing is written."""
    authorize_action(principal, "hq.write")
    check_period(period)
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ValidationFailed("请写明重算原因（最多 200 字）", code="reason_required")
    with transaction():
        stmt = sa.select(PeriodClose).where(PeriodClose.period == period)
        if on_postgres():
            stmt = stmt.with_for_update()
        close = db.session.scalar(stmt)
        if close is None:
            raise NotFound("这个月还没有结算", code="period_not_closed", details={"period": period})
        _plain_plans()
        figures = compute(period, close.scheme)
        before = latest_assessments(period)
        changed = {pid: f for pid, f in figures.items()
                   if pid not in before or any(getattr(before[pid], k) != f[k] for k in FIGURES)}
        if not changed:
            return {"period": period, "version": close.version, "changed": 0, "difference_fen": 0}
        old = close.version
        done = db.session.execute(sa.update(PeriodClose.__table__).where(
            PeriodClose.id == close.id, PeriodClose.version == old).values(version=old + 1))
        if done.rowcount != 1:
            raise Conflict("这个月刚被别人重算过，请刷新后再试", code="period_changed", details={"period": period})
        deltas = {pid: f["rebate_fen"] - (before[pid].rebate_fen if pid in before else 0)
                  for pid, f in changed.items()}
        _rows(period, old + 1, changed, principal.user_id, "adjust", deltas, reason)
        total = sum(deltas.values())
        db.session.execute(sa.update(PeriodClose.__table__).where(PeriodClose.id == close.id).values(
            rebate_fen=PeriodClose.rebate_fen + total, recomputed_at=now_utc()))
        db.session.expire(close)
        return {"period": period, "version": old + 1, "changed": len(changed), "difference_fen": total}
