"""Fulfilment: allocating an order's goods to a warehouse, shipping them, and their receipt at the store (which
delivers and completes the order).

Each public function is one use case in one transaction. The order is locked before its codes and its stock (the
lock order in `app.inventory.services`); these use cases lock stock as well, so they run again if PostgreSQL still
aborts one for a deadlock (`app.core.retry`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.catalog.models import Sku
from app.core.clock import now_utc
from app.core.events import units_received, units_shipped
from app.core.retry import retried
from app.core.security import Principal, authorize, authorize_store
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.inventory.models import Warehouse, WarehouseCity
from app.inventory.queries import get_central_warehouse
from app.inventory.services import InsufficientStock, get_level, lock_levels, move_stock, transit_location_id
from app.orders import states
from app.orders.commission import book_commission
from app.orders.locks import lock_order, require_store
from app.orders.models import Order, Shipment, ShipmentLine
from app.orders.notifications import notify_after_commit
from app.orders.queries import get_order_for


def _city_warehouse(city_code: str) -> Warehouse | None:
    return db.session.scalar(sa.select(Warehouse).join(WarehouseCity).where(WarehouseCity.city_code == city_code,
                                                                            Warehouse.kind == "sub"))


def _sub_with_everything(order: Order) -> Warehouse | None:
    """The store's city sub-warehouse, if it has every line of the order available now."""
    store = require_store(order.store_id)
    sub = _city_warehouse(store.city_code)
    if sub is not None and all(get_level(location_id=sub.location_id, sku_id=line.sku_id).available >= line.quantity
                               for line in order.lines):
        return sub
    return None


def suggested_warehouse(principal: Principal, order_id: int) -> dict:
    """Where `allocate_order` without a warehouse would reserve the order now, and why (for the allocate form)."""
    order = get_order_for(principal, order_id, "warehouse.operate")
    sub = _sub_with_everything(order)
    if sub is not None:
        return {"id": sub.id, "name": sub.name, "why": "门店所在城市的分仓有全部商品"}
    central = get_central_warehouse()
    return {"id": central.id, "name": central.name, "why": "城市分仓没有全部商品（或没有城市分仓），从中央仓发"}


def _reserve(order: Order, wh: Warehouse, *, user_id: int | None) -> None:
    for line in sorted(order.lines, key=lambda line: line.sku_id):  # one location: levels in the lock order
        try:
            move_stock(location_id=wh.location_id, sku_id=line.sku_id, reserved=line.quantity, kind="reserve",
                       ref_type="order", ref_id=order.id, user_id=user_id)
        except InsufficientStock as exc:
            raise InsufficientStock(f"{wh.name}库存不够，不能分配这张订单", code="insufficient_stock",
                                    details={**exc.details, "warehouse_id": wh.id}) from None
        line.reserved_quantity = line.quantity


def release_stock(order: Order, *, user_id: int | None) -> None:
    """Give back what the (locked, allocated) order reserved in its warehouse; flushes only."""
    wh = db.session.get(Warehouse, order.warehouse_id)
    for line in sorted(order.lines, key=lambda line: line.sku_id):  # one location: levels in the lock order
        if line.reserved_quantity:
            move_stock(location_id=wh.location_id, sku_id=line.sku_id, reserved=-line.reserved_quantity,
                       kind="release", ref_type="order", ref_id=order.id, user_id=user_id)
            line.reserved_quantity = 0


@retried
def allocate_order(principal: Principal, order_id: int, *, warehouse_id: int | None = None) -> Order:
    """Reserve the order's goods: the store's city sub-warehouse if it has every line, else the central one."""
    with transaction():
        order = lock_order(order_id)
        authorize_store(principal, "warehouse.operate", order.store_id)
        states.check_move(order.status, states.ALLOCATED, action="allocate")
        if any(line.shipped_quantity for line in order.lines):
            raise Conflict("已经发过货，不能换仓库", code="already_shipping")
        if order.status == states.ALLOCATED:
            # Moving the reservation: the caller must operate the warehouse it leaves as well as the one it goes to.
            authorize(principal, "warehouse.operate", warehouse_id=order.warehouse_id)
            release_stock(order, user_id=principal.user_id)
        if warehouse_id is not None:
            wh = db.session.get(Warehouse, warehouse_id)
            if wh is None:
                raise NotFound("找不到这个仓库", code="warehouse_not_found")
            _reserve(order, wh, user_id=principal.user_id)
        else:
            sub = _sub_with_everything(order)
            wh = None
            if sub is not None:
                try:
                    with db.session.begin_nested():
                        _reserve(order, sub, user_id=principal.user_id)
                    wh = sub
                except InsufficientStock:
                    # Another order took the last units between our look and our reservation: fall back.
                    for line in order.lines:
                        line.reserved_quantity = 0
            if wh is None:
                wh = get_central_warehouse()
                _reserve(order, wh, user_id=principal.user_id)
        # An operator bound to one warehouse reserves only there (the transaction rolls back otherwise).
        authorize(principal, "warehouse.operate", warehouse_id=wh.id)
        order.warehouse_id = wh.id
        order.allocated_at = now_utc()
        order.move_to(states.ALLOCATED, action="allocate", user_id=principal.user_id, note=wh.name)
        return order


