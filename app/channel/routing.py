"""Who serves a place: the one answer orders, stores, registrations and consumer orders ask.

Over today's `territories` (no kinds, no validity dates yet): a territory covers a code when the code lies inside
its region. Among the territories that cover one of the codes, the best is the most specific region (district over
city over province), then one of the caller's industry over one for any industry, then a distributor over an agent,
then the one assigned first (lowest id). Each partner appears once, at its best territory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.channel.models import Partner, Territory
from app.core.security import region_covers
from app.extensions import db


@dataclass(frozen=True)
class Route:
    partner_id: int | None      # None: nobody holds it, HQ serves
    agent_id: int | None        # that partner's parent agent at this moment
    assignment_id: int | None


HQ_ROUTE = Route(partner_id=None, agent_id=None, assignment_id=None)


def _specificity(region_code: str) -> int:
    if region_code.endswith("0000"):
        return 1
    return 2 if region_code.endswith("00") else 3


def candidates(region_codes: Sequence[str], industry: str | None = None, *,
               at: datetime | None = None) -> list[Route]:
    """Every partner whose territory covers one of these codes (most specific first), best first."""
    del at  # today's territories hold no validity dates: every one is in force
    codes = [c[:6] for c in region_codes if c]
    if not codes:
        return []
    parent = aliased(Partner)
    rows = db.session.execute(
        sa.select(Territory.id, Territory.region_code, Territory.industry, Partner.id, Partner.kind, parent.id,
                  parent.kind)
        .join(Partner, Partner.id == Territory.partner_id)
        .outerjoin(parent, parent.id == Partner.parent_id)
        .where(Partner.kind.in_(("distributor", "agent")),
               sa.or_(*(Territory.region_code.in_(sorted({c[:2] + "0000", c[:4] + "00", c})) for c in codes)))
    ).all()
    ranked: dict[int, tuple[tuple, Route]] = {}
    for territory_id, region_code, t_industry, partner_id, kind, parent_id, parent_kind in rows:
        if t_industry and t_industry != industry:
            continue
        if not any(region_covers(region_code, code) for code in codes):
            continue
        key = (-_specificity(region_code), 0 if t_industry else 1, 0 if kind == "distributor" else 1, territory_id)
        agent_id = parent_id if parent_kind == "agent" else None
        route = Route(partner_id=partner_id, agent_id=agent_id, assignment_id=territory_id)
        if partner_id not in ranked or key < ranked[partner_id][0]:
            ranked[partner_id] = (key, route)
    return [route for _, route in sorted(ranked.values(), key=lambda kr: kr[0])]


def route(region_codes: Sequence[str], industry: str | None = None, *, at: datetime | None = None) -> Route:
    """The partner serving these codes (most specific first), or HQ's route when nobody holds the place."""
    found = candidates(region_codes, industry, at=at)
    return found[0] if found else HQ_ROUTE
