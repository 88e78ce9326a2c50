"""Allocation plans and transfer orders: create, edit, approve (stock leaves central), receive (stock arrives).

Each write takes the caller and checks them itself (`app.core.security`): plans are HQ work (`hq.write`), a
transfer is received by an operator of the warehouse it goes to (`warehouse.operate` there). The HQ API and the
console call these same functions, so they allow the same people.

Approving and receiving change several stock levels: they lock them first, in the lock order of
`app.inventory.services`, and run again if PostgreSQL still aborts them for a deadlock (`app.core.retry`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import sqlalchemy as sa

from app.analytics import allocation, rollups
from app.analytics.models import AllocationLine, AllocationPlan, TransferLine, TransferOrder
from app.analytics.queries import smoothed_rates
from app.catalog.models import Sku
from app.catalog.units import pack_text
from app.core.clock import now_utc, today_business
from app.core.retry import retried
from app.core.security import Principal, authorize, authorize_action
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.inventory.models import Location, StockLevel, Warehouse, WarehouseCity
from app.inventory.queries import get_central_warehouse
from app.inventory.services import lock_levels, move_stock, transit_location_id


def _levels(location_ids: list[int]) -> dict[tuple[int, int], tuple[int, int]]:
    if not location_ids:
        return {}
    rows = db.session.execute(sa.select(StockLevel.location_id, StockLevel.sku_id, StockLevel.on_hand,
                                        StockLevel.reserved).where(StockLevel.location_id.in_(location_ids)))
    return {(loc, sku): (on, res) for loc, sku, on, res in rows}


def build_plan_inputs(*, as_of: date, history_days: int, alpha: float,
                      sku_ids: list[int] | None = None) -> tuple[Warehouse, list[Warehouse], list[Sku], dict]:
    """Everything the math needs, read in a few queries: rates per warehouse, stock, transit, central."""
    central = get_central_warehouse()
    subs = list(db.session.scalars(sa.select(Warehouse).where(Warehouse.kind == "sub").order_by(Warehouse.id)))
    sku_stmt = sa.select(Sku).where(Sku.is_active.is_(True)).order_by(Sku.id)
    if sku_ids:
        sku_stmt = sku_stmt.where(Sku.id.in_(sku_ids))
    skus = list(db.session.scalars(sku_stmt))
    city_to_wh = dict(db.session.execute(sa.select(WarehouseCity.city_code, WarehouseCity.warehouse_id)).all())
    wh_rate: dict[tuple[int, int], float] = defaultdict(float)
    for (city, sku_id), rate in smoothed_rates(as_of=as_of, by="city", history_days=history_days, alpha=alpha,
                                               sku_ids=[s.id for s in skus]).items():
        if city in city_to_wh:
            wh_rate[(city_to_wh[city], sku_id)] += rate
    transit = dict(db.session.execute(sa.select(Location.destination_id, Location.id)
                                      .where(Location.destination_id.in_([w.location_id for w in subs]))).all())
    levels = _levels([central.location_id, *[w.location_id for w in subs], *transit.values()])
    inputs = []
    for sku in skus:
        on, res = levels.get((central.location_id, sku.id), (0, 0))
        targets = [allocation.Target(
            warehouse_id=w.id, daily_rate=wh_rate.get((w.id, sku.id), 0.0),
            on_hand=levels.get((w.location_id, sku.id), (0, 0))[0],
            in_transit=levels.get((transit[w.location_id], sku.id), (0, 0))[0] if w.location_id in transit else 0)
            for w in subs]
        inputs.append(allocation.SkuInput(sku_id=sku.id, case_pack=sku.case_pack, central_available=on - res,
                                          targets=targets))
    return central, subs, skus, {"inputs": inputs}


def create_plan(principal: Principal, *, target_cover_days: int, history_days: int = allocation.DEFAULT_HISTORY_DAYS,
                alpha: float = allocation.DEFAULT_ALPHA, sku_ids: list[int] | None = None,
                note: str = "") -> AllocationPlan:
    """Compute a draft plan from today's sell-through and stock; lines with nothing to send are kept out."""
    authorize_action(principal, "hq.write")
    as_of = today_business() - timedelta(days=1)  # the last complete day
    rollups.fold()  # its sales reach the rollups before the plan reads them
    with transaction():
        central, _subs, _skus, data = build_plan_inputs(as_of=as_of, history_days=history_days, alpha=alpha,
                                                        sku_ids=sku_ids)
        plan = AllocationPlan(central_warehouse_id=central.id, target_cover_days=target_cover_days,
                              alpha_milli=round(alpha * 1000), history_days=history_days, as_of=as_of, note=note,
                              created_by_id=principal.user_id)
        result = allocation.allocate(data["inputs"], target_cover_days=target_cover_days)
        for s in data["inputs"]:
            by_wh = {t.warehouse_id: t for t in s.targets}
            for a in result[s.sku_id]:
                t = by_wh[a.warehouse_id]
                if t.daily_rate <= 0 and a.quantity == 0:
                    continue  # nothing sells there: not worth a line
                plan.lines.append(AllocationLine(
                    warehouse_id=a.warehouse_id, sku_id=s.sku_id, daily_rate_milli=round(t.daily_rate * 1000),
                    on_hand=t.on_hand, in_transit=t.in_transit, suggested=a.quantity, quantity=a.quantity,
                    cover_after_milli=None if a.cover_after is None else round(a.cover_after * 1000)))
        db.session.add(plan)
        db.session.flush()
    return plan


