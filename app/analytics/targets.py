"""Targets and actuals (CHANNEL.md §5): set a partner's monthly target per metric, and read targets beside their
actuals, variance and attainment.

Actuals come only from the facts, by the attribution stored on each of them when it happened (a store that changes
distributor later leaves its old sells where they were), net of returns and undos in the month they happen:

- sell_through_units: sell scans (+quantity), minus returns of a sold code (attributed to the sell they reverse),
  minus undone sells, plus undone returns, each in the month of its own event (BUSINESS_TZ);
- sell_in_fen: paid orders of the month routed to the partner, net of what was refunded on them;
- active_stores: stores with at least one sell in the month (not undone) attributed to the partner;
- new_stores: registrations of the partner converted in the month.

A fact names its distributor and that distributor's agent (`partner_id`/`agent_id`, `routed_partner_id`/
`routed_agent_id`), so an agent's actual includes its distributors' without walking the tree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.analytics.target_models import METRICS, PartnerTarget
from app.channel.models import Partner
from app.channel.queries import get_partner_for, visible_partners_condition
from app.channel.registration_models import CONVERTED, Registration
from app.codes.models import ScanEvent
from app.core.clock import BUSINESS_TZ, now_utc
from app.core.security import Principal, authorize, authorize_action
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.orders.models import Order

METRIC_NAMES = {"sell_through_units": "动销件数", "sell_in_fen": "进货金额（分）", "active_stores": "动销门店数",
                "new_stores": "新开门店数"}
MAX_VALUE = 2**63 - 1
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


def check_period(period: str) -> tuple[int, int]:
    """'YYYY-MM' with a year in 2000..2099, or 422 `invalid_period`."""
    m = _PERIOD.match(period or "")
    if not m or not (2000 <= int(m.group(1)) <= 2099) or not (1 <= int(m.group(2)) <= 12):
        raise ValidationFailed("月份要写成 YYYY-MM（2000-01 到 2099-12），例如 2026-12", code="invalid_period",
                               details={"period": period})
    return int(m.group(1)), int(m.group(2))


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in UTC, the month taken in BUSINESS_TZ."""
    year, month = check_period(period)
    start = datetime(year, month, 1, tzinfo=BUSINESS_TZ)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=BUSINESS_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def _check(metric: str, value: int) -> None:
    if metric not in METRICS:
        raise ValidationFailed("指标只能是动销件数、进货金额、动销门店数或新开门店数", code="invalid_metric",
                               details={"metric": metric, "allowed": list(METRICS)})
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_VALUE:
        raise ValidationFailed("目标值要是不小于 0 的整数", code="invalid_target_value", details={"value": value})


# --- writes ------------------------------------------------------------------------------------------------

def set_target(principal: Principal, *, partner_id: int, period: str, metric: str, value: int,
               sku_group_id: int | None = None) -> PartnerTarget:
    """Set a partner's target for a month and metric. A change writes the next version and supersedes the live
    one in the same transaction; the same value again changes nothing. HQ staff bound to a region cannot set
    targets (a partner is not inside one region)."""
    authorize_action(principal, "hq.write")
    check_period(period)
    _check(metric, value)
    if sku_group_id is not None:
        raise ValidationFailed("暂不支持按商品组设目标", code="sku_group_unsupported",
                               details={"sku_group_id": sku_group_id})
    tt = PartnerTarget.__table__
    try:
        with transaction():
            partner = db.session.get(Partner, partner_id)
            if partner is None:
                raise NotFound("找不到这个伙伴", code="partner_not_found", details={"partner_id": partner_id})
            authorize(principal, "hq.write", partner_path=partner.path)
            live = (tt.c.partner_id == partner_id, tt.c.period == period, tt.c.metric == metric,
                    tt.c.superseded_at.is_(None))
            current = db.session.execute(sa.select(tt.c.id, tt.c.value).where(*live)).first()
            if current is not None and current.value == value:
                return db.session.get(PartnerTarget, current.id)
            now = now_utc()
            # Compare-and-set on the live row: of two racing changes one supersedes it, the other finds nothing
            # here and its INSERT of the same version meets the unique index.
            old = db.session.execute(sa.update(tt).where(*live).values(superseded_at=now)
                                     .returning(tt.c.version)).scalar()
            row = PartnerTarget(partner_id=partner_id, period=period, metric=metric, value=value,
                                version=(old or _last_version(partner_id, period, metric)) + 1,
                                created_by_id=principal.user_id, created_at=now)
            db.session.add(row)
            db.session.flush()
            return row
    except IntegrityError:
        raise Conflict("这个目标刚被别人改过，请刷新后再试", code="target_changed",
                       details={"partner_id": partner_id, "period": period, "metric": metric}) from None


