"""The shipping desk: what one scan of a case (or unit) code answers while an operator picks an order.

A read, nothing is written: the scans of a shipment being picked are kept by the page, which sends them with each
new scan and then all of them to `fulfilment.ship_order` (which checks them all again, with the rows locked). Each
answer says at once what the code holds (SKU and units) and what the order still needs, or refuses the code with
a stable reason and one Chinese sentence: not one of ours, scanned already, a SKU the order does not have, more
than the order still needs, not on this warehouse's shelves (in another warehouse, shipped, at a store, sold).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.codes.models import Code
from app.codes.parse import ScanParseError, grouped, normalize_serial, parse_scan
from app.core.security import Principal, authorize
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders import states
from app.orders.models import Order
from app.orders.queries import get_order_for

MAX_SCANNED = 500

# reason → what the operator reads (the sound on the page goes with every refusal).
REFUSALS = {
    "order_not_ready": "订单{status}，现在不能发货",
    "not_a_code": "{message}",
    "unknown_code": "系统里没有这个码，请核对后再扫",
    "duplicate": "这箱刚才已经扫过了，不要重复扫",
    "duplicate_contents": "这箱里的货刚才已经扫过了，不要重复扫",
    "wrong_sku": "这是{sku}，这张订单没有订这个商品",
    "over_quantity": "这箱有 {units} {unit}{sku}，订单只还差 {left} {unit}，多了",
    "already_enough": "{sku}已经够了，不用再发",
    "other_warehouse": "这箱在{where}，不在{warehouse}，不能从这里发",
    "not_put_away": "这箱还没有入库，不能发货",
    "in_transit": "这箱已经发出了（发往{store}），不能再发",
    "at_store": "这箱已经在门店{store}了，不能再发",
    "sold": "这箱的货已经卖出了",
    "not_shippable": "这箱现在是{state}状态，不能发货",
    "case_incomplete": "这箱里有货已经不在本仓（拆箱发走或卖掉了），请扫单品码",
}

STATE_NAMES = {"issued": "未装箱", "packed": "已装箱未入库", "in_warehouse": "在库", "in_transit": "在途",
               "in_store": "在店", "sold": "已售", "returned": "已退回", "voided": "已作废", "missing": "盘点缺失"}


def _normal(text: str) -> str | None:
    try:
        return normalize_serial(text)
    except ScanParseError:
        return None


def _contents(codes: list[Code]) -> dict[int, list[Code]]:
    """The unit codes of each code (a case's units, a unit itself), by code id."""
    out: dict[int, list[Code]] = {c.id: [c] for c in codes if c.kind == "unit"}
    cases = [c.id for c in codes if c.kind == "case"]
    for c in cases:
        out[c] = []
    if cases:
        for unit in db.session.scalars(sa.select(Code).where(Code.case_id.in_(cases)).order_by(Code.id)):
            out[unit.case_id].append(unit)
    return out


def needs(order: Order, scanned_units: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """What each line of the order still needs: ordered, shipped, scanned into this shipment, still missing."""
    scanned_units = scanned_units or {}
    rows = []
    for line in order.lines:
        scanned = scanned_units.get(line.sku_id, 0)
        rows.append({"sku_id": line.sku_id, "sku_name": line.sku.name, "unit": line.sku.unit,
                     "serialized": line.sku.serialized, "ordered": line.quantity, "shipped": line.shipped_quantity,
                     "scanned": scanned, "missing": max(0, line.quantity - line.shipped_quantity - scanned)})
    return rows


def desk(principal: Principal, order_id: int) -> dict[str, Any]:
    """The shipping desk of an order before any scan: whether it can ship now (else why) and what it needs."""
    order = get_order_for(principal, order_id, "warehouse.operate")
    ready = order.status in (states.ALLOCATED, states.SHIPPED) and order.warehouse_id is not None
    if ready:
        authorize(principal, "warehouse.operate", warehouse_id=order.warehouse_id)
    rows = needs(order)
    return {"ready": ready and any(r["missing"] for r in rows),
            "message": "" if ready else REFUSALS["order_not_ready"].format(
                status=states.STATUS_NAMES.get(order.status, order.status)),
            "needs": rows}


def check_scan(principal: Principal, order_id: int, text: str, *, scanned: list[str]) -> dict[str, Any]:
    """Check one scanned code against the order being picked and the codes scanned into it so far.

    Answers `accepted`, the `reason` and `message` (a refusal's reason is a key of REFUSALS), the code's
    `serial`, `kind`, SKU and `units`, the `scanned` list to keep (the new code added when accepted) and the
    order's `needs` after this scan. 404 / 403 for an order the caller may not work on.
    """
    order = get_order_for(principal, order_id, "warehouse.operate")
    answer: dict[str, Any] = {"accepted": False, "reason": None, "message": "", "serial": None, "serial_grouped": None,
                              "kind": None, "sku_id": None, "sku_name": None, "unit": None, "units": 0}
    kept = [s for s in dict.fromkeys(_normal(s) for s in scanned[:MAX_SCANNED]) if s]
    known = list(db.session.scalars(sa.select(Code).where(Code.serial.in_(kept)))) if kept else []
    contents = _contents(known)
    scanned_unit_ids = {u.id for units in contents.values() for u in units}
    scanned_units: dict[int, int] = {}
    for units in contents.values():
        for u in units:
            scanned_units[u.sku_id] = scanned_units.get(u.sku_id, 0) + 1

    def refuse(reason: str, **values: Any) -> dict[str, Any]:
        answer.update(reason=reason, message=REFUSALS[reason].format(**values), scanned=kept,
                      needs=needs(order, scanned_units))
        return answer

    if order.status not in (states.ALLOCATED, states.SHIPPED) or order.warehouse_id is None:
        return refuse("order_not_ready", status=states.STATUS_NAMES.get(order.status, order.status))
    authorize(principal, "warehouse.operate", warehouse_id=order.warehouse_id)
    try:
        serial = parse_scan(text).serial
    except ScanParseError as exc:
        return refuse("not_a_code", message=exc.message)
    if not serial:  # a bare GTIN: goods, not one case
        return refuse("unknown_code")
    code = db.session.scalar(sa.select(Code).where(Code.serial == serial))
    if code is None:
        return refuse("unknown_code")
    sku = db.session.get(Sku, code.sku_id)
    units = _contents([code])[code.id]
    answer.update(serial=code.serial, serial_grouped=grouped(code.serial), kind=code.kind, sku_id=sku.id,
                  sku_name=sku.name, unit=sku.unit, units=len(units))
    if code.serial in kept:
        return refuse("duplicate")
    if scanned_unit_ids & {u.id for u in units} or (code.case_id and code.case_id in {c.id for c in known}):
        return refuse("duplicate_contents")
    line = next((ln for ln in order.lines if ln.sku_id == sku.id), None)
    if line is None:
        return refuse("wrong_sku", sku=sku.name)
    wh = db.session.get(Warehouse, order.warehouse_id)
    refusal = _where_refusal(code, units, wh)
    if refusal:
        return refuse(refusal[0], **refusal[1])
    left = line.quantity - line.shipped_quantity - scanned_units.get(sku.id, 0)
    if left <= 0:
        return refuse("already_enough", sku=sku.name)
    if len(units) > left:
        return refuse("over_quantity", units=len(units), unit=sku.unit, sku=sku.name, left=left)
    kept.append(code.serial)
    scanned_units[sku.id] = scanned_units.get(sku.id, 0) + len(units)
    missing = left - len(units)
    answer.update(accepted=True, reason="accepted", scanned=kept, needs=needs(order, scanned_units),
                  message=f"{'箱码' if code.kind == 'case' else '单品码'}：{sku.name} {len(units)} {sku.unit}，"
                          + (f"{sku.name}还差 {missing} {sku.unit}" if missing else f"{sku.name}已经够了"))
    return answer


def _where_refusal(code: Code, units: list[Code], wh: Warehouse) -> tuple[str, dict[str, Any]] | None:
    """Why the code cannot leave this warehouse now, if it cannot."""
    if code.state == "in_warehouse" and code.location_id != wh.location_id:
        where = db.session.scalar(sa.select(Warehouse.name).where(Warehouse.location_id == code.location_id))
        return "other_warehouse", {"where": where or "别的仓库", "warehouse": wh.name}
    if code.state in ("issued", "packed"):
        return "not_put_away", {}
    if code.state == "in_transit":
        return "in_transit", {"store": _store_name(code.destination_store_id)}
    if code.state in ("in_store", "returned", "missing"):
        return "at_store", {"store": _store_name(code.store_id)}
    if code.state == "sold":
        return "sold", {}
    if code.state != "in_warehouse":
        return "not_shippable", {"state": STATE_NAMES.get(code.state, code.state)}
    if not units or any(u.state != "in_warehouse" or u.location_id != wh.location_id for u in units):
        return "case_incomplete", {}
    return None


def _store_name(store_id: int | None) -> str:
    if store_id is None:
        return "门店"
    return db.session.scalar(sa.select(Store.name).where(Store.id == store_id)) or "门店"
