"""Reads for plans and transfers as people read them (names, not ids), and the export columns of each table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.analytics.models import AllocationLine, AllocationPlan, TransferOrder
from app.catalog.models import Sku
from app.catalog.units import sum_by_unit
from app.errors import NotFound
from app.extensions import db
from app.inventory.models import Warehouse

TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    # Quantities are written per sellable unit ("120 提 · 30 袋"): a 提 and a 袋 are never added up in a column.
    "sell_through": [("label", "分组"), ("units_text", "销量（按单位）"), ("amount_yuan", "销售额（元）"),
                     ("previous_units_text", "上期销量（按单位）"), ("previous_amount_yuan", "上期销售额（元）"),
                     ("change_pct", "环比（%，单位不一时按销售额）")],
    "store_stock": [("store_name", "门店"), ("city_name", "城市"), ("distributor_name", "分销商"),
                    ("sku_name", "商品"), ("on_hand", "库存"), ("unit", "单位"), ("daily_rate", "日均销量"),
                    ("days_of_cover", "可售天数")],
    "sell_in": [("label", "分组"), ("sell_in_text", "进货（按单位）"), ("sell_through_text", "动销（按单位）"),
                ("rates_text", "动销率（按单位）")],
    "slow_stores": [("store_name", "门店"), ("city_name", "城市"), ("distributor_name", "分销商"),
                    ("on_hand_text", "库存（按单位）"), ("units_text", "期内销量（按单位）"),
                    ("units_per_day_text", "日均销量（按单位）"), ("days_of_cover", "可售天数"),
                    ("last_sale_day", "最近售出日")],
    "distributor_ranking": [("rank", "排名"), ("label", "分销商"), ("units_text", "销量（按单位）"),
                            ("amount_yuan", "销售额（元）"), ("selling_stores", "动销门店数"),
                            ("previous_units_text", "上期销量（按单位）"),
                            ("change_pct", "环比（%，单位不一时按销售额）")],
    "production": [("sku_name", "商品"), ("stores", "在卖门店数"), ("daily_rate", "日均销量"),
                   ("forecast_units", "预测需求"),
                   ("safety_units", "安全库存"), ("network_units", "全网库存"), ("suggested_units", "建议生产"),
                   ("explanation", "说明")],
}


def _names(model, ids) -> dict[int, str]:
    ids = list(set(ids))
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(model.id, model.name).where(model.id.in_(ids))).all())


def _unit_of(sku_ids) -> dict[int, str]:
    ids = list(set(sku_ids))
    return dict(db.session.execute(sa.select(Sku.id, Sku.unit).where(Sku.id.in_(ids))).all()) if ids else {}


def plan_summary(plan: AllocationPlan, totals: tuple[int, int] | None = None,
                 by_unit: list[dict] | None = None) -> dict[str, Any]:
    """A plan's figures; `total_units` counts every unit alike, `units_by_unit` is the total per unit to show."""
    units, lines = totals if totals is not None else (sum(ln.quantity for ln in plan.lines), len(plan.lines))
    if by_unit is None:
        unit = _unit_of(ln.sku_id for ln in plan.lines)
        by_unit = sum_by_unit((unit.get(ln.sku_id, ""), ln.quantity) for ln in plan.lines)
    return {"units_by_unit": by_unit,
            "id": plan.id, "status": plan.status, "target_cover_days": plan.target_cover_days,
            "alpha": plan.alpha_milli / 1000, "history_days": plan.history_days, "as_of": plan.as_of.isoformat(),
            "note": plan.note, "created_at": plan.created_at.isoformat(),
            "approved_at": plan.approved_at.isoformat() if plan.approved_at else None,
            "total_units": int(units or 0), "line_count": int(lines or 0)}


