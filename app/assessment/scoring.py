"""The assessment's arithmetic, pure (no database): checking a scheme, the parts, the score, the tier, the rebate.

Rules (CHANNEL.md §8), all in integers:

- Parts are in basis points (10000 = fully met):
  - attainment: per live target of the month with a value above 0, actual × 10000 // target, capped at the
    scheme's `attainment_cap_bp` (e.g. 12000 = 120%); the part is their average (floor). A partner with no
    target above 0 has nothing asked of it: the part counts as fully met (10000).
  - rating: the distributor's average score of the month over 5 (sum × 2000 // count), counted only from
    `RATING_MIN_COUNT` ratings; with fewer (or none, e.g. an agent, which stores do not rate) the part counts as
    fully met (10000): too few ratings are no evidence against the partner.
  - training: completed staff × 10000 // required staff; a partner with no required training counts as fully met.
- score (hundredths of a point) = (w_attainment × attainment + w_rating × rating + w_training × training) // 100
  − diversion_penalty × 100 × alerts, never below 0. Weights are whole points summing to 100, so a partner fully
  meeting everything scores 100.00 (more with attainment above 100%).
- tier: the last tier whose `min_score` (whole points) × 100 ≤ score. Tiers start at 0 and strictly increase, so
  every score has exactly one tier.
- rebate (fen) = base × rebate_bp / 10000 rounded half up, per partner, with base = max(0, sell-in fen). Never
  negative; the month's rebate is the sum of the partners' (each rounded once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import ValidationFailed

PARTS = ("attainment", "rating", "training")
BASES = ("sell_in",)
FULL = 10000
MAX_TIERS = 20
MAX_MIN_SCORE = 1000


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_scheme(weights: Any, tiers: Any, base: Any) -> dict[str, Any]:
    """The scheme normalised, or 422 with a code naming what is wrong."""
    if base == "sell_through":
        raise ValidationFailed("暂不支持按动销金额计返点：目录里没有统一的动销计价，请用进货金额（sell_in）",
                               code="base_unsupported", details={"base": base, "allowed": list(BASES)})
    if base not in BASES:
        raise ValidationFailed("返点基数只能是进货金额（sell_in）", code="invalid_base",
                               details={"base": base, "allowed": list(BASES)})
    if not isinstance(weights, dict):
        raise ValidationFailed("权重要写成对象", code="invalid_weights")
    allowed = set(PARTS) | {"attainment_cap_bp", "diversion_penalty"}
    unknown = sorted(set(weights) - allowed)
    if unknown:
        raise ValidationFailed("权重里有不认识的项", code="invalid_weights", details={"unknown": unknown})
    w = {}
    for part in PARTS:
        v = weights.get(part, 0)
        if not _int(v) or not 0 <= v <= 100:
            raise ValidationFailed("每项权重要是 0 到 100 的整数", code="invalid_weights", details={"part": part})
        w[part] = v
    if sum(w.values()) != 100:
        raise ValidationFailed("目标达成、评分、培训三项权重之和要等于 100", code="weights_not_100",
                               details={"sum": sum(w.values())})
    cap = weights.get("attainment_cap_bp", 12000)
    if not _int(cap) or not FULL <= cap <= 30000:
        raise ValidationFailed("目标达成封顶要在 10000 到 30000 基点之间（100% 到 300%）", code="invalid_cap",
                               details={"attainment_cap_bp": cap})
    penalty = weights.get("diversion_penalty", 0)
    if not _int(penalty) or not 0 <= penalty <= 100:
        raise ValidationFailed("每条窜货预警扣分要是 0 到 100 的整数", code="invalid_penalty",
                               details={"diversion_penalty": penalty})
    w.update(attainment_cap_bp=cap, diversion_penalty=penalty)
    if not isinstance(tiers, list) or not 1 <= len(tiers) <= MAX_TIERS:
        raise ValidationFailed(f"等级要有 1 到 {MAX_TIERS} 个", code="invalid_tiers")
    out, names = [], set()
    for i, t in enumerate(tiers):
        if not isinstance(t, dict) or set(t) - {"name", "min_score", "rebate_bp"}:
            raise ValidationFailed("每个等级要写名称、起始分和返点基点", code="invalid_tiers", details={"index": i})
        name, min_score, bp = t.get("name"), t.get("min_score"), t.get("rebate_bp")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 40:
            raise ValidationFailed("等级名称不能为空，最多 40 个字", code="invalid_tier_name", details={"index": i})
        if name.strip() in names:
            raise ValidationFailed("等级名称不能重复", code="duplicate_tier_name", details={"index": i})
        if not _int(min_score) or not 0 <= min_score <= MAX_MIN_SCORE:
            raise ValidationFailed(f"起始分要是 0 到 {MAX_MIN_SCORE} 的整数", code="invalid_min_score",
                                   details={"index": i})
        if not _int(bp) or not 0 <= bp <= FULL:
            raise ValidationFailed("返点要是 0 到 10000 基点的整数", code="invalid_rebate_bp", details={"index": i})
        if i == 0 and min_score != 0:
            raise ValidationFailed("第一个等级要从 0 分开始，不能留空档", code="tiers_gap",
                                   details={"index": 0, "min_score": min_score})
        if i > 0 and min_score <= out[-1]["min_score"]:
            raise ValidationFailed("等级的起始分要逐级升高", code="tiers_not_increasing",
                                   details={"index": i, "min_score": min_score,
                                            "previous": out[-1]["min_score"]})
        names.add(name.strip())
        out.append({"name": name.strip(), "min_score": min_score, "rebate_bp": bp})
    return {"weights": w, "tiers": out, "base": base}


@dataclass(frozen=True)
class Inputs:
    targets: list[tuple[str, int, int]]  # (metric, target, actual)
    rating_count: int
    rating_sum: int
    rating_min: int
    training: tuple[int, int] | None  # (completed, required) or None: no required training
    alerts: int
    sell_in_fen: int


def attainment_bp(targets: list[tuple[str, int, int]], cap: int) -> int:
    counted = [min(max(actual, 0) * FULL // target, cap) for _, target, actual in targets if target > 0]
    return sum(counted) // len(counted) if counted else FULL


def rating_bp(count: int, total: int, min_count: int) -> int:
    return total * 2000 // count if count and count >= min_count else FULL


def training_bp(training: tuple[int, int] | None) -> int:
    if training is None or training[1] <= 0:
        return FULL
    done, required = training
    return min(max(done, 0), required) * FULL // required


def tier_of(score_x100: int, tiers: list[dict[str, Any]]) -> int:
    """The index of the last tier whose min_score × 100 ≤ score (tiers are gapless from 0)."""
    index = 0
    for i, t in enumerate(tiers):
        if t["min_score"] * 100 <= score_x100:
            index = i
    return index


def rebate_fen(base_fen: int, bp: int) -> int:
    """base × bp / 10000, half up; a negative base (refunds beyond sales) gives no rebate."""
    return (max(base_fen, 0) * bp + 5000) // 10000


def assess(inputs: Inputs, scheme: dict[str, Any]) -> dict[str, Any]:
    """Parts, score, tier and rebate of one partner."""
    w = scheme["weights"]
    parts = {"attainment_bp": attainment_bp(inputs.targets, w["attainment_cap_bp"]),
             "rating_bp": rating_bp(inputs.rating_count, inputs.rating_sum, inputs.rating_min),
             "training_bp": training_bp(inputs.training)}
    weighted = sum(w[p] * parts[f"{p}_bp"] for p in PARTS) // 100
    penalty = w["diversion_penalty"] * 100 * inputs.alerts
    score = max(weighted - penalty, 0)
    parts.update(weighted_x100=weighted, penalty_x100=penalty)
    index = tier_of(score, scheme["tiers"])
    tier = scheme["tiers"][index]
    base = max(inputs.sell_in_fen, 0)
    return {"parts": parts, "score_x100": score, "tier_index": index, "tier_name": tier["name"],
            "rebate_bp": tier["rebate_bp"], "base_fen": base, "rebate_fen": rebate_fen(base, tier["rebate_bp"])}


def movement(previous_index: int | None, index: int) -> str:
    if previous_index is None:
        return "new"
    return "promoted" if index > previous_index else "demoted" if index < previous_index else "kept"
