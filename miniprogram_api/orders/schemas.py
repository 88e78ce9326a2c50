"""Request and answer shapes of the mini-program's order routes (the answers HQ gives too are in app/schemas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs
from app.core.schemas import Body, Id, Int
from app.orders import states
from app.schemas.orders import LineIn, OrderDetailOut


class LineChange(Body):
    sku_id = Id(required=True)
    quantity = Int(required=True, validate=validate.Range(min=0, max=100_000))


class OrderCreateBody(Body):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    store_id = Id(required=True)
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1, max=100))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class ConfirmBody(Body):
    lines = fields.List(fields.Nested(LineChange), load_default=None, validate=validate.Length(max=100))


class RejectBody(Body):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CancelBody(Body):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class PaymentBody(Body):
    method = fields.String(required=True, validate=validate.OneOf(["wechat", "credit", "offline"]))
    reference = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    amount_fen = Int(load_default=None, validate=validate.Range(min=1))


class OrderListArgs(PageArgs):
    store_id = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(states.STATUSES))


def _cancel_message(order) -> str:
    if order.status == states.REFUNDED:
        return "订单已取消，钱已退回"
    if order.status == states.CANCELLED:
        return "订单已取消，退款处理中" if order.paid_fen > order.refunded_fen else "订单已取消"
    request = order.cancel_request
    if request is not None and request.status == "pending":
        return "已提交取消申请，总部同意后会退款"
    return states.STATUS_NAMES.get(order.status, order.status)


class CancelOut(OrderDetailOut):
    """The order after a cancel: cancelled (200), or still paid with a pending request for HQ (202)."""

    message = fields.Function(_cancel_message, metadata={"description": "one short Chinese sentence for the owner"})


class PaymentOut(Schema):
    """`wechat` answers the wx.requestPayment arguments; the other methods answer the paid order."""

    method = fields.String()
    order = fields.Nested(OrderDetailOut)
    request_payment = fields.Dict(allow_none=True)


def _receipt_message(order) -> str:
    if order.status == states.SHIPPED:
        return "到店的商品已入库，订单还有商品没发货"
    if order.status not in (states.DELIVERED, states.COMPLETED):
        return states.STATUS_NAMES.get(order.status, order.status)
    parts = [f"{line.sku.name} {line.received_quantity} {line.sku.unit}" for line in order.lines[:3]]
    more = "等" if len(order.lines) > 3 else ""
    return f"收货完成：{'、'.join(parts)}{more}已入库，可以售出了"


class ReceiptOut(OrderDetailOut):
    """The order after the owner confirmed its goods arrived (received into the store's stock, codes and all)."""

    message = fields.Function(_receipt_message, metadata={"description": "one short Chinese sentence for the owner"})
