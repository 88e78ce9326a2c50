"""The profit split: a completed order's margin booked to the partners that brought and served it."""

from __future__ import annotations

import sqlalchemy as sa

from app.core.security import Principal
from app.core.tx import transaction
from app.extensions import db
from app.orders.models import CommissionEntry, CommissionRule, Order


def book_commission(order: Order) -> None:
    """Book the completed order's margin to its partners by the latest rule (in the caller's transaction)."""
    rule = db.session.scalar(sa.select(CommissionRule).order_by(CommissionRule.created_at.desc(),
                                                                 CommissionRule.id.desc()))
    if rule is None:
        return
    # What the store paid and kept: a second payment that went back counts in neither.
    base = min(order.total_fen, order.paid_fen - order.refunded_fen)
    margin = base * rule.margin_bp // 10000
    bringer, servicer = order.bringing_partner_id, order.routed_partner_id
    # Each row keeps the attribution the order was placed under (partner and its agent then), never today's tree.
    agents = {bringer: order.bringing_agent_id, servicer: order.routed_agent_id}
    if bringer and servicer and bringer != servicer:
        bringer_fen = margin * rule.bringer_share_bp // 10000
        entries = [(bringer, "bringer", rule.bringer_share_bp, bringer_fen),
                   (servicer, "servicer", 10000 - rule.bringer_share_bp, margin - bringer_fen)]
    else:
        entries = [(servicer or bringer, "sole", 10000, margin)]
    for partner_id, role, share, amount in entries:
        if partner_id:
            db.session.add(CommissionEntry(order_id=order.id, partner_id=partner_id, agent_id=agents.get(partner_id),
                                           role=role, base_fen=margin, share_bp=share, amount_fen=amount,
                                           rule_id=rule.id))


def set_commission_rule(principal: Principal, *, margin_bp: int, bringer_share_bp: int) -> CommissionRule:
    """HQ sets the split rule used for orders completed from now on."""
    with transaction():
        rule = CommissionRule(margin_bp=margin_bp, bringer_share_bp=bringer_share_bp, user_id=principal.user_id)
        db.session.add(rule)
        db.session.flush()
        return rule
