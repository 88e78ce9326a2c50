"""Territory assignments (CHANNEL.md §1): assigning a region to a partner, exclusively or shared, for a period, and
ending an assignment. Who serves a place is `app.channel.routing`.

Two exclusive assignments never overlap: same region or one inside the other, same industry or either "any"
(none), overlapping periods. The check is not a read followed by a write that a second HQ user could slip between:
before reading, the use case takes a lock the database really holds until it commits, on PostgreSQL an advisory
transaction lock keyed on the region's province (any two overlapping regions share their province), on SQLite the
database's write lock (`transaction()` begins IMMEDIATE). So of two overlapping exclusive assignments made at once,
exactly one is written; the other is refused with 409 `territory_taken` naming the holder and until when.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.channel.models import TERRITORY_KINDS, Partner, Territory
from app.channel.routing import HOLDER_KINDS
from app.core import regions
from app.core.clock import BUSINESS_TZ, now_utc
from app.core.db import on_postgres
from app.core.security import Principal, authorize_action, authorize_region
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db

# The first key of the advisory locks this module takes (the second is the province: 11..82).
_LOCK_KEY = 0x7E11


def assign_territory(principal: Principal, *, partner_id: int, region_code: str, kind: str,
                     industry: str | None = None, valid_from: datetime | None = None,
                     valid_to: datetime | None = None) -> Territory:
    """Assign a region (and optionally an industry) to an agent or distributor, exclusive or shared, from
    `valid_from` (now by default) until `valid_to` (open by default). HQ staff bound to a region assign inside it."""
    authorize_action(principal, "hq.write")
    region_code = _check_region(region_code)
    authorize_region(principal, "hq.write", region_code)
    with transaction():
        partner = db.session.get(Partner, partner_id)
        if partner is None:
            raise NotFound("找不到这个伙伴", code="partner_not_found", details={"partner_id": partner_id})
        return add_assignment(partner, region_code=region_code, industry=industry, kind=kind,
                              valid_from=valid_from, valid_to=valid_to, created_by_id=principal.user_id)


def add_assignment(partner: Partner, *, region_code: str, kind: str = "shared", industry: str | None = None,
                   valid_from: datetime | None = None, valid_to: datetime | None = None,
                   created_by_id: int | None = None) -> Territory:
    """The assignment, checked and written in the caller's transaction (which this locks: see the module)."""
    region_code = _check_region(region_code)
    if kind not in TERRITORY_KINDS:
        raise ValidationFailed("区域类型只能是独家（exclusive）或共享（shared）", code="invalid_territory_kind",
                               details={"kind": kind})
    if partner.kind not in HOLDER_KINDS:
        raise ValidationFailed("只有区域代理和分销商可以分配区域", code="territory_partner_kind",
                               details={"partner_id": partner.id, "kind": partner.kind})
    industry = (industry or "").strip() or None
    now = now_utc()
    valid_from = valid_from or now
    if valid_to is not None and valid_to <= valid_from:
        raise ValidationFailed("结束时间要晚于开始时间", code="territory_ends_before_start",
                               details={"valid_from": valid_from.isoformat(), "valid_to": valid_to.isoformat()})
    _lock_province(region_code)
    clash = _overlapping(region_code, industry, valid_from, valid_to, kind=kind, partner_id=partner.id)
    if clash is not None:
        _refuse(clash, kind)
    territory = Territory(partner_id=partner.id, region_code=region_code, industry=industry, kind=kind,
                          valid_from=valid_from, valid_to=valid_to, created_by_id=created_by_id, created_at=now)
    db.session.add(territory)
    db.session.flush()
    return territory


