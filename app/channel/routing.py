"""Who serves a place: the one routing function that store creation, store orders, registrations and consumer
orders all use (CHANNEL.md §1).

`route(region_codes, industry, at=)` answers the partner whose territory assignment covers the place at `at`
(default: now), with that partner's parent agent at this moment and the assignment it holds. The rules, in order:

1. Only assignments valid at `at`: `valid_from <= at < valid_to` (an open `valid_to` never ends; ending an
   assignment moves its `valid_to`). Only agents and distributors hold territory.
2. The most specific region wins: an assignment of the district over one of its city, over one of its province.
3. Then an assignment of the place's industry wins over one for any industry ("any": no industry). An assignment
   for an industry covers only that industry; a place with no industry is covered by "any" assignments only.
4. Then an exclusive assignment wins over a shared one.
5. A tie among shared assignments goes to the one valid from the earliest time, then to the lowest id (the one
   assigned first).

`candidates(...)` answers every distinct partner that covers the place, best first by the same rules (each partner
at its best assignment), for "pass to the next candidate". Both are one SQL query over the assignments of the
place's regions (an index on `territories.region_code`); nothing is loaded into Python beyond those rows.

A `Route` with `partner_id=None` means nobody holds the place: HQ serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.channel.models import Partner, Territory
from app.core.clock import now_utc
from app.core.types import UTCDateTime
from app.extensions import db

HOLDER_KINDS = ("agent", "distributor")


@dataclass(frozen=True)
class Route:
    partner_id: int | None  # None: nobody holds it, HQ serves
    agent_id: int | None  # that partner's parent agent at this moment (None if none)
    assignment_id: int | None


NOBODY = Route(partner_id=None, agent_id=None, assignment_id=None)


def covering_codes(region_codes: Sequence[str]) -> list[str]:
    """The given codes and every region above them (a district's city and province), each once."""
    out: list[str] = []
    for code in region_codes:
        code = (code or "")[:6]
        if len(code) != 6 or not code.isdigit():
            continue
        for c in (code, code[:4] + "00", code[:2] + "0000"):
            if c not in out:
                out.append(c)
    return out


def _statement() -> sa.Select:
    """The assignments covering `:codes` for `:industry` at `:at`, best first: one statement, built once (its
    compiled form is cached), over the index on `territories.region_code`."""
    t, p = Territory.__table__, Partner.__table__
    agent = p.alias("agent")
    at = sa.bindparam("at", type_=UTCDateTime())
    specificity = sa.case((t.c.region_code.like("%0000"), 1), (t.c.region_code.like("%00"), 2), else_=3)
    industry_match = sa.case((t.c.industry.is_(None), 0), else_=1)
    exclusive = sa.case((t.c.kind == "exclusive", 1), else_=0)
    return (
        sa.select(t.c.id, t.c.partner_id, agent.c.id.label("agent_id"))
        .select_from(t.join(p, p.c.id == t.c.partner_id)
                     .outerjoin(agent, sa.and_(agent.c.id == p.c.parent_id, agent.c.kind == "agent")))
        .where(t.c.region_code.in_(sa.bindparam("codes", expanding=True)), p.c.kind.in_(HOLDER_KINDS),
               # No industry matches "any" assignments only (`industry = NULL` is never true).
               sa.or_(t.c.industry.is_(None), t.c.industry == sa.bindparam("industry", type_=sa.String())),
               t.c.valid_from <= at, sa.or_(t.c.valid_to.is_(None), t.c.valid_to > at))
        .order_by(specificity.desc(), industry_match.desc(), exclusive.desc(), t.c.valid_from, t.c.id)
    )


_ORDERED = _statement()
_BEST = _ORDERED.limit(1)


def _params(region_codes: Sequence[str], industry: str | None, at: datetime | None) -> dict | None:
    codes = covering_codes(region_codes)
    if not codes:
        return None
    return {"codes": codes, "industry": (industry or "").strip() or None, "at": at or now_utc()}


def route(region_codes: Sequence[str], industry: str | None = None, *, at: datetime | None = None) -> Route:
    """The partner serving this place at `at` (now by default), by the rules above; `NOBODY` (HQ) if none.

    `region_codes`: the place's adcodes, most specific first (district, city, province); a district alone is
    enough (its city and province are derived)."""
    params = _params(region_codes, industry, at)
    if params is None:
        return NOBODY
    row = db.session.execute(_BEST, params).first()
    return NOBODY if row is None else Route(partner_id=row.partner_id, agent_id=row.agent_id, assignment_id=row.id)


def candidates(region_codes: Sequence[str], industry: str | None = None, *,
               at: datetime | None = None) -> list[Route]:
    """Every distinct partner covering this place at `at`, best first (each at its best assignment)."""
    params = _params(region_codes, industry, at)
    if params is None:
        return []
    out: list[Route] = []
    seen: set[int] = set()
    for row in db.session.execute(_ORDERED, params):
        if row.partner_id not in seen:
            seen.add(row.partner_id)
            out.append(Route(partner_id=row.partner_id, agent_id=row.agent_id, assignment_id=row.id))
    return out


def agent_of(partner_id: int | None) -> int | None:
    """A partner's parent agent at this moment (None when it has none, e.g. it hangs under HQ)."""
    if partner_id is None:
        return None
    agent = aliased(Partner)
    return db.session.scalar(sa.select(agent.id).join(Partner, Partner.parent_id == agent.id)
                             .where(Partner.id == partner_id, agent.kind == "agent"))


def store_route(store) -> Route:
    """The route of a store's place (its district, city and province, and its industry), now."""
    return route([c for c in (store.district_code, store.city_code, store.province_code) if c], store.industry)
