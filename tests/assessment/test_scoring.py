"""The tier and rebate arithmetic (app.assessment.scoring): the scheme's checks and properties that hold for any
scheme and any inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.assessment import scoring
from app.errors import ValidationFailed

WEIGHTS = {"attainment": 50, "rating": 30, "training": 20, "attainment_cap_bp": 12000, "diversion_penalty": 5}
TIERS = [{"name": "铜", "min_score": 0, "rebate_bp": 0}, {"name": "银", "min_score": 60, "rebate_bp": 100},
         {"name": "金", "min_score": 90, "rebate_bp": 250}]


@st.composite
def schemes(draw):
    a = draw(st.integers(0, 100))
    r = draw(st.integers(0, 100 - a))
    weights = {"attainment": a, "rating": r, "training": 100 - a - r,
               "attainment_cap_bp": draw(st.integers(10000, 30000)), "diversion_penalty": draw(st.integers(0, 100))}
    steps = draw(st.lists(st.integers(1, 60), max_size=8))
    mins, total = [0], 0
    for s in steps:
        total += s
        mins.append(total)
    tiers = [{"name": f"T{i}", "min_score": m, "rebate_bp": draw(st.integers(0, 10000))} for i, m in enumerate(mins)]
    return scoring.check_scheme(weights, tiers, "sell_in")


inputs = st.builds(
    scoring.Inputs,
    targets=st.lists(st.tuples(st.sampled_from(["sell_in_fen", "sell_through_units"]), st.integers(0, 10**9),
                               st.integers(-10**6, 10**10)), max_size=4),
    rating_count=st.integers(0, 50), rating_sum=st.just(0), rating_min=st.integers(1, 5),
    training=st.one_of(st.none(), st.tuples(st.integers(0, 30), st.integers(0, 30))),
    alerts=st.integers(0, 30), sell_in_fen=st.integers(-10**9, 10**13))


@settings(max_examples=300, deadline=None)
@given(scheme=schemes(), score=st.integers(0, 200_000))
def test_every_score_has_exactly_one_tier_and_the_tier_rises_with_the_score(scheme, score):
    tiers = scheme["tiers"]
    i = scoring.tier_of(score, tiers)
    assert tiers[i]["min_score"] * 100 <= score
    assert i == len(tiers) - 1 or score < tiers[i + 1]["min_score"] * 100
    assert scoring.tier_of(score + 1, tiers) >= i


@settings(max_examples=300, deadline=None)
@given(scheme=schemes(), partners=st.lists(inputs, min_size=1, max_size=12), data=st.data())
def test_rebates_are_never_negative_and_the_sum_is_the_sum_of_the_rounded_parts(scheme, partners, data):
    results = []
    for p in partners:
        p = scoring.Inputs(**{**p.__dict__, "rating_sum": data.draw(st.integers(p.rating_count,
                                                                                 5 * p.rating_count))})
        out = scoring.assess(p, scheme)
        assert out["rebate_fen"] >= 0 and out["score_x100"] >= 0
        assert 0 <= out["parts"]["rating_bp"] <= 10000 and 0 <= out["parts"]["training_bp"] <= 10000
        assert 0 <= out["parts"]["attainment_bp"] <= scheme["weights"]["attainment_cap_bp"]
        assert out["tier_index"] == scoring.tier_of(out["score_x100"], scheme["tiers"])
        # Half up: within half a fen of the exact figure, and never below it by half a fen or more.
        exact2 = out["base_fen"] * out["rebate_bp"] * 2
        assert out["rebate_fen"] * 20000 - exact2 in range(-10000 + 1, 10000 + 1)
        results.append(out)
    assert sum(r["rebate_fen"] for r in results) == sum(
        scoring.rebate_fen(r["base_fen"], r["rebate_bp"]) for r in results)


@settings(max_examples=200, deadline=None)
@given(scheme=schemes(), p=inputs, more=st.integers(1, 10))
def test_more_alerts_never_raise_the_score(scheme, p, more):
    fewer = scoring.assess(p, scheme)
    worse = scoring.assess(scoring.Inputs(**{**p.__dict__, "alerts": p.alerts + more}), scheme)
    assert worse["score_x100"] <= fewer["score_x100"] and worse["tier_index"] <= fewer["tier_index"]


def test_rounding_is_half_up_per_partner():
    assert scoring.rebate_fen(5, 1000) == 1      # 0.5 fen → 1
    assert scoring.rebate_fen(4, 1000) == 0      # 0.4 fen → 0
    assert scoring.rebate_fen(15, 1000) == 2     # 1.5 → 2
    assert scoring.rebate_fen(-500, 1000) == 0   # refunds beyond sales: no rebate


def test_the_parts_follow_the_stated_rules():
    s = scoring.check_scheme(WEIGHTS, TIERS, "sell_in")
    full = scoring.Inputs(targets=[], rating_count=1, rating_sum=1, rating_min=3, training=None, alerts=0,
                          sell_in_fen=100_000)
    out = scoring.assess(full, s)   # no target, too few ratings, no required training: all fully met
    assert out["parts"]["attainment_bp"] == out["parts"]["rating_bp"] == out["parts"]["training_bp"] == 10000
    assert out["score_x100"] == 10000 and out["tier_name"] == "金" and out["rebate_fen"] == 2500
    capped = scoring.Inputs(targets=[("sell_in_fen", 100, 500), ("new_stores", 10, 5)], rating_count=4,
                            rating_sum=12, rating_min=3, training=(1, 4), alerts=2, sell_in_fen=100_000)
    out = scoring.assess(capped, s)
    assert out["parts"]["attainment_bp"] == (12000 + 5000) // 2
    assert out["parts"]["rating_bp"] == 6000 and out["parts"]["training_bp"] == 2500
    assert out["parts"]["weighted_x100"] == (50 * 8500 + 30 * 6000 + 20 * 2500) // 100
    assert out["score_x100"] == out["parts"]["weighted_x100"] - 1000


@pytest.mark.parametrize(("weights", "tiers", "base", "code"), [
    (WEIGHTS | {"training": 30}, TIERS, "sell_in", "weights_not_100"),
    (WEIGHTS, [TIERS[1], TIERS[2]], "sell_in", "tiers_gap"),
    (WEIGHTS, [TIERS[0], TIERS[2], TIERS[1]], "sell_in", "tiers_not_increasing"),
    (WEIGHTS, [TIERS[0], TIERS[1] | {"min_score": 0}], "sell_in", "tiers_not_increasing"),
    (WEIGHTS, [TIERS[0], TIERS[1] | {"name": "铜"}], "sell_in", "duplicate_tier_name"),
    (WEIGHTS, [TIERS[0] | {"rebate_bp": 10001}], "sell_in", "invalid_rebate_bp"),
    (WEIGHTS, [TIERS[0] | {"rebate_bp": True}], "sell_in", "invalid_rebate_bp"),
    (WEIGHTS, [], "sell_in", "invalid_tiers"),
    (WEIGHTS | {"attainment_cap_bp": 9000}, TIERS, "sell_in", "invalid_cap"),
    (WEIGHTS | {"bonus": 1}, TIERS, "sell_in", "invalid_weights"),
    (WEIGHTS, TIERS, "sell_through", "base_unsupported"),
    (WEIGHTS, TIERS, "gmv", "invalid_base"),
])
def test_a_bad_scheme_is_refused_with_a_code(weights, tiers, base, code):
    with pytest.raises(ValidationFailed) as err:
        scoring.check_scheme(weights, tiers, base)
    assert err.value.code == code