@retried
def ship_order(principal: Principal, order_id: int, *, case_codes: list[str],
               lines: list[dict[str, int]] | None = None) -> Shipment:
    """Ship (part of) an allocated order: serialized goods by their codes, the others by quantity."""
    with transaction():
        order = lock_order(order_id)
        authorize_store(principal, "warehouse.operate", order.store_id)
        states.check_move(order.status, states.SHIPPED, action="ship")
        authorize(principal, "warehouse.operate", warehouse_id=order.warehouse_id)
        wh = db.session.get(Warehouse, order.warehouse_id)
        store = require_store(order.store_id)
        by_sku = {line.sku_id: line for line in order.lines}
        skus = {s.id: s for s in db.session.scalars(sa.select(Sku).where(Sku.id.in_(by_sku)))}
        quantities: dict[int, int] = {}
        if case_codes:
            from app.codes.services import ship_codes

            shipped = ship_codes(serials=case_codes, from_location_id=wh.location_id, to_store_id=store.id,
                                 order_id=order.id, user_id=principal.user_id)
            for sku_id, units in shipped.items():
                quantities[sku_id] = quantities.get(sku_id, 0) + units
        if lines is None:
            # No lines given: what remains of the goods that carry no codes ships with the cases.
            for line in order.lines:
                if not skus[line.sku_id].serialized and line.quantity > line.shipped_quantity:
                    quantities[line.sku_id] = line.quantity - line.shipped_quantity
        else:
            for item in lines:
                sku = skus.get(item["sku_id"])
                if sku is None:
                    raise ValidationFailed("订单里没有这个商品", code="sku_not_on_order",
                                           details={"sku_id": item["sku_id"]})
                if sku.serialized:
                    raise ValidationFailed(f"{sku.name}有码，请扫箱码发货", code="serialized_needs_codes",
                                           details={"sku_id": sku.id})
                if item["quantity"] < 1:
                    raise ValidationFailed("数量不对", code="bad_quantity", details={"sku_id": sku.id})
                quantities[sku.id] = quantities.get(sku.id, 0) + item["quantity"]
        if not quantities:
            raise ValidationFailed("没有可发的货", code="nothing_to_ship")
        now = now_utc()
        shipment = Shipment(order_id=order.id, warehouse_id=wh.id, case_codes=list(case_codes),
                            user_id=principal.user_id, shipped_at=now)
        transit = transit_location_id(store.location_id)
        lock_levels([(loc, sku_id) for sku_id in quantities for loc in (wh.location_id, transit)])
        for sku_id, quantity in sorted(quantities.items()):
            line = by_sku.get(sku_id)
            if line is None:
                raise Conflict("有码不属于这张订单的商品", code="codes_not_on_order", details={"sku_id": sku_id})
            if line.shipped_quantity + quantity > line.quantity:
                raise Conflict("发货数量超过订单数量", code="over_shipment",
                               details={"sku_id": sku_id, "remaining": line.quantity - line.shipped_quantity})
            move_stock(location_id=wh.location_id, sku_id=sku_id, on_hand=-quantity, reserved=-quantity,
                       kind="ship", ref_type="order", ref_id=order.id, user_id=principal.user_id)
            move_stock(location_id=transit, sku_id=sku_id, on_hand=quantity, kind="ship", ref_type="order",
                       ref_id=order.id, user_id=principal.user_id)
            line.shipped_quantity += quantity
            line.reserved_quantity -= quantity
            shipment.lines.append(ShipmentLine(sku_id=sku_id, quantity=quantity))
            units_shipped.send(None, store_id=store.id, sku_id=sku_id, quantity=quantity, at=now, order_id=order.id,
                               warehouse_id=wh.id)
        db.session.add(shipment)
        first = order.status == states.ALLOCATED
        order.move_to(states.SHIPPED, action="ship", user_id=principal.user_id)
        order.shipped_at = order.shipped_at or now
        db.session.flush()
        if first:
            notify_after_commit(order.id, "order_shipped")
        return shipment


