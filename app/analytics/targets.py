"""Targets and actuals (CHANNEL.md §5): set a partner's monthly target per metric, and read targets beside their
actuals, variance and attainment.

Actuals come only from the facts, by the attribution stored on each of them when it happened (a store that changes
distributor later leaves its old sells where they were), net of returns and undos in the month they happen:

- sell_through_units: sell scans (+quantity), minus returns of a sold code (attributed to the sell they reverse),
  minus undone sells, plus undone returns, each in the month of its own event (BUSINESS_TZ);
- sell_in_fen: paid orders of the month routed to the partner, net of what was refunded on them;
- active_stores: stores with at least one sell in the month (not undone) attributed to the partner;
- new_stores: registrations of the partner converted in the month.

A target limited to a SKU group counts the group's members only: their sell scans (and the returns and undos of
those), the stores that sold one of them, and of each paid order the share of its net paid amount that the group's
lines make of its lines (rounded down per order). New stores are not counted by SKU group.

A fact names its distributor and that distributor's agent (`partner_id`/`agent_id`, `routed_partner_id`/
`routed_agent_id`), so an agent's actual includes its distributors' without walking the tree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.analytics.target_models import METRICS, PartnerTarget, SkuGroup, SkuGroupMember, TargetTemplate
from app.catalog.models import Sku
from app.channel.models import Partner
from app.channel.queries import get_partner_for, visible_partners_condition
from app.channel.registration_models import CONVERTED, Registration
from app.codes.models import ScanEvent
from app.core.clock import BUSINESS_TZ, now_utc
from app.core.security import Principal, authorize, authorize_action
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.orders.models import Order, OrderLine

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
    """Set a partner's target for a month and metric (of all SKUs, or of one SKU group). A change writes the next
    version and supersedes the live one in the same transaction; the same value again changes nothing. HQ staff
    bound to a region cannot set targets (a partner is not inside one region)."""
    authorize_action(principal, "hq.write")
    check_period(period)
    _check(metric, value)
    _check_group_metric(metric, sku_group_id)
    try:
        with transaction():
            partner = _partner_to_target(principal, partner_id)
            _group_or_404(sku_group_id)
            return _write_target(principal, partner.id, period, metric, value, sku_group_id)
    except IntegrityError:
        raise Conflict("这个目标刚被别人改过，请刷新后再试", code="target_changed",
                       details={"partner_id": partner_id, "period": period, "metric": metric}) from None


def set_yearly_target(principal: Principal, *, partner_id: int, year: int, metric: str, value: int,
                      template_id: int, sku_group_id: int | None = None) -> list[PartnerTarget]:
    """Split a yearly target over its twelve months by a template and set the twelve monthly targets in one
    transaction (each a new version where it changes). The months' values total the yearly value exactly: each
    month gets value × share / 10,000 rounded down, and what that leaves goes one by one to the months with the
    largest remainders (the earlier month first on a tie)."""
    authorize_action(principal, "hq.write")
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2099:
        raise ValidationFailed("年份要在 2000 到 2099 之间", code="invalid_year", details={"year": year})
    _check(metric, value)
    _check_group_metric(metric, sku_group_id)
    try:
        with transaction():
            partner = _partner_to_target(principal, partner_id)
            _group_or_404(sku_group_id)
            template = db.session.get(TargetTemplate, template_id)
            if template is None:
                raise NotFound("找不到这个分解模板", code="template_not_found", details={"template_id": template_id})
            months = split_by_shares(value, template.shares_bp)
            return [_write_target(principal, partner.id, f"{year:04d}-{m:02d}", metric, v, sku_group_id)
                    for m, v in enumerate(months, start=1)]
    except IntegrityError:
        raise Conflict("这个伙伴的目标刚被别人改过，请刷新后再试", code="target_changed",
                       details={"partner_id": partner_id, "year": year, "metric": metric}) from None


def split_by_shares(value: int, shares_bp: list[int]) -> list[int]:
    """`value` split by shares in basis points (totalling 10,000) so that the parts total `value` exactly."""
    exact = [value * share for share in shares_bp]
    parts = [e // 10000 for e in exact]
    left = value - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (-(exact[i] % 10000), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def _check_group_metric(metric: str, sku_group_id: int | None) -> None:
    if sku_group_id is not None and metric == "new_stores":
        raise ValidationFailed("新开门店数不分商品组", code="sku_group_not_for_metric",
                               details={"metric": metric, "sku_group_id": sku_group_id})


def _partner_to_target(principal: Principal, partner_id: int) -> Partner:
    partner = db.session.get(Partner, partner_id)
    if partner is None:
        raise NotFound("找不到这个伙伴", code="partner_not_found", details={"partner_id": partner_id})
    authorize(principal, "hq.write", partner_path=partner.path)
    return partner


def _group_or_404(sku_group_id: int | None) -> SkuGroup | None:
    if sku_group_id is None:
        return None
    group = db.session.get(SkuGroup, sku_group_id)
    if group is None:
        raise NotFound("找不到这个商品组", code="sku_group_not_found", details={"sku_group_id": sku_group_id})
    return group


def _write_target(principal: Principal, partner_id: int, period: str, metric: str, value: int,
                  sku_group_id: int | None) -> PartnerTarget:
    """One target's change, inside the caller's transaction."""
    tt = PartnerTarget.__table__
    live = (tt.c.partner_id == partner_id, tt.c.period == period, tt.c.metric == metric, _same_group(sku_group_id),
            tt.c.superseded_at.is_(None))
    current = db.session.execute(sa.select(tt.c.id, tt.c.value).where(*live)).first()
    if current is not None and current.value == value:
        return db.session.get(PartnerTarget, current.id)
    now = now_utc()
    # Compare-and-set on the live row: of two racing changes one supersedes it, the other finds nothing
    # here and its INSERT of the same version meets the unique index.
    old = db.session.execute(sa.update(tt).where(*live).values(superseded_at=now)
                             .returning(tt.c.version)).scalar()
    row = PartnerTarget(partner_id=partner_id, period=period, metric=metric, value=value, sku_group_id=sku_group_id,
                        version=(old or _last_version(partner_id, period, metric, sku_group_id)) + 1,
                        created_by_id=principal.user_id, created_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def _same_group(sku_group_id: int | None):
    col = PartnerTarget.__table__.c.sku_group_id
    return col.is_(None) if sku_group_id is None else col == sku_group_id


def _last_version(partner_id: int, period: str, metric: str, sku_group_id: int | None = None) -> int:
    tt = PartnerTarget.__table__
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(tt.c.version), 0))
                             .where(tt.c.partner_id == partner_id, tt.c.period == period, tt.c.metric == metric,
                                    _same_group(sku_group_id)))


# --- actuals -----------------------------------------------------------------------------------------------

def _sell_through_facts(start: datetime, end: datetime, skus=None) -> sa.Subquery:
    """(partner_id, agent_id, store_id, units) of every fact of the month that moves sell-through (of the SKUs
    `skus` selects, when given)."""
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
    if skus is not None:
        sells = sells.where(s.c.sku_id.in_(skus))
        undos = undos.where(s.c.sku_id.in_(skus))
        returns = returns.where(s.c.sku_id.in_(skus))
        undone_returns = undone_returns.where(s.c.sku_id.in_(skus))
    return sa.union_all(sells, undos, returns, undone_returns).subquery("facts")


def _by_partner(facts: sa.Subquery, partner_ids: list[int], *columns) -> sa.Select:
    """The facts once under their distributor and once under its agent, for the asked partners."""
    as_partner = sa.select(facts.c.partner_id.label("pid"), *[facts.c[c] for c in columns]).where(
        facts.c.partner_id.in_(partner_ids))
    as_agent = sa.select(facts.c.agent_id.label("pid"), *[facts.c[c] for c in columns]).where(
        facts.c.agent_id.in_(partner_ids))
    return sa.union_all(as_partner, as_agent).subquery("attributed")


def actuals(partner_ids: list[int], period: str, sku_group_id: int | None = None) -> dict[tuple[int, str], int]:
    """{(partner_id, metric): actual} for these partners and month, every metric, zero where nothing happened; of
    one SKU group's members when `sku_group_id` is given (no new stores then: they are not counted by SKU)."""
    start, end = month_bounds(period)
    metrics = METRICS if sku_group_id is None else tuple(m for m in METRICS if m != "new_stores")
    out = {(p, m): 0 for p in partner_ids for m in metrics}
    if not partner_ids:
        return out
    members = None
    if sku_group_id is not None:
        members = sa.select(SkuGroupMember.sku_id).where(SkuGroupMember.group_id == sku_group_id).scalar_subquery()
    facts = _sell_through_facts(start, end, members)
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
    net = orders_t.c.paid_fen - orders_t.c.refunded_fen
    if members is None:
        orders = sa.select(orders_t.c.routed_partner_id.label("partner_id"),
                           orders_t.c.routed_agent_id.label("agent_id"), net.label("fen")).where(paid)
    else:
        lt = OrderLine.__table__
        in_group = sa.case((lt.c.sku_id.in_(members), lt.c.amount_fen), else_=0)
        shares = (sa.select(lt.c.order_id, sa.func.sum(in_group).label("group_fen"),
                            sa.func.sum(lt.c.amount_fen).label("lines_fen"))
                  .group_by(lt.c.order_id).subquery("shares"))
        orders = (sa.select(orders_t.c.routed_partner_id.label("partner_id"),
                            orders_t.c.routed_agent_id.label("agent_id"),
                            (net * shares.c.group_fen / shares.c.lines_fen).label("fen"))
                  .select_from(orders_t.join(shares, shares.c.order_id == orders_t.c.id))
                  .where(paid, shares.c.group_fen > 0, shares.c.lines_fen > 0))
    orders = orders.subquery("paid_orders")
    att = _by_partner(orders, partner_ids, "fen")
    for pid, fen in db.session.execute(sa.select(att.c.pid, sa.func.sum(att.c.fen)).group_by(att.c.pid)):
        out[(pid, "sell_in_fen")] = int(fen or 0)
    if sku_group_id is not None:
        return out

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
    stmt = (sa.select(PartnerTarget, Partner, SkuGroup.name)
            .join(Partner, Partner.id == PartnerTarget.partner_id)
            .outerjoin(SkuGroup, SkuGroup.id == PartnerTarget.sku_group_id)
            .where(PartnerTarget.period == period, PartnerTarget.superseded_at.is_(None),
                   visible_partners_condition(principal, action))
            .order_by(Partner.path, PartnerTarget.metric, sa.func.coalesce(PartnerTarget.sku_group_id, 0)))
    if partner_id is not None:
        stmt = stmt.where(PartnerTarget.partner_id == partner_id)
    rows = db.session.execute(stmt).all()
    got: dict[int | None, dict[tuple[int, str], int]] = {}
    for group_id in {t.sku_group_id for t, _, _ in rows}:
        got[group_id] = actuals(sorted({t.partner_id for t, _, _ in rows if t.sku_group_id == group_id}), period,
                                group_id)
    out = []
    for t, p, group_name in rows:
        actual = got[t.sku_group_id][(t.partner_id, t.metric)]
        out.append({"id": t.id, "partner_id": p.id, "partner_code": p.code, "partner_name": p.name,
                    "partner_kind": p.kind, "period": t.period, "metric": t.metric,
                    "metric_name": METRIC_NAMES[t.metric], "sku_group_id": t.sku_group_id,
                    "sku_group_name": group_name, "target": t.value, "actual": actual,
                    "variance": actual - t.value,
                    "attainment_bp": actual * 10000 // t.value if t.value else None,
                    "version": t.version, "set_at": t.created_at})
    return out