def plan_detail(plan_id: int) -> dict[str, Any]:
    """A plan with its lines (warehouse and SKU names) and the transfers its approval made."""
    plan = db.session.get(AllocationPlan, plan_id)
    if plan is None:
        raise NotFound("找不到这个调拨计划", code="plan_not_found")
    wh = _names(Warehouse, [ln.warehouse_id for ln in plan.lines] + [plan.central_warehouse_id])
    skus = {s.id: s for s in db.session.scalars(sa.select(Sku).where(Sku.id.in_({ln.sku_id for ln in plan.lines})))}
    out = plan_summary(plan)
    out["central_warehouse"] = {"id": plan.central_warehouse_id, "name": wh.get(plan.central_warehouse_id)}
    out["lines"] = [{
        "id": ln.id, "warehouse_id": ln.warehouse_id, "warehouse_name": wh.get(ln.warehouse_id),
        "sku_id": ln.sku_id, "sku_name": skus[ln.sku_id].name, "case_pack": skus[ln.sku_id].case_pack,
        "unit": skus[ln.sku_id].unit, "case_unit": skus[ln.sku_id].case_unit,
        "daily_rate": ln.daily_rate_milli / 1000, "on_hand": ln.on_hand, "in_transit": ln.in_transit,
        "cover_before": None if ln.daily_rate_milli == 0 else round(
            (ln.on_hand + ln.in_transit) * 1000 / ln.daily_rate_milli, 1),
        "suggested": ln.suggested, "quantity": ln.quantity,
        "cover_after": None if ln.cover_after_milli is None else round(ln.cover_after_milli / 1000, 1),
    } for ln in sorted(plan.lines, key=lambda ln: (ln.sku_id, ln.warehouse_id))]
    out["transfers"] = [transfer_detail(t) for t in db.session.scalars(
        sa.select(TransferOrder.id).where(TransferOrder.plan_id == plan.id).order_by(TransferOrder.id))]
    return out


def list_plans(*, page: int = 1, page_size: int = 20) -> dict[str, Any]:
    total = db.session.scalar(sa.select(sa.func.count(AllocationPlan.id))) or 0
    plans = list(db.session.scalars(sa.select(AllocationPlan).order_by(AllocationPlan.id.desc())
                                    .limit(page_size).offset((page - 1) * page_size)))
    sums = {pid: (u, n) for pid, u, n in db.session.execute(
        sa.select(AllocationLine.plan_id, sa.func.sum(AllocationLine.quantity), sa.func.count(AllocationLine.id))
        .where(AllocationLine.plan_id.in_([p.id for p in plans] or [0])).group_by(AllocationLine.plan_id))}
    per_unit: dict[int, list[tuple[str, int]]] = {}
    for pid, unit, n in db.session.execute(
            sa.select(AllocationLine.plan_id, Sku.unit, sa.func.sum(AllocationLine.quantity))
            .join(Sku, Sku.id == AllocationLine.sku_id)
            .where(AllocationLine.plan_id.in_([p.id for p in plans] or [0]))
            .group_by(AllocationLine.plan_id, Sku.unit)):
        per_unit.setdefault(pid, []).append((unit, n))
    return {"items": [plan_summary(p, sums.get(p.id, (0, 0)), sum_by_unit(per_unit.get(p.id, []))) for p in plans],
            "page": page,
            "page_size": page_size, "total": total}


def transfer_detail(transfer_id: int) -> dict[str, Any] | None:
    t = db.session.get(TransferOrder, transfer_id)
    if t is None:
        return None
    wh = _names(Warehouse, [t.from_warehouse_id, t.to_warehouse_id])
    skus = _names(Sku, [ln.sku_id for ln in t.lines])
    unit = _unit_of(ln.sku_id for ln in t.lines)
    return {"units_by_unit": sum_by_unit((unit.get(ln.sku_id, ""), ln.quantity) for ln in t.lines),
            "id": t.id, "plan_id": t.plan_id, "status": t.status, "from_warehouse_id": t.from_warehouse_id,
            "from_warehouse_name": wh.get(t.from_warehouse_id), "to_warehouse_id": t.to_warehouse_id,
            "to_warehouse_name": wh.get(t.to_warehouse_id), "created_at": t.created_at.isoformat(),
            "received_at": t.received_at.isoformat() if t.received_at else None,
            "lines": [{"sku_id": ln.sku_id, "sku_name": skus.get(ln.sku_id), "quantity": ln.quantity,
                       "unit": unit.get(ln.sku_id, "")} for ln in t.lines],
            "total_units": sum(ln.quantity for ln in t.lines)}


def list_transfers(*, page: int = 1, page_size: int = 20, status: str | None = None) -> dict[str, Any]:
    stmt = sa.select(TransferOrder.id).order_by(TransferOrder.id.desc())
    if status:
        stmt = stmt.where(TransferOrder.status == status)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
    ids = list(db.session.scalars(stmt.limit(page_size).offset((page - 1) * page_size)))
    return {"items": [transfer_detail(i) for i in ids], "page": page, "page_size": page_size, "total": total}
