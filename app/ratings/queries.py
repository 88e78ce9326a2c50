"""Reading ratings: a distributor sees its average and the comments, never who wrote which; HQ sees all."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.channel.models import Partner, Store
from app.core.security import Principal, authorize_action
from app.extensions import db
from app.ratings.models import StoreRating


def min_count() -> int:
    return int(current_app.config["RATING_MIN_COUNT"])


def _partner_scope(principal: Principal) -> sa.ColumnElement[bool]:
    """Distributors whose ratings the caller may read: partner staff their subtree's, HQ all."""
    from app.channel.queries import visible_partners_condition

    return visible_partners_condition(principal, "partner.read")


def _summary(distributor: Partner, period: str, scores: list[int], min_n: int) -> dict[str, Any]:
    counted = len(scores) >= min_n
    return {"distributor_id": distributor.id, "distributor_code": distributor.code,
            "distributor_name": distributor.name, "period": period, "count": len(scores),
            "min_count": min_n, "counted": counted,
            "average": round(sum(scores) / len(scores), 2) if counted else None,
            "distribution": {str(s): scores.count(s) for s in range(1, 6)}}


def distributor_summary(principal: Principal, *, period: str | None = None) -> dict[str, Any]:
    """For partner staff: each distributor of their scope with ratings that month (default: this one): the count,
    the average (once there are enough to count) and the comments, without store, writer or time (which could
    name them)."""
    from app.core.clock import today_business
    from app.ratings.services import period_of

    authorize_action(principal, "partner.read")
    period = period or period_of(today_business())
    rows = db.session.execute(
        sa.select(Partner, StoreRating.score, StoreRating.comment)
        .join(StoreRating, StoreRating.distributor_id == Partner.id)
        .where(StoreRating.period == period, _partner_scope(principal))
        .order_by(Partner.id, StoreRating.score, StoreRating.comment)).all()
    min_n, out, by = min_count(), [], {}
    for partner, score, comment in rows:
        by.setdefault(partner.id, (partner, [], []))
        by[partner.id][1].append(score)
        if comment:
            by[partner.id][2].append({"score": score, "comment": comment})
    for partner, scores, comments in by.values():
        out.append({**_summary(partner, period, scores, min_n), "comments": comments})
    return {"period": period, "items": out}


def hq_ratings(principal: Principal, *, period: str | None = None, partner_id: int | None = None) -> list[dict]:
    """For HQ: per distributor and month, the summary and every rating with its store and writer."""
    authorize_action(principal, "hq.read")
    stmt = (sa.select(Partner, StoreRating, Store.code, Store.name)
            .join(StoreRating, StoreRating.distributor_id == Partner.id).join(Store, Store.id == StoreRating.store_id)
            .where(_partner_scope(principal)).order_by(StoreRating.period.desc(), Partner.id, StoreRating.id))
    if period:
        stmt = stmt.where(StoreRating.period == period)
    if partner_id is not None:
        stmt = stmt.where(Partner.path.startswith(
            sa.select(Partner.path).where(Partner.id == partner_id).scalar_subquery()))
    min_n, groups = min_count(), {}
    for partner, rating, store_code, store_name in db.session.execute(stmt):
        key = (rating.period, partner.id)
        groups.setdefault(key, (partner, rating.period, []))
        groups[key][2].append({"id": rating.id, "store_id": rating.store_id, "store_code": store_code,
                               "store_name": store_name, "score": rating.score, "comment": rating.comment,
                               "user_id": rating.user_id, "created_at": rating.created_at})
    return [{**_summary(partner, period_, [r["score"] for r in ratings], min_n), "ratings": ratings}
            for partner, period_, ratings in groups.values()]
