"""Reading assessments: the month's list (HQ: every partner; partner staff: their own partner only), a partner's
statement explaining each figure down to its inputs, its tier history and its rebate ledger."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.analytics.targets import METRIC_NAMES, check_period
from app.assessment.models import AssessmentScheme, PartnerAssessment, PeriodClose, RebateEntry
from app.assessment.services import latest_assessments
from app.channel.models import Partner
from app.channel.queries import get_partner_for, visible_partners_condition
from app.core.security import Principal, authorize_action
from app.errors import NotFound
from app.extensions import db

MOVEMENTS = {"new": "首次评定", "promoted": "升级", "kept": "保级", "demoted": "降级"}
PART_NAMES = {"attainment": "目标达成", "rating": "门店评分", "training": "培训完成率"}


def scheme_of(principal: Principal, period: str) -> dict[str, Any]:
    authorize_action(principal, "hq.read")
    check_period(period)
    row = db.session.scalar(sa.select(AssessmentScheme).where(AssessmentScheme.period == period))
    if row is None:
        raise NotFound("这个月还没有考核方案", code="scheme_not_found", details={"period": period})
    return {"period": row.period, "weights": row.weights, "tiers": row.tiers, "base": row.base,
            "updated_at": row.updated_at}


def close_of(period: str) -> dict[str, Any] | None:
    c = db.session.scalar(sa.select(PeriodClose).where(PeriodClose.period == period))
    if c is None:
        return None
    return {"period": c.period, "version": c.version, "partners": c.partners, "rebate_fen": c.rebate_fen,
            "closed_at": c.closed_at, "recomputed_at": c.recomputed_at, "scheme": c.scheme}


def _row(a: PartnerAssessment, p: Partner, ledger_fen: int) -> dict[str, Any]:
    return {"partner_id": p.id, "partner_code": p.code, "partner_name": p.name, "partner_kind": p.kind,
            "period": a.period, "version": a.version, "score_x100": a.score_x100,
            "score": f"{a.score_x100 // 100}.{a.score_x100 % 100:02d}", "tier_index": a.tier_index,
            "tier_name": a.tier_name, "previous_tier": a.previous_tier, "movement": a.movement,
            "movement_name": MOVEMENTS[a.movement], "rebate_bp": a.rebate_bp, "base_fen": a.base_fen,
            "rebate_fen": a.rebate_fen, "ledger_fen": ledger_fen}


def _ledger_sums(period: str, partner_ids: list[int] | None = None) -> dict[int, int]:
    stmt = (sa.select(RebateEntry.partner_id, sa.func.sum(RebateEntry.amount_fen))
            .where(RebateEntry.period == period).group_by(RebateEntry.partner_id))
    if partner_ids is not None:
        stmt = stmt.where(RebateEntry.partner_id.in_(partner_ids))
    return {pid: int(s) for pid, s in db.session.execute(stmt)}


def _listing(period: str, condition) -> list[dict[str, Any]]:
    latest = latest_assessments(period)
    if not latest:
        return []
    partners = db.session.scalars(sa.select(Partner).where(Partner.id.in_(list(latest)), condition)
                                  .order_by(Partner.path)).all()
    sums = _ledger_sums(period, [p.id for p in partners]) if partners else {}
    return [_row(latest[p.id], p, sums.get(p.id, 0)) for p in partners]


def hq_assessments(principal: Principal, period: str) -> dict[str, Any]:
    """Every assessed partner of a closed month HQ may see, with score, tier and rebate (empty if not closed)."""
    authorize_action(principal, "hq.read")
    check_period(period)
    items = _listing(period, visible_partners_condition(principal, "hq.read"))
    return {"period": period, "close": close_of(period), "items": items,
            "rebate_fen": sum(i["rebate_fen"] for i in items)}


def _own_partner_ids(principal: Principal) -> list[int]:
    from app.accounts.roles import PARTNER_ROLES

    return sorted({b.partner_id for b in principal.bindings if b.role in PARTNER_ROLES and b.partner_id})


def own_assessments(principal: Principal, period: str) -> dict[str, Any]:
    """Partner staff: their own partner's assessment of a closed month (not their distributors')."""
    authorize_action(principal, "partner.read")
    check_period(period)
    ids = _own_partner_ids(principal)
    items = _listing(period, Partner.id.in_(ids)) if ids else []
    for item in items:
        item.update(statement(principal, item["partner_id"], period, action="partner.read"))
    return {"period": period, "closed": close_of(period) is not None, "items": items}


def own_rebates(principal: Principal, period: str) -> dict[str, Any]:
    """Partner staff: their own partner's rebate entries of a month and their sum."""
    authorize_action(principal, "partner.read")
    check_period(period)
    ids = _own_partner_ids(principal)
    entries = _entries(period, ids) if ids else []
    return {"period": period, "items": entries, "total_fen": sum(e["amount_fen"] for e in entries)}


def _entries(period: str, partner_ids: list[int]) -> list[dict[str, Any]]:
    rows = db.session.execute(sa.select(RebateEntry, Partner.code, Partner.name)
                              .join(Partner, Partner.id == RebateEntry.partner_id)
                              .where(RebateEntry.period == period, RebateEntry.partner_id.in_(partner_ids))
                              .order_by(RebateEntry.partner_id, RebateEntry.id))
    return [{"id": e.id, "partner_id": e.partner_id, "partner_code": code, "partner_name": name,
             "period": e.period, "kind": e.kind, "amount_fen": e.amount_fen, "version": e.version,
             "reason": e.reason, "created_at": e.created_at} for e, code, name in rows]


