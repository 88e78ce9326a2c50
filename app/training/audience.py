"""Who a course is for: partner levels, regions (a region includes its cities and districts) and roles.

A partner's places are its territories (held now); a store user's place is the store's region and its level is
the level of the distributor serving it. Empty lists mean "any".
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.accounts.models import Membership, User
from app.accounts.roles import PARTNER_ROLES, STORE_ROLES
from app.channel.models import Partner, Store, Territory
from app.core.clock import now_utc
from app.extensions import db
from app.training.models import Course

LEARNER_ROLES = (*PARTNER_ROLES, *STORE_ROLES)


@dataclass(frozen=True)
class Seat:
    """One role a user holds, where it sits: the partner it counts for, that partner's level and the places."""

    user_id: int
    role: str
    partner_id: int | None
    level: str | None
    regions: tuple[str, ...]


def region_covers(audience: str, code: str) -> bool:
    audience = audience[:6]
    if audience.endswith("0000"):
        return code[:2] == audience[:2]
    if audience.endswith("00"):
        return code[:4] == audience[:4]
    return code[:6] == audience


def seat_in(course: Course, seat: Seat) -> bool:
    roles = course.audience_roles or LEARNER_ROLES
    if seat.role not in roles:
        return False
    if course.audience_levels and seat.level not in course.audience_levels:
        return False
    return not course.audience_regions or any(region_covers(a, c) for a in course.audience_regions
                                              for c in seat.regions)


def _partner_regions(partner_ids: set[int]) -> dict[int, tuple[str, ...]]:
    if not partner_ids:
        return {}
    now = now_utc()
    out: dict[int, list[str]] = {}
    for pid, code in db.session.execute(sa.select(Territory.partner_id, Territory.region_code).where(
            Territory.partner_id.in_(partner_ids), Territory.valid_from <= now,
            sa.or_(Territory.valid_to.is_(None), Territory.valid_to > now))):
        out.setdefault(pid, []).append(code)
    return {pid: tuple(codes) for pid, codes in out.items()}


def seats(*, user_ids: set[int] | None = None, partner_ids: set[int] | None = None,
          partner_only: bool = False) -> list[Seat]:
    """The learner seats of these users (or of these partners' staff); `partner_only`: partner staff only."""
    stmt = (sa.select(Membership.user_id, Membership.role, Membership.partner_id, Membership.store_id)
            .join(User, User.id == Membership.user_id)
            .where(User.is_active.is_(True),
                   Membership.role.in_(PARTNER_ROLES if partner_only else LEARNER_ROLES)))
    if user_ids is not None:
        stmt = stmt.where(Membership.user_id.in_(user_ids))
    if partner_ids is not None:
        stmt = stmt.where(Membership.partner_id.in_(partner_ids))
    rows = db.session.execute(stmt).all()
    store_ids = {r.store_id for r in rows if r.store_id is not None}
    place = sa.func.coalesce(Store.district_code, Store.city_code).label("region_code")
    stores = {s.id: (s.distributor_id, s.region_code) for s in db.session.execute(
        sa.select(Store.id, Store.distributor_id, place).where(Store.id.in_(store_ids)))} if store_ids else {}
    pids = {r.partner_id for r in rows if r.partner_id is not None} | {d for d, _ in stores.values() if d}
    levels = dict(db.session.execute(sa.select(Partner.id, Partner.level).where(Partner.id.in_(pids))).all()) \
        if pids else {}
    regions = _partner_regions(pids)
    out = []
    for r in rows:
        if r.role in STORE_ROLES and r.store_id in stores:
            dist, region = stores[r.store_id]
            out.append(Seat(r.user_id, r.role, None, levels.get(dist), (region,) if region else ()))
        elif r.role in PARTNER_ROLES and r.partner_id is not None:
            out.append(Seat(r.user_id, r.role, r.partner_id, levels.get(r.partner_id),
                            regions.get(r.partner_id, ())))
    return out


def user_in(course: Course, user_seats: list[Seat]) -> bool:
    return any(seat_in(course, s) for s in user_seats)