def target_history(principal: Principal, partner_id: int, period: str, metric: str,
                   sku_group_id: int | None = None) -> list[PartnerTarget]:
    """Every version of one target, oldest first."""
    check_period(period)
    _check(metric, 0)
    get_partner_for(principal, partner_id)
    return list(db.session.scalars(sa.select(PartnerTarget).where(
        PartnerTarget.partner_id == partner_id, PartnerTarget.period == period, PartnerTarget.metric == metric,
        _same_group(sku_group_id)).order_by(PartnerTarget.version)))


# --- SKU groups and templates --------------------------------------------------------------------------------

def create_sku_group(principal: Principal, *, code: str, name: str, sku_ids: list[int]) -> dict[str, Any]:
    """A named set of SKUs for targets; 409 `sku_group_exists` for a code in use, 422 `unknown_skus`."""
    authorize_action(principal, "hq.write")
    code, name = (code or "").strip(), (name or "").strip()
    if not code or not name:
        raise ValidationFailed("商品组要有编号和名称", code="sku_group_name_missing")
    wanted = sorted(set(sku_ids))
    if not wanted:
        raise ValidationFailed("商品组至少要有一个商品", code="sku_group_empty")
    try:
        with transaction():
            found = set(db.session.scalars(sa.select(Sku.id).where(Sku.id.in_(wanted))))
            missing = [i for i in wanted if i not in found]
            if missing:
                raise ValidationFailed("有的商品不存在", code="unknown_skus", details={"sku_ids": missing})
            group = SkuGroup(code=code, name=name)
            db.session.add(group)
            db.session.flush()
            db.session.add_all(SkuGroupMember(group_id=group.id, sku_id=i) for i in wanted)
            db.session.flush()
            return _group_answer(group, wanted)
    except IntegrityError:
        raise Conflict("这个商品组编号已经有了", code="sku_group_exists", details={"code": code}) from None