def tier_history(partner_id: int, limit: int = 12) -> list[dict[str, Any]]:
    pa = PartnerAssessment.__table__
    latest = (sa.select(pa.c.period, sa.func.max(pa.c.version).label("v"))
              .where(pa.c.partner_id == partner_id).group_by(pa.c.period).subquery())
    rows = db.session.execute(
        sa.select(pa.c.period, pa.c.tier_name, pa.c.score_x100, pa.c.movement, pa.c.previous_tier)
        .join(latest, sa.and_(latest.c.period == pa.c.period, latest.c.v == pa.c.version))
        .where(pa.c.partner_id == partner_id).order_by(pa.c.period.desc()).limit(limit))
    return [{"period": r.period, "tier_name": r.tier_name, "score_x100": r.score_x100, "movement": r.movement,
             "movement_name": MOVEMENTS[r.movement], "previous_tier": r.previous_tier} for r in rows]


def _pct(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d}%"


def explain(a: PartnerAssessment, scheme: dict[str, Any]) -> list[dict[str, str]]:
    """Each figure of the statement with how it was reached, in plain Chinese."""
    w, i, parts = scheme["weights"], a.inputs, a.parts
    lines = []
    if i["targets"]:
        detail = "；".join(
            f"{METRIC_NAMES.get(t['metric'], t['metric'])} 实际 {t['actual']} / 目标 {t['target']}"
            for t in i["targets"])
        lines.append({"item": "目标达成", "value": _pct(parts["attainment_bp"]),
                      "how": f"{detail}；每项达成封顶 {_pct(w['attainment_cap_bp'])}，取平均"})
    else:
        lines.append({"item": "目标达成", "value": _pct(parts["attainment_bp"]), "how": "本月没有设目标，按完全达成计"})
    r = i["rating"]
    if r["counted"]:
        lines.append({"item": "门店评分", "value": _pct(parts["rating_bp"]),
                      "how": f"{r['count']} 条评分共 {r['sum']} 分，平均分 ÷ 5"})
    else:
        lines.append({"item": "门店评分", "value": _pct(parts["rating_bp"]),
                      "how": f"评分 {r['count']} 条，不足 {r['min_count']} 条不计入，按完全达成计"})
    t = i["training"]
    lines.append({"item": "培训完成率", "value": _pct(parts["training_bp"]),
                  "how": (f"{t['completed']} / {t['required']} 名员工完成必修课程" if t
                          else "没有必修培训，按完全达成计")})
    lines.append({"item": "加权得分", "value": f"{parts['weighted_x100'] / 100:.2f}",
                  "how": "目标达成×{attainment} + 门店评分×{rating} + 培训×{training}（权重合计 100）".format(**w)})
    lines.append({"item": "窜货扣分", "value": f"{parts['penalty_x100'] / 100:.2f}",
                  "how": f"{i['alerts']} 条窜货预警（不含已排除的）× 每条 {w['diversion_penalty']} 分"})
    lines.append({"item": "总分", "value": f"{a.score_x100 / 100:.2f}", "how": "加权得分 − 窜货扣分，最低 0 分"})
    tiers = "、".join(f"{t['name']} ≥{t['min_score']} 分返 {_pct(t['rebate_bp'])}" for t in scheme["tiers"])
    lines.append({"item": "等级", "value": a.tier_name, "how": f"{tiers}；上月 {a.previous_tier or '无'}，"
                                                               f"本月{MOVEMENTS[a.movement]}"})
    lines.append({"item": "返点基数（分）", "value": str(a.base_fen),
                  "how": f"本月已付订单进货金额 {i['sell_in_fen']} 分（扣除退款），负数按 0 计"})
    lines.append({"item": "返点（分）", "value": str(a.rebate_fen),
                  "how": f"{a.base_fen} × {a.rebate_bp} ÷ 10000，四舍五入到分"})
    return lines


def statement(principal: Principal, partner_id: int, period: str, action: str = "hq.read") -> dict[str, Any]:
    """One partner's statement of a closed month: every figure with its inputs, the ledger and tier history."""
    authorize_action(principal, action)
    check_period(period)
    partner = get_partner_for(principal, partner_id, action)
    close = close_of(period)
    a = db.session.scalar(sa.select(PartnerAssessment).where(
        PartnerAssessment.period == period, PartnerAssessment.partner_id == partner_id)
        .order_by(PartnerAssessment.version.desc()).limit(1))
    if close is None or a is None:
        raise NotFound("这个伙伴这个月还没有结算", code="statement_not_found",
                       details={"period": period, "partner_id": partner_id})
    entries = _entries(period, [partner_id])
    return {**_row(a, partner, sum(e["amount_fen"] for e in entries)), "inputs": a.inputs, "parts": a.parts,
            "scheme": close["scheme"], "lines": explain(a, close["scheme"]), "entries": entries,
            "history": tier_history(partner_id), "close_version": close["version"]}


def statement_rows(principal: Principal, period: str, partner_id: int | None) -> list[dict[str, Any]]:
    """The statements' figures as flat rows (the .xlsx)."""
    if partner_id is not None:
        return [statement(principal, partner_id, period)]
    return [statement(principal, item["partner_id"], period) for item in hq_assessments(principal, period)["items"]]

