"""The allocation math: enough stock, scarcity (equal days of cover), zero sales, a new city, case packs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.allocation import SkuInput, Target, allocate, allocate_sku, smoothed_rate, water_level
from app.analytics.production import suggest_one


def by_wh(allocs):
    return {a.warehouse_id: a for a in allocs}


def test_smoothed_rate_follows_recent_days_and_handles_empty():
    assert smoothed_rate([]) == 0
    assert smoothed_rate([5] * 28) == 5
    rising = smoothed_rate([2] * 21 + [10] * 7)
    assert 7 < rising < 10  # a week of promotion shows, yet one week does not erase history entirely
    assert smoothed_rate([0] * 28) == 0


def test_enough_central_stock_tops_everyone_up_to_target_in_cases():
    targets = [Target(1, daily_rate=10, on_hand=50), Target(2, daily_rate=4, on_hand=100, in_transit=0)]
    out = by_wh(allocate_sku(targets, central_available=1000, target_cover_days=14, case_pack=6))
    assert out[1].quantity == 90  # need 140 - 50 = 90 = 15 cases
    assert out[2].quantity == 0  # 100 units already cover 25 days
    assert out[1].cover_after == 14


def test_rounding_up_to_case_packs():
    out = allocate_sku([Target(1, daily_rate=1, on_hand=0)], central_available=100, target_cover_days=7, case_pack=4)
    assert out[0].quantity == 8  # 7 needed, whole cases


def test_in_transit_counts_as_stock():
    out = allocate_sku([Target(1, daily_rate=10, on_hand=20, in_transit=100)], central_available=500,
                       target_cover_days=14, case_pack=1)
    assert out[0].quantity == 20


def test_scarcity_shares_for_equal_days_of_cover():
    targets = [Target(1, daily_rate=10, on_hand=0), Target(2, daily_rate=5, on_hand=50),
               Target(3, daily_rate=1, on_hand=0)]
    out = by_wh(allocate_sku(targets, central_available=160, target_cover_days=30, case_pack=1))
    assert sum(a.quantity for a in out.values()) == 160
    covers = [a.cover_after for a in out.values()]
    assert max(covers) - min(covers) < 0.5  # (0+q1)/10 = (50+q2)/5 = q3/1 = 13.1 days
    assert abs(water_level(targets, 160) - 210 / 16) < 1e-9


def test_scarcity_leaves_well_stocked_warehouse_alone():
    targets = [Target(1, daily_rate=10, on_hand=0), Target(2, daily_rate=10, on_hand=500)]
    out = by_wh(allocate_sku(targets, central_available=60, target_cover_days=30, case_pack=6))
    assert out[1].quantity == 60 and out[2].quantity == 0


def test_scarcity_never_ships_a_partial_case():
    targets = [Target(1, daily_rate=3, on_hand=0), Target(2, daily_rate=3, on_hand=0)]
    out = allocate_sku(targets, central_available=25, target_cover_days=30, case_pack=6)
    assert all(a.quantity % 6 == 0 for a in out)
    assert sum(a.quantity for a in out) == 24
    assert {a.quantity for a in out} == {12}


def test_zero_sales_gets_nothing():
    out = allocate_sku([Target(1, daily_rate=0, on_hand=0)], central_available=100, target_cover_days=30)
    assert out[0].quantity == 0 and out[0].cover_after is None


def test_a_new_city_with_recent_sales_and_no_stock_is_served_first():
    new_rate = smoothed_rate([0] * 21 + [6] * 7)  # opened a week ago
    targets = [Target(1, daily_rate=5, on_hand=100), Target(2, daily_rate=new_rate, on_hand=0)]
    out = by_wh(allocate_sku(targets, central_available=40, target_cover_days=30, case_pack=1))
    assert out[2].quantity == 40 and out[1].quantity == 0


def test_empty_central_sends_nothing():
    out = allocate_sku([Target(1, daily_rate=5, on_hand=0)], central_available=0, target_cover_days=30)
    assert out[0].quantity == 0


targets_st = st.lists(st.builds(Target, warehouse_id=st.integers(1, 10_000),
                                daily_rate=st.one_of(st.just(0.0), st.floats(0.01, 500)),
                                on_hand=st.integers(0, 5000), in_transit=st.integers(0, 500)),
                      min_size=0, max_size=12, unique_by=lambda t: t.warehouse_id)


@settings(max_examples=300, deadline=None)
@given(targets=targets_st, central=st.integers(-5, 20_000), days=st.integers(1, 90), case=st.integers(1, 24))
def test_property_never_more_than_central_never_negative(targets, central, days, case):
    out = allocate_sku(targets, central_available=central, target_cover_days=days, case_pack=case)
    assert len(out) == len(targets)
    assert all(a.quantity >= 0 for a in out)
    assert sum(a.quantity for a in out) <= max(central, 0)
    assert all(a.quantity % case == 0 for a in out)
    rates = {t.warehouse_id: t.daily_rate for t in targets}
    assert all(a.quantity == 0 for a in out if rates[a.warehouse_id] == 0)
    assert all(a.quantity <= a.need for a in out)


def test_plan_of_many_skus_and_cities_keeps_the_rules():
    # Speed is measured by scripts/bench/allocation.py (500 SKUs x 300 cities), not here.
    skus = [SkuInput(sku_id=s, case_pack=6, central_available=2_000,
                     targets=[Target(c, daily_rate=(s * c) % 17 / 3, on_hand=(s + c) % 40) for c in range(60)])
            for s in range(50)]
    out = allocate(skus, target_cover_days=21)
    for s in skus:
        sent = [a.quantity for a in out[s.sku_id]]
        assert sum(sent) <= s.central_available
        assert all(q >= 0 and q % s.case_pack == 0 for q in sent)


def test_production_suggestion_explains_itself():
    s = suggest_one(sku_id=1, sku_name="牛奶", unit="提", case_pack=6, daily_rate=10, horizon_days=30, safety_days=7,
                    central=100, sub_warehouses=50, in_transit=20)
    assert s.forecast_units == 300 and s.safety_units == 70 and s.network_units == 170
    assert s.suggested_units == 204  # 200 rounded up to whole cases of 6
    assert "建议生产 204 提（34 箱）（按整箱取整，每箱 6 提）" in s.explanation
    assert "日均 10.0 提" in s.explanation and "箱箱" not in s.explanation
    none = suggest_one(sku_id=1, sku_name="牛奶", unit="箱", case_pack=6, daily_rate=0, horizon_days=30,
                       safety_days=7, central=10, sub_warehouses=0, in_transit=0)
    assert none.suggested_units == 0 and "暂不需要" in none.explanation