def list_sku_groups(principal: Principal) -> list[dict[str, Any]]:
    authorize_action(principal, "hq.read")
    groups = list(db.session.scalars(sa.select(SkuGroup).order_by(SkuGroup.code)))
    members: dict[int, list[int]] = {}
    for gid, sid in db.session.execute(sa.select(SkuGroupMember.group_id, SkuGroupMember.sku_id)
                                       .order_by(SkuGroupMember.sku_id)):
        members.setdefault(gid, []).append(sid)
    return [_group_answer(g, members.get(g.id, [])) for g in groups]


def _group_answer(group: SkuGroup, sku_ids: list[int]) -> dict[str, Any]:
    return {"id": group.id, "code": group.code, "name": group.name, "sku_ids": sku_ids}


def create_template(principal: Principal, *, name: str, shares_bp: list[int]) -> TargetTemplate:
    """Twelve monthly shares in basis points that total exactly 10,000 (100%); 422 `template_not_100` else."""
    authorize_action(principal, "hq.write")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("模板要有名称", code="template_name_missing")
    if (len(shares_bp) != 12 or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in shares_bp)):
        raise ValidationFailed("要给出 12 个月的比例（基点，不小于 0）", code="template_needs_12_months",
                               details={"shares_bp": shares_bp})
    if sum(shares_bp) != 10000:
        raise ValidationFailed(f"12 个月的比例加起来要正好是 100%（现在是 {sum(shares_bp) / 100:g}%）",
                               code="template_not_100", details={"total_bp": sum(shares_bp)})
    try:
        with transaction():
            template = TargetTemplate(name=name, shares_bp=list(shares_bp))
            db.session.add(template)
            db.session.flush()
            return template
    except IntegrityError:
        raise Conflict("这个模板名称已经有了", code="template_exists", details={"name": name}) from None


def list_templates(principal: Principal) -> list[TargetTemplate]:
    authorize_action(principal, "hq.read")
    return list(db.session.scalars(sa.select(TargetTemplate).order_by(TargetTemplate.name)))
