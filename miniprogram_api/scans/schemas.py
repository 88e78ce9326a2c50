"""Request and answer shapes of the scan routes."""

from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Body, Int


class ScanBody(Body):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = fields.String(required=True, validate=validate.Length(min=1, max=512))
    action = fields.String(required=True, validate=validate.OneOf(["receive", "sell", "return"]))
    scanned_at = AwareDateTime(required=True)
    store_id = Int(load_default=None)
    quantity = Int(load_default=None, validate=validate.Range(min=1, max=10_000))
    lat = fields.Float(load_default=None, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(load_default=None, validate=validate.Range(min=-180, max=180))


class ScanBatchBody(Body):
    # Items are checked one by one in the view, so one bad item is refused on its own.
    items = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1))


class ScanSkuRef(Schema):
    sku_id = fields.Integer()
    name = fields.String()
    unit = fields.String()
    gtin = fields.String()


class ScanStockRef(Schema):
    sku_id = fields.Integer()
    on_hand = fields.Integer()


class ScanFirstSold(Schema):
    at = fields.String(allow_none=True)
    store_id = fields.Integer(allow_none=True)
    store_name = fields.String(allow_none=True)


class ScanAnswer(Schema):
    request_id = fields.String()
    status = fields.String(metadata={"enum": ["accepted", "duplicate", "refused"]})
    reason = fields.String(allow_none=True)
    message = fields.String(metadata={"description": "one short Chinese sentence for the owner"})
    action = fields.String()
    serial = fields.String(allow_none=True)
    code_state = fields.String(allow_none=True)
    sku = fields.Nested(ScanSkuRef, allow_none=True)
    quantity = fields.Integer()
    stock = fields.Nested(ScanStockRef, allow_none=True)
    alerts = fields.List(fields.Dict())
    event_id = fields.Integer(allow_none=True)
    store_id = fields.Integer(allow_none=True)
    first_sold = fields.Nested(ScanFirstSold)
    replayed = fields.Boolean()
    details = fields.Dict()


class ScanBatchAnswer(Schema):
    items = fields.List(fields.Nested(ScanAnswer))
    accepted = fields.Integer()
    duplicate = fields.Integer()
    refused = fields.Integer()


class ScanUndoAnswer(Schema):
    status = fields.String()
    reason = fields.String(allow_none=True)
    message = fields.String()
    action = fields.String()
    undone_event_id = fields.Integer()
    event_id = fields.Integer()
    serial = fields.String(allow_none=True)
    code_state = fields.String(allow_none=True)
    quantity = fields.Integer()
    store_id = fields.Integer()
    sku = fields.Nested(ScanSkuRef)
    stock = fields.Nested(ScanStockRef)
    alerts = fields.List(fields.Dict())


class ScanListArgs(Schema):
    store_id = Int(load_default=None)
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = Int(load_default=20, validate=validate.Range(min=1, max=200))


class ScanListItem(Schema):
    id = fields.Integer()
    event_id = fields.Integer()
    action = fields.String()
    biz_step = fields.String()
    serial = fields.String(allow_none=True)
    sku_id = fields.Integer()
    sku_name = fields.String()
    quantity = fields.Integer()
    event_time = AwareDateTime()
    recorded_at = AwareDateTime()
    user_id = fields.Integer(allow_none=True)
    undone = fields.Boolean()
    corrects_event_id = fields.Integer(allow_none=True)
    diverted = fields.Boolean()


class ScanPage(Schema):
    items = fields.List(fields.Nested(ScanListItem))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
