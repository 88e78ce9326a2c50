"""The order shapes both edges use: the mini-program and the HQ API answer orders, shipments and refunds alike."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Body, Id, Int
from app.orders import states
from app.orders.numbers import format_order_number
from app.orders.queries import refunds_of


class LineIn(Body):
    sku_id = Id(required=True)
    quantity = Int(required=True, validate=validate.Range(min=1, max=100_000))


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