def _last_version(partner_id: int, period: str, metric: str) -> int:
    tt = PartnerTarget.__table__
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(tt.c.version), 0))
                             .where(tt.c.partner_id == partner_id, tt.c.period == period, tt.c.metric == metric))


# --- actuals -----------------------------------------------------------------------------------------------

def _sell_through_facts(start: datetime, end: datetime) -> sa.Subquery:
    """(partner_id, agent_id, store_id, units) of every fact of the month that moves sell-through."""
    ev = ScanEvent.__table__
    s, u, r, s2 = ev.alias("s"), ev.alias("u"), ev.alias("r"), ev.alias("s2")
    undone = sa.exists().where(u.c.corrects_event_id == s.c.id)

    def in_month(col):
        return sa.and_(col >= start, col < end)

    sells = (sa.select(s.c.partner_id, s.c.agent_id, s.c.store_id, s.c.quantity.label("units"),
                       sa.case((undone, 0), else_=1).label("live_sell"))
             .where(s.c.action == "sell", s.c.parent_event_id.is_(None), in_month(s.c.event_time)))
    undos = (sa.select(s.c.partner_id, s.c.agent_id, s.c.store_id, (-s.c.quantity).label("units"),
                       sa.literal(0).label("live_sell"))
             .select_from(u.join(s, s.c.id == u.c.corrects_event_id))
             .where(u.c.action == "undo", s.c.action == "sell", in_month(u.c.event_time)))
    # A return reverses the code's latest sell before it, and counts against whom that sell counted for.
    sold_by = (sa.select(sa.func.max(s2.c.id)).where(s2.c.code_id == r.c.code_id, s2.c.action == "sell",
                                                     s2.c.id < r.c.id).scalar_subquery())
    ret = sa.select(r.c.id.label("rid"), r.c.quantity, r.c.event_time, sold_by.label("sell_id")).where(
        r.c.action == "return", r.c.code_id.is_not(None)).subquery("ret")
    returns = (sa.select(s.c.partner_id, s.c.agent_id, s.c.store_id, (-ret.c.quantity).label("units"),
                         sa.literal(0).label("live_sell"))
               .select_from(ret.join(s, s.c.id == ret.c.sell_id)).where(in_month(ret.c.event_time)))
    undone_returns = (sa.select(s.c.partner_id, s.c.agent_id, s.c.store_id, ret.c.quantity.label("units"),
                                sa.literal(0).label("live_sell"))
                      .select_from(u.join(ret, ret.c.rid == u.c.corrects_event_id)
                                   .join(s, s.c.id == ret.c.sell_id))
                      .where(u.c.action == "undo", in_month(u.c.event_time)))
    return sa.union_all(sells, undos, returns, undone_returns).subquery("facts")


def _by_partner(facts: sa.Subquery, partner_ids: list[int], *columns) -> sa.Select:
    """The facts once under their distributor and once under its agent, for the asked partners."""
    as_partner = sa.select(facts.c.partner_id.label("pid"), *[facts.c[c] for c in columns]).where(
        facts.c.partner_id.in_(partner_ids))
    as_agent = sa.select(facts.c.agent_id.label("pid"), *[facts.c[c] for c in columns]).where(
        facts.c.agent_id.in_(partner_ids))
    return sa.union_all(as_partner, as_agent).subquery("attributed")


