"""HQ sets scan incentive rules; credits are written by the scans themselves (see app.scans.services)."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.core.clock import now_utc
from app.core.security import Principal, authorize
from app.core.tx import transaction
from app.errors import Conflict, NotFound
from app.extensions import db
from app.incentives.models import IncentiveRule


def set_rules(principal: Principal, rules: list[dict]) -> list[IncentiveRule]:
    """Create or replace the rules given (sku_id, step, points, amount_fen, is_active) (HQ)."""
    authorize(principal, "hq.write")
    with transaction():
        out = []
        for r in rules:
            if db.session.get(Sku, r["sku_id"]) is None:
                raise NotFound("找不到这个商品", code="sku_not_found", details={"sku_id": r["sku_id"]})
            rule = db.session.scalar(sa.select(IncentiveRule).where(IncentiveRule.sku_id == r["sku_id"],
                                                                    IncentiveRule.step == r["step"]))
            if rule is None:
                rule = IncentiveRule(sku_id=r["sku_id"], step=r["step"])
                db.session.add(rule)
            rule.points, rule.amount_fen = r.get("points", 0), r.get("amount_fen", 0)
            rule.is_active, rule.updated_at = r.get("is_active", True), now_utc()
            out.append(rule)
        db.session.flush()
    return out


def end_rule(principal: Principal, rule_id: int) -> IncentiveRule:
    """Stop a rule (HQ): scans from now on earn nothing by it; credits already earned stay. Ending an ended rule is
    409 `rule_already_ended` (a compare-and-set on `is_active`, so two clicks end it once)."""
    authorize(principal, "hq.write")
    with transaction():
        done = db.session.execute(sa.update(IncentiveRule)
                                  .where(IncentiveRule.id == rule_id, IncentiveRule.is_active.is_(True))
                                  .values(is_active=False, updated_at=now_utc()))
        rule = db.session.get(IncentiveRule, rule_id)
        if rule is None:
            raise NotFound("找不到这条激励规则", code="rule_not_found")
        if done.rowcount != 1:
            raise Conflict("这条规则已经停用了", code="rule_already_ended")
        db.session.refresh(rule)
        return rule
