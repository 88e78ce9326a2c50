"""The row locks every order use case takes first, and the store lookup they share.

Every change of an order first locks its row (`SELECT ... FOR UPDATE`, re-read), so two requests about one order
serialize and the second sees what the first did. An order is locked before its codes and its stock (the lock
order in `app.inventory.services`).
"""

from __future__ import annotations

import sqlalchemy as sa

from app.channel.models import Store
from app.errors import NotFound
from app.extensions import db
from app.orders.models import Order


def lock_order(order_id: int) -> Order:
    """The order, locked for this transaction and re-read, or 404."""
    order = db.session.scalar(sa.select(Order).where(Order.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    if order is None:
        raise NotFound("找不到这个订单", code="order_not_found")
    return order


def lock_orders(order_ids: list[int]) -> None:
    """Lock these orders in id order (the lock order) for the caller's transaction, before their codes and stock."""
    if order_ids:
        db.session.execute(sa.select(Order.id).where(Order.id.in_(sorted(set(order_ids)))).order_by(Order.id)
                           .with_for_update())


def lock_order_by_number(number: str) -> Order | None:
    """The order with this number, locked and re-read (None: no such order)."""
    return db.session.scalar(sa.select(Order).where(Order.number == number).with_for_update()
                             .execution_options(populate_existing=True))


def require_store(store_id: int) -> Store:
    """The store, or 404."""
    store = db.session.get(Store, store_id)
    if store is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return store
