"""Domain-event receivers: a store's scan-in of an order's codes counts toward its delivery (and locks the order
first, as the lock order wants)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.events import receiving, units_received


@units_received.connect
def _on_units_received(sender: Any, *, store_id: int, sku_id: int, quantity: int, at: datetime,
                       order_id: int | None = None, **_: Any) -> None:
    """Count received units on the order's shipments; everything arrived → delivered, then completed."""
    if not order_id:
        return
    from app.orders.fulfilment import record_receipt  # it imports the models; keep this module light

    record_receipt(order_id=order_id, store_id=store_id, sku_id=sku_id, quantity=quantity, at=at)


@receiving.connect
def _on_receiving(sender: Any, *, order_ids: list[int], **_: Any) -> None:
    """A receive is about to take in units of these orders: lock them now, before its codes and stock."""
    from app.orders.locks import lock_orders

    lock_orders(order_ids)