def record_receipt(*, order_id: int, store_id: int, sku_id: int, quantity: int, at: datetime,
                   user_id: int | None = None) -> None:
    """Count units of an order that arrived at its store (called inside the scan's transaction; flushes only)."""
    order = db.session.scalar(sa.select(Order).where(Order.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    if order is None or order.store_id != store_id or quantity <= 0:
        return
    remaining = quantity
    for shipment in order.shipments:
        for sl in shipment.lines:
            if sl.sku_id == sku_id and sl.received_quantity < sl.quantity and remaining:
                take = min(remaining, sl.quantity - sl.received_quantity)
                sl.received_quantity += take
                remaining -= take
    for line in order.lines:
        if line.sku_id == sku_id:
            line.received_quantity = min(line.shipped_quantity, line.received_quantity + quantity - remaining)
    _maybe_deliver(order, at=at, user_id=user_id)


def _maybe_deliver(order: Order, *, at: datetime, user_id: int | None) -> None:
    """Delivered when everything ordered has shipped and arrived; completion follows at once (see complete)."""
    if order.status != states.SHIPPED:
        return
    if not all(line.shipped_quantity >= line.quantity and line.received_quantity >= line.shipped_quantity
               for line in order.lines):
        return
    order.move_to(states.DELIVERED, action="deliver", user_id=user_id)
    order.delivered_at = at
    for shipment in order.shipments:
        shipment.delivered_at = shipment.delivered_at or at
    notify_after_commit(order.id, "order_delivered")
    _complete(order, user_id=user_id)


def _complete(order: Order, *, user_id: int | None) -> None:
    # Nothing else is awaited after delivery (returns are their own flow), so the order completes right away
    # and its margin is booked to the partners.
    order.move_to(states.COMPLETED, action="complete", user_id=user_id)
    order.completed_at = now_utc()
    book_commission(order)


@retried
def confirm_receipt(principal: Principal, order_id: int) -> Order:
    """The owner confirms the goods arrived (for those who do not scan): everything shipped is received.

    Coded goods still in transit are received by their codes exactly as a scan-in would receive them (codes in
    store, stock transit → store with ledger rows, events), so they can be sold at once; goods without codes move
    by quantity. One transaction; a repeat (or a confirmation after the scans completed the order) answers the
    order as it is. Locks: the codes, then stock, then the order, as a scan-in takes them.
    """
    from app.scans.services import receive_in_transit

    with transaction():
        order = db.session.get(Order, order_id)
        if order is None:
            raise NotFound("找不到这个订单", code="order_not_found")
        authorize_store(principal, "order.receive", order.store_id)
        if order.status in (states.DELIVERED, states.COMPLETED):
            return order
        states.check_move(order.status, states.DELIVERED, action="deliver")
        store = require_store(order.store_id)
        receive_in_transit(store_id=store.id, user_id=principal.user_id, order_id=order.id)
        order = lock_order(order_id)
        if order.status != states.SHIPPED:
            return order  # the codes' receipt delivered it (or someone else got here first)
        serialized = set(db.session.scalars(sa.select(Sku.id).where(
            Sku.id.in_([line.sku_id for line in order.lines]), Sku.serialized.is_(True))))
        now = now_utc()
        transit = transit_location_id(store.location_id)
        outstanding: dict[int, int] = {}
        for shipment in order.shipments:
            for sl in shipment.lines:
                if sl.quantity > sl.received_quantity:
                    outstanding[sl.sku_id] = outstanding.get(sl.sku_id, 0) + sl.quantity - sl.received_quantity
        lock_levels([(loc, sku_id) for sku_id in outstanding for loc in (transit, store.location_id)])
        for sku_id, quantity in sorted(outstanding.items()):
            if sku_id in serialized:
                # Shipped codes no longer on their way here (sold or received elsewhere: the scans moved their
                # stock): the owner's word completes the order; there is nothing left in transit to move.
                record_receipt(order_id=order.id, store_id=store.id, sku_id=sku_id, quantity=quantity, at=now,
                               user_id=principal.user_id)
                continue
            move_stock(location_id=transit, sku_id=sku_id, on_hand=-quantity, kind="deliver", ref_type="order",
                       ref_id=order.id, user_id=principal.user_id)
            move_stock(location_id=store.location_id, sku_id=sku_id, on_hand=quantity, kind="receive",
                       ref_type="order", ref_id=order.id, user_id=principal.user_id)
            # The receiver (app.orders.receivers) counts these units on the order, as for a scan.
            units_received.send(None, store_id=store.id, sku_id=sku_id, quantity=quantity, at=now, order_id=order.id,
                                serials=[])
        db.session.flush()
        return lock_order(order_id)