def actuals(partner_ids: list[int], period: str) -> dict[tuple[int, str], int]:
    """{(partner_id, metric): actual} for these partners and month, every metric, zero where nothing happened."""
    start, end = month_bounds(period)
    out = {(p, m): 0 for p in partner_ids for m in METRICS}
    if not partner_ids:
        return out
    facts = _sell_through_facts(start, end)
    # One pass over the month's facts down to (distributor, agent, store) first (a CTE, computed once), so the
    # attribution below (each row once under its distributor, once under its agent) runs over a few rows per
    # store, not over every event twice.
    per_store = (sa.select(facts.c.partner_id, facts.c.agent_id, facts.c.store_id,
                           sa.func.sum(facts.c.units).label("units"), sa.func.max(facts.c.live_sell).label("live_sell"))
                 .group_by(facts.c.partner_id, facts.c.agent_id, facts.c.store_id).cte("per_store"))
    att = _by_partner(per_store, partner_ids, "units", "store_id", "live_sell")
    for pid, units, stores in db.session.execute(
            sa.select(att.c.pid, sa.func.coalesce(sa.func.sum(att.c.units), 0),
                      sa.func.count(sa.distinct(sa.case((att.c.live_sell == 1, att.c.store_id)))))
            .group_by(att.c.pid)):
        out[(pid, "sell_through_units")] = int(units)
        out[(pid, "active_stores")] = int(stores)

    orders_t = Order.__table__
    paid = sa.and_(orders_t.c.paid_at >= start, orders_t.c.paid_at < end, orders_t.c.paid_fen > 0)
    orders = sa.select(orders_t.c.routed_partner_id.label("partner_id"), orders_t.c.routed_agent_id.label("agent_id"),
                       (orders_t.c.paid_fen - orders_t.c.refunded_fen).label("fen")).where(paid).subquery("paid_orders")
    att = _by_partner(orders, partner_ids, "fen")
    for pid, fen in db.session.execute(sa.select(att.c.pid, sa.func.sum(att.c.fen)).group_by(att.c.pid)):
        out[(pid, "sell_in_fen")] = int(fen or 0)

    regs_t = Registration.__table__
    regs = sa.select(regs_t.c.partner_id, regs_t.c.agent_id, regs_t.c.id.label("rid")).where(
        regs_t.c.status == CONVERTED, regs_t.c.converted_at >= start, regs_t.c.converted_at < end).subquery("converted")
    att = _by_partner(regs, partner_ids, "rid")
    for pid, n in db.session.execute(sa.select(att.c.pid, sa.func.count()).group_by(att.c.pid)):
        out[(pid, "new_stores")] = int(n)
    return out


# --- reads -------------------------------------------------------------------------------------------------

def list_targets(principal: Principal, period: str, partner_id: int | None = None,
                 action: str = "partner.read") -> list[dict[str, Any]]:
    """The live targets of the month of the partners the caller may see (a partner its own subtree, HQ all),
    each with its actual, variance (actual − target) and attainment in basis points (none for a zero target).
    The HQ report asks `hq.read`, so partner staff read theirs on the mini-program only."""
    authorize_action(principal, action)
    check_period(period)
    if partner_id is not None:
        get_partner_for(principal, partner_id, action)
    stmt = (sa.select(PartnerTarget, Partner)
            .join(Partner, Partner.id == PartnerTarget.partner_id)
            .where(PartnerTarget.period == period, PartnerTarget.superseded_at.is_(None),
                   visible_partners_condition(principal, action))
            .order_by(Partner.path, PartnerTarget.metric))
    if partner_id is not None:
        stmt = stmt.where(PartnerTarget.partner_id == partner_id)
    rows = db.session.execute(stmt).all()
    got = actuals(sorted({t.partner_id for t, _ in rows}), period)
    out = []
    for t, p in rows:
        actual = got[(t.partner_id, t.metric)]
        out.append({"id": t.id, "partner_id": p.id, "partner_code": p.code, "partner_name": p.name,
                    "partner_kind": p.kind, "period": t.period, "metric": t.metric,
                    "metric_name": METRIC_NAMES[t.metric], "target": t.value, "actual": actual,
                    "variance": actual - t.value,
                    "attainment_bp": actual * 10000 // t.value if t.value else None,
                    "version": t.version, "set_at": t.created_at})
    return out


def target_history(principal: Principal, partner_id: int, period: str, metric: str) -> list[PartnerTarget]:
    """Every version of one target, oldest first."""
    check_period(period)
    _check(metric, 0)
    get_partner_for(principal, partner_id)
    return list(db.session.scalars(sa.select(PartnerTarget).where(
        PartnerTarget.partner_id == partner_id, PartnerTarget.period == period, PartnerTarget.metric == metric)
        .order_by(PartnerTarget.version)))
