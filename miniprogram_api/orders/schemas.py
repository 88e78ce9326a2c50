"""Request and answer shapes of the order routes (the HQ console reuses the answers)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs
from app.core.schemas import AwareDateTime, Body, Id, Int
from app.orders import states
from app.orders.numbers import format_order_number
from app.orders.queries import refunds_of


class LineIn(Body):
    sku_id = Id(required=True)
    quantity = Int(required=True, validate=validate.Range(min=1, max=100_000))


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


class LineOut(Schema):
    sku_id = fields.Integer()
    sku_name = fields.Function(lambda line: line.sku.name)
    unit = fields.Function(lambda line: line.sku.unit)
    serialized = fields.Function(lambda line: line.sku.serialized)
    quantity = fields.Integer()
    unit_price_fen = fields.Integer()
    amount_fen = fields.Integer()
    reserved_quantity = fields.Integer()
    shipped_quantity = fields.Integer()
    received_quantity = fields.Integer()


class OrderEventOut(Schema):
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    action = fields.String()
    note = fields.String(allow_none=True)
    at = AwareDateTime()


class ShipmentLineOut(Schema):
    sku_id = fields.Integer()
    quantity = fields.Integer()
    received_quantity = fields.Integer()


class ShipmentOut(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    warehouse_id = fields.Integer()
    case_codes = fields.List(fields.String())
    shipped_at = AwareDateTime()
    delivered_at = AwareDateTime(allow_none=True)
    lines = fields.List(fields.Nested(ShipmentLineOut))


class RefundOut(Schema):
    id = fields.Integer()
    out_refund_no = fields.String()
    amount_fen = fields.Integer()
    status = fields.String()
    reason = fields.String()
    created_at = AwareDateTime()
    completed_at = AwareDateTime(allow_none=True)


class OrderOut(Schema):
    id = fields.Integer()
    number = fields.String()
    number_display = fields.Function(lambda o: format_order_number(o.number))
    store_id = fields.Integer()
    status = fields.String()
    status_name = fields.Function(lambda o: states.STATUS_NAMES.get(o.status, o.status))
    is_proxy = fields.Boolean()
    bringing_partner_id = fields.Integer(allow_none=True)
    routed_partner_id = fields.Integer(allow_none=True)
    cross_region = fields.Function(lambda o: bool(o.bringing_partner_id and o.routed_partner_id
                                                   and o.bringing_partner_id != o.routed_partner_id))
    total_fen = fields.Integer()
    paid_fen = fields.Integer()
    refunded_fen = fields.Integer()
    payment_method = fields.String(allow_none=True)
    note = fields.String()
    reject_reason = fields.String(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    warehouse_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
    confirm_by_at = AwareDateTime(allow_none=True)
    confirmed_at = AwareDateTime(allow_none=True)
    paid_at = AwareDateTime(allow_none=True)
    allocated_at = AwareDateTime(allow_none=True)
    shipped_at = AwareDateTime(allow_none=True)
    delivered_at = AwareDateTime(allow_none=True)
    completed_at = AwareDateTime(allow_none=True)
    cancelled_at = AwareDateTime(allow_none=True)
    lines = fields.List(fields.Nested(LineOut))


class CancelRequestRef(Schema):
    """A store's request to cancel a paid order, which HQ approves (the refund happens then) or rejects."""

    id = fields.Integer()
    status = fields.String(metadata={"enum": ["pending", "approved", "rejected"]})
    status_name = fields.Function(lambda r: CANCEL_REQUEST_NAMES.get(r.status, r.status))
    reason = fields.String()
    requested_at = AwareDateTime()
    decided_at = AwareDateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)


CANCEL_REQUEST_NAMES = {"pending": "等待总部处理", "approved": "总部已同意", "rejected": "总部未同意"}


class OrderDetailOut(OrderOut):
    events = fields.List(fields.Nested(OrderEventOut))
    shipments = fields.List(fields.Nested(ShipmentOut))
    refunds = fields.Function(lambda o: RefundOut(many=True).dump(refunds_of(o.id)))
    cancel_request = fields.Nested(CancelRequestRef, allow_none=True,
                                   metadata={"description": "the latest cancellation request, if any"})


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