def get_plan(plan_id: int) -> AllocationPlan:
    plan = db.session.get(AllocationPlan, plan_id)
    if plan is None:
        raise NotFound("找不到这个调拨计划", code="plan_not_found")
    return plan


def edit_line(principal: Principal, *, plan_id: int, line_id: int, quantity: int) -> AllocationLine:
    """Change one line's quantity (whole cases) while the plan is a draft."""
    authorize_action(principal, "hq.write")
    with transaction():
        plan = get_plan(plan_id)
        line = db.session.get(AllocationLine, line_id)
        if line is None or line.plan_id != plan.id:
            raise NotFound("找不到这一行", code="line_not_found")
        if plan.status != "draft":
            raise Conflict("计划已批准，不能再改", code="plan_not_draft")
        sku = db.session.get(Sku, line.sku_id)
        if quantity < 0 or quantity % sku.case_pack:
            raise ValidationFailed(f"数量要是整{sku.case_unit}（{pack_text(sku.case_pack, sku.unit, sku.case_unit)}）",
                                   code="not_whole_cases", details={"case_pack": sku.case_pack})
        line.quantity = quantity
        rate = line.daily_rate_milli / 1000
        cover = allocation.cover_days(line.on_hand + line.in_transit + quantity, rate)
        line.cover_after_milli = None if cover is None else round(cover * 1000)
    return line


@retried
def approve_plan(principal: Principal, *, plan_id: int) -> AllocationPlan:
    """Approve: one transfer order per sub-warehouse; stock leaves central and goes in transit, in one transaction."""
    authorize_action(principal, "hq.write")
    user_id = principal.user_id
    with transaction():
        plan = db.session.scalar(sa.select(AllocationPlan).where(AllocationPlan.id == plan_id).with_for_update())
        if plan is None:
            raise NotFound("找不到这个调拨计划", code="plan_not_found")
        if plan.status != "draft":
            raise Conflict("这个计划已经批准过了", code="plan_already_approved")
        central = db.session.get(Warehouse, plan.central_warehouse_id)
        by_wh: dict[int, list[AllocationLine]] = defaultdict(list)
        for line in plan.lines:
            if line.quantity > 0:
                by_wh[line.warehouse_id].append(line)
        transits = {wh_id: transit_location_id(db.session.get(Warehouse, wh_id).location_id) for wh_id in by_wh}
        lock_levels([(loc, ln.sku_id) for wh_id, lines in by_wh.items() for ln in lines
                     for loc in (central.location_id, transits[wh_id])])
        for wh_id, lines in sorted(by_wh.items()):
            sub = db.session.get(Warehouse, wh_id)
            transfer = TransferOrder(plan_id=plan.id, from_warehouse_id=central.id, to_warehouse_id=sub.id,
                                     lines=[TransferLine(sku_id=ln.sku_id, quantity=ln.quantity) for ln in lines])
            db.session.add(transfer)
            db.session.flush()
            transit = transits[wh_id]
            for ln in lines:
                # InsufficientStock rolls the whole approval back: stock moved since the plan was made.
                move_stock(location_id=central.location_id, sku_id=ln.sku_id, on_hand=-ln.quantity,
                           kind="transfer_out", ref_type="transfer", ref_id=transfer.id, user_id=user_id,
                           reason=f"调拨计划 #{plan.id}")
                move_stock(location_id=transit, sku_id=ln.sku_id, on_hand=ln.quantity, kind="transfer_out",
                           ref_type="transfer", ref_id=transfer.id, user_id=user_id, reason=f"调拨计划 #{plan.id}")
        plan.status = "approved"
        plan.approved_by_id = user_id
        plan.approved_at = now_utc()
    return plan


@retried
def receive_transfer(principal: Principal, *, transfer_id: int) -> TransferOrder:
    """The sub-warehouse receives a transfer: transit → sub-warehouse stock, by an operator of that warehouse."""
    authorize_action(principal, "warehouse.operate")
    user_id = principal.user_id
    with transaction():
        transfer = db.session.scalar(sa.select(TransferOrder).where(TransferOrder.id == transfer_id)
                                     .with_for_update())
        if transfer is None:
            raise NotFound("找不到这张调拨单", code="transfer_not_found")
        authorize(principal, "warehouse.operate", warehouse_id=transfer.to_warehouse_id)
        if transfer.status != "in_transit":
            raise Conflict("这张调拨单已经收货了", code="transfer_already_received")
        sub = db.session.get(Warehouse, transfer.to_warehouse_id)
        transit = transit_location_id(sub.location_id)
        lock_levels([(loc, ln.sku_id) for ln in transfer.lines for loc in (transit, sub.location_id)])
        for ln in transfer.lines:
            move_stock(location_id=transit, sku_id=ln.sku_id, on_hand=-ln.quantity, kind="transfer_in",
                       ref_type="transfer", ref_id=transfer.id, user_id=user_id)
            move_stock(location_id=sub.location_id, sku_id=ln.sku_id, on_hand=ln.quantity, kind="transfer_in",
                       ref_type="transfer", ref_id=transfer.id, user_id=user_id)
        transfer.status = "received"
        transfer.received_at = now_utc()
        transfer.received_by_id = user_id
    return transfer
