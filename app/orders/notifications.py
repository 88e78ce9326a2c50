"""Subscribe messages about orders, sent by queued jobs so WeChat never holds up an order.

"Not subscribed" (43101) is the user's choice and is not retried; any other failure raises so the queue retries
it with backoff (`enqueue(..., retries=3)`).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Membership, User
from app.accounts.roles import STORE_OWNER
from app.channel.models import Store
from app.core.clock import local_text, now_utc
from app.core.money import yuan_text
from app.core.tx import after_commit
from app.extensions import db
from app.integrations.wechat import WeChatNotSubscribed, get_wechat
from app.orders import states
from app.orders.models import Order
from app.orders.numbers import format_order_number

log = logging.getLogger(__name__)

PAGE = "pages/orders/detail?id={id}"


def notify_after_commit(order_id: int, kind: str) -> None:
    """Queue the message about the order (`send_order_message`) once the use case's transaction has committed."""
    after_commit(lambda: _enqueue_message(order_id, kind))


def _enqueue_message(order_id: int, kind: str) -> None:
    from app.integrations.jobs import enqueue

    try:
        enqueue("app.orders.notifications.send_order_message", order_id, kind, retries=3)
    except Exception:  # a queue outage must never undo or block the order itself
        log.exception("orders: could not queue the %s message of order %s", kind, order_id)


def recipients(order: Order) -> list[str]:
    """The openids of the store's owners."""
    return list(db.session.scalars(sa.select(User.openid).join(Membership).where(
        Membership.store_id == order.store_id, Membership.role == STORE_OWNER, User.openid.is_not(None),
        User.is_active.is_(True))))


def message_data(order: Order, kind: str) -> dict[str, str]:
    """The template fields for one kind of message (thing.* are cut to 20 characters by the gateway)."""
    store_name = db.session.scalar(sa.select(Store.name).where(Store.id == order.store_id)) or ""
    data = {"character_string1": format_order_number(order.number), "thing2": store_name,
            "amount3": yuan_text(order.total_fen), "phrase4": states.STATUS_NAMES[order.status],
            "time5": local_text(now_utc())}
    if kind == "order_awaiting_confirmation":
        data["thing6"] = "经销商已代下单，请确认"
    return data


def send_order_message(order_id: int, kind: str) -> int:
    """Job: tell the store's owners about the order; returns how many messages went out."""
    template = current_app.config["WECHAT_TEMPLATES"].get(kind)
    if not template:
        log.warning("orders: no template for %s", kind)
        return 0
    order = db.session.get(Order, order_id)
    if order is None:
        db.session.rollback()
        return 0
    openids, data, page = recipients(order), message_data(order, kind), PAGE.format(id=order.id)
    db.session.rollback()  # the reads are done: no transaction stays open while WeChat answers
    sent = 0
    for openid in openids:
        try:
            get_wechat().send_subscribe_message(openid, template, data, page=page)
            sent += 1
        except WeChatNotSubscribed:
            log.info("orders: %s has not subscribed to %s; not retrying", openid, kind)
    return sent
