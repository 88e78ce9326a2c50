"""The consumer order shapes both edges use (the mini-program and the HQ API answer them alike)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs
from app.core.schemas import AwareDateTime, Body, Id
from app.orders.models import CONSUMER_STATUSES
from app.schemas.orders import LineIn


class ConsumerCustomerIn(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    phone = fields.String(required=True, validate=validate.Length(min=1, max=20))


class ConsumerOrderCreateBody(Body):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    customer = fields.Nested(ConsumerCustomerIn, required=True)
    address = fields.String(required=True, validate=validate.Length(min=1, max=255))
    region_code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="要是 6 位地区代码"),
                                metadata={"description": "the delivery address's district (or city) adcode"})
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1, max=50))
    needs_service = fields.Boolean(load_default=False,
                                   metadata={"description": "the consumer needs on-site service (delivery, install)"})


class ConsumerOrderListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(CONSUMER_STATUSES))


class ConsumerCustomerOut(Schema):
    name = fields.String()
    phone = fields.String()


class ConsumerLineOut(Schema):
    sku_id = fields.Integer()
    sku_name = fields.String()
    quantity = fields.Integer()
    unit = fields.String(metadata={"description": "the SKU's sellable unit (提, 瓶…)"})
    serialized = fields.Boolean(metadata={"description": "one item one code: ships by its codes"})
    unit_price_fen = fields.Integer()
    amount_fen = fields.Integer()


class ConsumerPartyOut(Schema):
    partner_id = fields.Integer()
    partner_name = fields.String()
    agent_id = fields.Integer(allow_none=True)
    agent_name = fields.String(allow_none=True)


class ConsumerSplitOut(Schema):
    partner_id = fields.Integer()
    partner_name = fields.String()
    role = fields.String(metadata={"description": "bringer | servicer | sole"})
    share_bp = fields.Integer()
    amount_fen = fields.Integer()
    margin_fen = fields.Integer()


class ConsumerEventOut(Schema):
    id = fields.Integer()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    partner_id = fields.Integer(allow_none=True)
    partner_name = fields.String(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    user_name = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    at = AwareDateTime()


class ConsumerOrderOut(Schema):
    id = fields.Integer()
    number = fields.String()
    status = fields.String(metadata={"description": " | ".join(CONSUMER_STATUSES)})
    status_name = fields.String()
    message = fields.String(metadata={"description": "where the order is, in one sentence"})
    customer = fields.Nested(ConsumerCustomerOut)
    address = fields.String()
    region_code = fields.String()
    region_name = fields.String()
    needs_service = fields.Boolean()
    total_fen = fields.Integer()
    lines = fields.List(fields.Nested(ConsumerLineOut))
    brought_by = fields.Nested(ConsumerPartyOut, allow_none=True, metadata={"description": "null: HQ's own shop"})
    serving = fields.Nested(ConsumerPartyOut, allow_none=True, metadata={"description": "null: HQ serves it"})
    with_hq = fields.Boolean()
    hq_reason = fields.String(allow_none=True, metadata={"description": "no_territory | nobody_accepted | hq_routed"})
    accept_by_at = AwareDateTime(allow_none=True)
    warehouse_id = fields.Integer(allow_none=True)
    warehouse_name = fields.String(allow_none=True)
    confirmation_tries_left = fields.Integer()
    created_at = AwareDateTime()
    accepted_at = AwareDateTime(allow_none=True)
    shipped_at = AwareDateTime(allow_none=True)
    completed_at = AwareDateTime(allow_none=True)
    cancelled_at = AwareDateTime(allow_none=True)
    split = fields.List(fields.Nested(ConsumerSplitOut), metadata={"description": "the margin's split, once completed"})


class ConsumerOrderDetailOut(ConsumerOrderOut):
    events = fields.List(fields.Nested(ConsumerEventOut))


class ConsumerOrderCreatedOut(ConsumerOrderDetailOut):
    confirmation_code = fields.String(metadata={"description": "the consumer's code, for whoever took the order"})


class ConsumerCancelBody(Body):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ConsumerDeclineBody(Body):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class ConsumerCompleteBody(Body):
    confirmation_code = fields.String(required=True, validate=validate.Length(min=1, max=12))


class ConsumerRouteBody(Body):
    partner_id = Id(required=True, metadata={"description": "the partner to serve it (HQ's own id: HQ serves)"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ConsumerShipBody(Body):
    warehouse_id = Id(load_default=None, metadata={"description": "default: the address's city warehouse, "
                                                                  "else central"})
    codes = fields.List(fields.String(validate=validate.Length(min=1, max=128)), load_default=list,
                        validate=validate.Length(max=2000),
                        metadata={"description": "case or unit codes of the one-item-one-code lines, scanned; "
                                                 "their units must be each such line's quantity"})
