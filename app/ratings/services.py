"""Writing a rating: a store owner, once a month, for the distributor serving the store, after doing business."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from app.channel.models import Store
from app.core.clock import business_day_start, today_business
from app.core.security import Principal, authorize_store, default_store_id
from app.core.tx import transaction
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.orders import states
from app.orders.models import Order
from app.ratings.models import StoreRating


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(period: str):
    """The instants a business month (`YYYY-MM`) starts and ends (the next month's start)."""
    year, month = int(period[:4]), int(period[5:7])
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return business_day_start(start), business_day_start(end)


def did_business(store_id: int, period: str) -> bool:
    """An order placed (and not called off) or a delivery received in the month."""
    start, end = month_bounds(period)
    placed = sa.and_(Order.created_at >= start, Order.created_at < end,
                     Order.status.not_in((states.CANCELLED, states.REFUNDED)))
    delivered = sa.and_(Order.delivered_at >= start, Order.delivered_at < end)
    return db.session.scalar(sa.select(sa.exists().where(Order.store_id == store_id, sa.or_(placed, delivered))))


def _replay(user_id: int, request_id: str) -> StoreRating | None:
    return db.session.scalar(sa.select(StoreRating).where(StoreRating.user_id == user_id,
                                                          StoreRating.request_id == request_id))


def rate_distributor(principal: Principal, *, request_id: str, score: int, comment: str | None = None,
                     store_id: int | None = None) -> tuple[StoreRating, bool]:
    """The caller (an owner of the store) rates the distributor serving it for this business month; answers the
    rating and whether it is new (a repeat of the same `request_id` answers the first one)."""
    store_id = default_store_id(principal, store_id)
    authorize_store(principal, "rating.write", store_id)
    if not 1 <= score <= 5:
        raise ValidationFailed("评分要在 1 到 5 之间", code="bad_score", details={"fields": {"score": ["1 到 5"]}})
    comment = (comment or "").strip() or None
    existing = _replay(principal.user_id, request_id)
    if existing is not None:
        return existing, False
    period = period_of(today_business())
    try:
        with transaction():
            distributor_id = db.session.scalar(sa.select(Store.distributor_id).where(Store.id == store_id))
            if not did_business(store_id, period):
                raise Conflict("这个月还没有订货或收货，下单或收货后再来评价", code="no_business_this_month",
                               details={"period": period})
            if db.session.scalar(sa.select(StoreRating.id).where(StoreRating.store_id == store_id,
                                                                 StoreRating.period == period)):
                raise Conflict("这个月已经评价过了，下个月再来", code="already_rated", details={"period": period})
            rating = StoreRating(store_id=store_id, distributor_id=distributor_id, period=period, score=score,
                                 comment=comment, user_id=principal.user_id, request_id=request_id)
            db.session.add(rating)
            db.session.flush()
            return rating, True
    except sa.exc.IntegrityError:
        # Raced by itself (the same request twice): the first answer; by another owner of the store: refused.
        existing = _replay(principal.user_id, request_id)
        if existing is not None:
            return existing, False
        raise Conflict("这个月已经评价过了，下个月再来", code="already_rated", details={"period": period}) from None
