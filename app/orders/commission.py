"""The profit split: a completed order's margin booked to the partners that brought and served it.

One rule (HQ's latest `CommissionRule`) and one ledger (`commission_entries`) for store orders and consumer
orders alike. In integer fen: margin = base × margin_bp ÷ 10000, rounded down (the fraction of a fen stays with
HQ); the bringer's share = margin × bringer_share_bp ÷ 10000, rounded down; the serving partner gets the rest, so
the entries always sum exactly to the margin. When one partner both brought and served the order (or the other
side is HQ itself), that partner's one `sole` entry is the whole margin.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.core.security import Principal
from app.core.tx import transaction
from app.extensions import db
from app.orders.models import CommissionEntry, CommissionRule, ConsumerOrder, Order


def _rule() -> CommissionRule | None:
    return db.session.scalar(sa.select(CommissionRule).order_by(CommissionRule.created_at.desc(),
                                                                 CommissionRule.id.desc()))


def split_margin(base_fen: int, rule: CommissionRule, *, bringer: int | None,
                 servicer: int | None) -> tuple[int, list[tuple[int, str, int, int]]]:
    """The margin of `base_fen` and its entries (partner, role, share in bp, fen) under `rule`."""
    margin = base_fen * rule.margin_bp // 10000
    if bringer and servicer and bringer != servicer:
        bringer_fen = margin * rule.bringer_share_bp // 10000
        return margin, [(bringer, "bringer", rule.bringer_share_bp, bringer_fen),
                        (servicer, "servicer", 10000 - rule.bringer_share_bp, margin - bringer_fen)]
    sole = servicer or bringer
    return margin, [(sole, "sole", 10000, margin)] if sole else []


def book_commission(order: Order) -> None:
    """Book the completed order's margin to its partners by the latest rule (in the caller's transaction)."""
    rule = _rule()
    if rule is None:
        return
    # What the store paid and kept: a second payment that went back counts in neither.
    base = min(order.total_fen, order.paid_fen - order.refunded_fen)
    bringer, servicer = order.bringing_partner_id, order.routed_partner_id
    margin, entries = split_margin(base, rule, bringer=bringer, servicer=servicer)
    # Each row keeps the attribution the order was placed under (partner and its agent then), never today's tree.
    agents = {bringer: order.bringing_agent_id, servicer: order.routed_agent_id}
    for partner_id, role, share, amount in entries:
        db.session.add(CommissionEntry(order_id=order.id, partner_id=partner_id, agent_id=agents.get(partner_id),
                                       role=role, base_fen=margin, share_bp=share, amount_fen=amount,
                                       rule_id=rule.id))


def book_consumer_commission(order: ConsumerOrder) -> None:
    """Book a completed consumer order's margin (on its consumer-price total) to the partner who brought it and
    the one who served it, by the latest rule (in the caller's transaction)."""
    rule = _rule()
    if rule is None:
        return
    bringer, servicer = order.brought_by_partner_id, order.serving_partner_id
    margin, entries = split_margin(order.total_fen, rule, bringer=bringer, servicer=servicer)
    # As for store orders: the agents the order was routed under, never today's tree.
    agents = {bringer: order.brought_by_agent_id, servicer: order.serving_agent_id}
    for partner_id, role, share, amount in entries:
        db.session.add(CommissionEntry(consumer_order_id=order.id, partner_id=partner_id,
                                       agent_id=agents.get(partner_id), role=role, base_fen=margin,
                                       share_bp=share, amount_fen=amount, rule_id=rule.id))


def set_commission_rule(principal: Principal, *, margin_bp: int, bringer_share_bp: int) -> CommissionRule:
    """HQ sets the split rule used for orders completed from now on."""
    with transaction():
        rule = CommissionRule(margin_bp=margin_bp, bringer_share_bp=bringer_share_bp, user_id=principal.user_id)
        db.session.add(rule)
        db.session.flush()
        return rule
