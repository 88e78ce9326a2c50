"""Targets of a SKU group (the group's members only) and yearly targets split by a template (CHANNEL.md §5)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from app.accounts.roles import HQ_ADMIN
from app.analytics import targets
from app.analytics.target_models import PartnerTarget
from app.catalog.models import Sku
from app.channel.models import Partner
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.orders.models import Order, OrderLine
from tests.helpers import assert_db_unchanged, assert_error
from tests.scans.helpers import body, codes_in

SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]
PERIOD = now_utc().astimezone(targets.BUSINESS_TZ).strftime("%Y-%m")


def _partner(code: str) -> Partner:
    return db.session.scalar(sa.select(Partner).where(Partner.code == code))


def _shares(draw_parts: list[int]) -> list[int]:
    """Twelve shares totalling 10,000 from eleven cut points."""
    cuts = sorted(draw_parts)
    edges = [0, *cuts, 10000]
    return [edges[i + 1] - edges[i] for i in range(12)]


@settings(max_examples=300, deadline=None)
@given(value=st.integers(min_value=0, max_value=10**15),
       cuts=st.lists(st.integers(min_value=0, max_value=10000), min_size=11, max_size=11))
def test_a_split_totals_the_yearly_value_and_each_month_is_within_one_of_its_share(value, cuts):
    shares = _shares(cuts)
    parts = targets.split_by_shares(value, shares)
    assert sum(parts) == value
    for part, share in zip(parts, shares, strict=True):
        assert part >= 0
        assert abs(part * 10000 - value * share) < 10000  # off its exact share by less than one unit


def test_the_remainder_goes_to_the_largest_remainders_earlier_month_first():
    assert targets.split_by_shares(10, [833] * 11 + [837]) == [1] * 9 + [0, 0, 1]  # 8370 > 8330
    assert targets.split_by_shares(100, [1000] * 10 + [0, 0]) == [10] * 10 + [0, 0]
    assert targets.split_by_shares(7, [5000, 5000] + [0] * 10) == [4, 3] + [0] * 10


def _group(client, admin, sku_ids: list[int], code: str = "GX") -> int:
    resp = client.post("/api/hq/v1/sku-groups", headers=admin,
                       json={"code": code, "name": "测试组", "sku_ids": sku_ids})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def _sell(client, headers, serial: str) -> None:
    resp = client.post("/api/mp/v1/scans", json=body(serial, "sell"), headers=headers)
    assert resp.status_code in (200, 201) and resp.get_json()["status"] == "accepted", resp.get_json()


def test_a_group_target_counts_its_members_only(client, admin, owner):
    on_shelf = codes_in("S1", n=50)
    skus = sorted({c.sku_id for c in on_shelf})
    assert len(skus) >= 2, "the demo has two SKUs on S1's shelf"
    member, other = skus[0], skus[1]
    gid = _group(client, admin, [member])
    d1 = _partner("D1").id
    before_group = targets.actuals([d1], PERIOD, gid)[(d1, "sell_through_units")]
    before_all = targets.actuals([d1], PERIOD)[(d1, "sell_through_units")]
    _sell(client, owner, next(c.serial for c in on_shelf if c.sku_id == member))
    _sell(client, owner, next(c.serial for c in on_shelf if c.sku_id == other))
    db.session.remove()
    assert targets.actuals([d1], PERIOD, gid)[(d1, "sell_through_units")] == before_group + 1
    assert targets.actuals([d1], PERIOD)[(d1, "sell_through_units")] == before_all + 2

    for metric, value in (("sell_through_units", 5), ("sell_in_fen", 100)):
        resp = client.post("/api/hq/v1/targets", headers=admin,
                           json={"partner_id": d1, "period": PERIOD, "metric": metric, "value": value,
                                 "sku_group_id": gid})
        assert resp.status_code == 201, resp.get_json()
    # The target of all SKUs for the same month and metric is another target, beside the group's.
    resp = client.post("/api/hq/v1/targets", headers=admin,
                       json={"partner_id": d1, "period": PERIOD, "metric": "sell_through_units", "value": 9})
    assert resp.status_code == 201
    rows = client.get(f"/api/hq/v1/targets?period={PERIOD}&partner_id={d1}", headers=admin).get_json()["items"]
    by = {(r["metric"], r["sku_group_id"]): r for r in rows}
    assert by[("sell_through_units", gid)]["actual"] == before_group + 1
    assert by[("sell_through_units", gid)]["sku_group_name"] == "测试组"
    assert by[("sell_through_units", None)]["actual"] == before_all + 2
    assert by[("sell_through_units", None)]["target"] == 9


def test_a_groups_sell_in_is_its_lines_share_of_each_paid_order(client, admin, demo):
    d1 = _partner("D1").id
    sku_ids = list(db.session.scalars(sa.select(Sku.id).order_by(Sku.id)))
    gid = _group(client, admin, sku_ids[:1])
    start, end = targets.month_bounds(PERIOD)
    expected = 0
    for order in db.session.scalars(sa.select(Order).where(Order.routed_partner_id == d1, Order.paid_at >= start,
                                                           Order.paid_at < end, Order.paid_fen > 0)):
        lines = list(db.session.scalars(sa.select(OrderLine).where(OrderLine.order_id == order.id)))
        group = sum(line.amount_fen for line in lines if line.sku_id == sku_ids[0])
        total = sum(line.amount_fen for line in lines)
        if group and total:
            expected += (order.paid_fen - order.refunded_fen) * group // total
    assert targets.actuals([d1], PERIOD, gid)[(d1, "sell_in_fen")] == expected
    assert targets.actuals([d1], PERIOD, gid)[(d1, "sell_in_fen")] <= targets.actuals([d1], PERIOD)[(d1, "sell_in_fen")]


def test_two_live_rows_for_one_group_target_are_refused_by_the_index(client, admin, demo):
    d1 = _partner("D1").id
    gid = _group(client, admin, list(db.session.scalars(sa.select(Sku.id)))[:1])
    targets.set_target(SYSTEM, partner_id=d1, period="2031-04", metric="sell_in_fen", value=3, sku_group_id=gid)
    targets.set_target(SYSTEM, partner_id=d1, period="2031-04", metric="sell_in_fen", value=3)  # all SKUs: allowed
    with pytest.raises(sa.exc.IntegrityError), transaction():
        db.session.add(PartnerTarget(partner_id=d1, period="2031-04", metric="sell_in_fen", value=4, version=2,
                                     sku_group_id=gid))
    db.session.rollback()
    with pytest.raises(sa.exc.IntegrityError), transaction():
        db.session.add(PartnerTarget(partner_id=d1, period="2031-04", metric="sell_in_fen", value=4, version=2))
    db.session.rollback()


def test_a_yearly_target_sets_twelve_months_that_total_it_and_a_later_template_rewrites_nothing(client, admin):
    d1 = _partner("D1").id
    resp = client.post("/api/hq/v1/target-templates", headers=admin,
                       json={"name": "旺季在年底", "shares_bp": [700] * 10 + [1500, 1500]})
    assert resp.status_code == 201, resp.get_json()
    template = resp.get_json()["id"]
    resp = client.post("/api/hq/v1/targets/yearly", headers=admin,
                       json={"partner_id": d1, "year": 2031, "metric": "sell_through_units", "value": 1001,
                             "template_id": template})
    assert resp.status_code == 201, resp.get_json()
    months = resp.get_json()["items"]
    assert [m["period"] for m in months] == [f"2031-{m:02d}" for m in range(1, 13)]
    assert sum(m["value"] for m in months) == 1001
    assert [m["value"] for m in months] == targets.split_by_shares(1001, [700] * 10 + [1500, 1500])

    other = client.post("/api/hq/v1/target-templates", headers=admin,
                        json={"name": "平均", "shares_bp": [834] * 4 + [833] * 8}).get_json()["id"]
    stored = {t.period: t.value for t in db.session.scalars(sa.select(PartnerTarget).where(
        PartnerTarget.partner_id == d1, PartnerTarget.period.like("2031-%"), PartnerTarget.superseded_at.is_(None)))}
    assert sum(stored.values()) == 1001 and other
    # The same split again changes nothing: no new version.
    again = client.post("/api/hq/v1/targets/yearly", headers=admin,
                        json={"partner_id": d1, "year": 2031, "metric": "sell_through_units", "value": 1001,
                              "template_id": template}).get_json()["items"]
    assert [m["version"] for m in again] == [m["version"] for m in months]


@pytest.mark.parametrize("payload, code", [
    ({"name": "差一点", "shares_bp": [833] * 12}, "template_not_100"),
    ({"name": "超了", "shares_bp": [900] * 12}, "template_not_100"),
    ({"name": "十一个月", "shares_bp": [1000] * 10 + [0]}, None),
    ({"name": "负数", "shares_bp": [-100, 10100] + [0] * 10}, None),
])
def test_a_template_must_total_exactly_one_hundred_percent(client, admin, payload, code):
    with assert_db_unchanged("target_templates"):
        resp = client.post("/api/hq/v1/target-templates", headers=admin, json=payload)
    err = assert_error(resp, 422, code)
    assert err["message"]


def test_bad_yearly_and_group_input_changes_nothing(client, admin):
    d1 = _partner("D1").id
    with assert_db_unchanged("partner_targets", "sku_groups"):
        assert_error(client.post("/api/hq/v1/targets/yearly", headers=admin, json={
            "partner_id": d1, "year": 2031, "metric": "new_stores", "value": 5, "template_id": 999999}),
            404, "template_not_found")
        assert_error(client.post("/api/hq/v1/targets", headers=admin, json={
            "partner_id": d1, "period": "2031-01", "metric": "sell_in_fen", "value": 5, "sku_group_id": 999999}),
            404, "sku_group_not_found")
        assert_error(client.post("/api/hq/v1/sku-groups", headers=admin, json={
            "code": "BAD", "name": "坏组", "sku_ids": [999999]}), 422, "unknown_skus")