def end_territory(principal: Principal, assignment_id: int, *, reason: str | None = None,
                  at: datetime | None = None) -> Territory:
    """End an assignment at `at` (now by default): it no longer routes anything from then on. What was written
    while it held (orders, sells, commission) keeps its attribution. Ending one that has ended is refused."""
    authorize_action(principal, "hq.write")
    with transaction():
        territory = db.session.execute(sa.select(Territory).where(Territory.id == assignment_id)
                                       .with_for_update()).scalar()
        if territory is None:
            raise NotFound("找不到这条区域分配", code="territory_not_found")
        authorize_region(principal, "hq.write", territory.region_code)
        now = now_utc()
        at = at or now
        if territory.ended_at is not None:
            raise Conflict("这条区域分配已经结束", code="territory_ended",
                           details={"ended_at": territory.ended_at.isoformat()})
        if territory.valid_to is not None and territory.valid_to <= at:
            raise Conflict(f"这条区域分配在 {_day(territory.valid_to)} 已经到期", code="territory_ended",
                           details={"valid_to": territory.valid_to.isoformat()})
        # Ending before it starts cancels it: its period becomes empty.
        territory.valid_to = max(at, territory.valid_from)
        territory.ended_at = now
        territory.ended_by_id = principal.user_id
        territory.end_reason = (reason or "").strip() or None
        db.session.flush()
        return territory


def _check_region(region_code: str) -> str:
    if not regions.is_valid(region_code):
        raise ValidationFailed("找不到这个行政区划代码", code="unknown_region", details={"region_code": region_code})
    return region_code[:6]


def _lock_province(region_code: str) -> None:
    """Serialize assignments in the region's province until this transaction ends (see the module)."""
    if on_postgres():
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:k, :p)"),
                           {"k": _LOCK_KEY, "p": int(region_code[:2])})
    # SQLite: the transaction holds the database's write lock from its start (BEGIN IMMEDIATE).


def overlap_condition(region_code: str, industry: str | None, valid_from: datetime,
                      valid_to: datetime | None) -> sa.ColumnElement[bool]:
    """Assignments overlapping this one: same region or one inside the other, same industry or either "any",
    overlapping periods (`valid_from` inclusive, `valid_to` exclusive)."""
    t = Territory
    prefix = region_code[:2] if region_code.endswith("0000") else (
        region_code[:4] if region_code.endswith("00") else region_code)
    above = {region_code[:4] + "00", region_code[:2] + "0000"} - {region_code}
    clauses = [
        sa.or_(t.region_code.startswith(prefix), t.region_code.in_(sorted(above))),
        sa.or_(t.valid_to.is_(None), t.valid_to > valid_from),
    ]
    if industry is not None:
        clauses.append(sa.or_(t.industry.is_(None), t.industry == industry))
    if valid_to is not None:
        clauses.append(t.valid_from < valid_to)
    return sa.and_(*clauses)


def _overlapping(region_code: str, industry: str | None, valid_from: datetime, valid_to: datetime | None, *,
                 kind: str, partner_id: int):
    """The first assignment this one may not overlap: another exclusive one (for an exclusive assignment), or
    the same partner's own for the very same region and industry (for a shared one: no doubles)."""
    t = Territory
    cond = overlap_condition(region_code, industry, valid_from, valid_to)
    if kind == "shared":
        # A shared assignment conflicts with nothing but the same partner's same assignment.
        cond = sa.and_(cond, t.partner_id == partner_id, t.region_code == region_code,
                       t.industry.is_(None) if industry is None else t.industry == industry)
    else:
        cond = sa.and_(cond, t.kind == "exclusive")
    return db.session.execute(
        sa.select(t.id, t.partner_id, t.region_code, t.kind, t.valid_to, Partner.name)
        .join(Partner, Partner.id == t.partner_id).where(cond).order_by(t.valid_from, t.id).limit(1)).first()


def _day(at: datetime) -> str:
    return at.astimezone(BUSINESS_TZ).date().isoformat()


def _refuse(clash, kind: str) -> None:
    until = f"至 {_day(clash.valid_to)}" if clash.valid_to is not None else "长期有效"
    place = regions.region_name(clash.region_code)
    details = {"held_by": clash.name, "held_by_partner_id": clash.partner_id,
               "until": clash.valid_to.isoformat() if clash.valid_to is not None else None,
               "assignment_id": clash.id, "region_code": clash.region_code}
    if kind == "exclusive":
        raise Conflict(f"{place}已由{clash.name}独家持有（{until}），不能再独家分配", code="territory_taken",
                       details=details)
    raise Conflict(f"{clash.name}在{place}已有这项区域分配（{until}）", code="territory_already_assigned",
                   details=details)
