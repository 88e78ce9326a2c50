"""The order state machine, pure: which status may follow which, and nothing else (no database, no clock)."""

from __future__ import annotations

from app.errors import Conflict

AWAITING_CONFIRMATION = "awaiting_confirmation"
AWAITING_PAYMENT = "awaiting_payment"
PAID = "paid"
ALLOCATED = "allocated"
SHIPPED = "shipped"
DELIVERED = "delivered"
COMPLETED = "completed"
CANCELLED = "cancelled"
REFUNDED = "refunded"

STATUSES = (AWAITING_CONFIRMATION, AWAITING_PAYMENT, PAID, ALLOCATED, SHIPPED, DELIVERED, COMPLETED, CANCELLED,
            REFUNDED)

STATUS_NAMES = {
    AWAITING_CONFIRMATION: "待确认", AWAITING_PAYMENT: "待付款", PAID: "已付款", ALLOCATED: "已分配仓库",
    SHIPPED: "已发货", DELIVERED: "已送达", COMPLETED: "已完成", CANCELLED: "已取消", REFUNDED: "已退款",
}

# Shipped goods are past the point of cancelling: returns are their own flow, not a state of the order.
# A paid order that is cancelled waits in `cancelled` until its refund has come back, then becomes `refunded`.
TRANSITIONS: dict[str, frozenset[str]] = {
    AWAITING_CONFIRMATION: frozenset({AWAITING_PAYMENT, CANCELLED}),
    AWAITING_PAYMENT: frozenset({PAID, CANCELLED}),
    PAID: frozenset({ALLOCATED, CANCELLED}),
    # allocated → allocated: HQ moves the order to another warehouse; shipped → shipped: a further partial shipment.
    ALLOCATED: frozenset({ALLOCATED, SHIPPED, CANCELLED}),
    SHIPPED: frozenset({SHIPPED, DELIVERED}),
    DELIVERED: frozenset({COMPLETED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset({REFUNDED}),
    REFUNDED: frozenset(),
}

# The moves each action makes, so an illegal action gets an error code naming the action.
CANCELLABLE = frozenset({AWAITING_CONFIRMATION, AWAITING_PAYMENT, PAID, ALLOCATED})
HOLDS_MONEY = frozenset({PAID, ALLOCATED})


class IllegalTransition(Conflict):
    """The order's current status does not allow this action."""

    code, message = "illegal_transition", "订单当前状态不能这样操作"


def can_move(current: str, target: str) -> bool:
    """Whether `target` may follow `current`."""
    return target in TRANSITIONS.get(current, frozenset())


def check_move(current: str, target: str, *, action: str | None = None) -> None:
    """Raise IllegalTransition (409, a stable code per action) unless `target` may follow `current`."""
    if not can_move(current, target):
        code = f"order_cannot_{action}" if action else "illegal_transition"
        raise IllegalTransition(
            f"订单{STATUS_NAMES.get(current, current)}，不能{_ACTION_NAMES.get(action or '', '这样操作')}",
            code=code, details={"status": current, "target": target, "action": action})


_ACTION_NAMES = {
    "confirm": "确认", "reject": "拒绝", "cancel": "取消", "pay": "付款", "allocate": "分配仓库", "ship": "发货",
    "deliver": "确认收货", "complete": "完成", "refund": "退款",
}
