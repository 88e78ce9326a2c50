"""Who serves a place (`app.channel.routing`), over the demo's territories."""

from __future__ import annotations

import sqlalchemy as sa

from app.channel import routing
from app.channel import services as channel
from app.channel.models import Partner, Territory
from app.demo.seed import SYSTEM
from app.extensions import db


def _partner(code: str) -> Partner:
    return db.session.scalar(sa.select(Partner).where(Partner.code == code))


def test_the_most_specific_territory_wins_and_names_the_agent(demo):
    d1, a1 = _partner("D1"), _partner("A1")
    found = routing.route(["330106", "330100", "330000"])
    assert found.partner_id == d1.id and found.agent_id == a1.id
    assert found.assignment_id == db.session.scalar(sa.select(Territory.id).where(Territory.partner_id == d1.id))
    # The agent's province territory is the next candidate; a city territory elsewhere is none.
    assert [c.partner_id for c in routing.candidates(["330106", "330100", "330000"])] == [d1.id, a1.id]


def test_a_distributor_under_hq_has_no_agent(demo):
    d5 = _partner("D5")
    assert routing.route(["510107", "510100", "510000"]) == routing.Route(
        partner_id=d5.id, agent_id=None, assignment_id=d5.territories[0].id)


def test_nobody_holds_the_place_hq_serves(demo):
    assert routing.route(["110105", "110100", "110000"]) == routing.NOBODY
    assert routing.candidates([]) == []


def test_a_district_beats_a_city_and_an_industry_territory_needs_the_industry(demo):
    a1 = _partner("A1")
    district = channel.create_partner(SYSTEM, code="DX", name="西湖区专营", kind="distributor", parent_id=a1.id,
                                      territories=[{"region_code": "330106", "industry": "pharmacy"}])
    codes = ["330106", "330100", "330000"]
    assert routing.route(codes, "pharmacy").partner_id == district.id
    assert routing.route(codes).partner_id == _partner("D1").id
    assert routing.route(codes, "convenience").partner_id == _partner("D1").id
