"""Request and answer shapes of the scan routes."""

from marshmallow import Schema, ValidationError, fields, validate

from app.core.schemas import AwareDateTime, Body, DeviceTime, Int

MAX_ID = 2**63 - 1  # ids are BIGINT: anything larger names nothing, and must not reach the database

# The field errors an owner's phone may show, in Chinese (the error's `details`).
_ERRORS = {"required": "必填", "null": "不能为空", "invalid": "格式不对", "type": "格式不对",
           "unknown": "不认识的字段", "special": "不是有效的数字"}
_TEXT = {**_ERRORS, "invalid": "要填文字"}
_NUMBER = {**_ERRORS, "invalid": "要填整数", "too_large": "数字太大"}


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("不能有控制字符")


class ScanBody(Body):
    error_messages = {"unknown": "不认识的字段", "type": "扫码内容格式不对"}

    request_id = fields.String(required=True, error_messages=_TEXT, validate=[
        validate.Length(min=1, max=64, error="长度要在 1 到 64 之间"),
        validate.Predicate("isprintable", error="不能有控制字符")])
    code = fields.String(required=True, error_messages=_TEXT, validate=[
        validate.Length(min=1, max=512, error="长度要在 1 到 512 之间"), _no_nul])
    action = fields.String(required=True, error_messages=_TEXT, validate=validate.OneOf(
        ["receive", "sell", "return"], error="只能是 receive、sell 或 return"))
    scanned_at = DeviceTime(required=True, error_messages={**_ERRORS, "invalid": "要填带时区的时间",
                                                             "invalid_awareness": "要填带时区的时间"})
    store_id = Int(load_default=None, error_messages=_NUMBER,
                   validate=validate.Range(min=1, max=MAX_ID, error="不是有效的门店编号"))
    quantity = Int(load_default=None, error_messages=_NUMBER,
                   validate=validate.Range(min=1, max=10_000, error="数量要在 1 到 10000 之间"))
    lat = fields.Float(load_default=None, error_messages={**_ERRORS, "invalid": "要填数字"},
                       validate=validate.Range(min=-90, max=90, error="纬度要在 -90 到 90 之间"))
    lng = fields.Float(load_default=None, error_messages={**_ERRORS, "invalid": "要填数字"},
                       validate=validate.Range(min=-180, max=180, error="经度要在 -180 到 180 之间"))


class ScanBatchBody(Body):
    # Items are checked one by one in the view, so one bad item (even one that is not an object) is refused on
    # its own.
    items = fields.List(fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1))


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
    request_id = fields.String(allow_none=True, metadata={
        "description": "null only for a batch item refused because it had no readable request_id"})
    status = fields.String(metadata={"enum": ["accepted", "duplicate", "refused"]})
    reason = fields.String(allow_none=True)
    message = fields.String(metadata={"description": "one short Chinese sentence for the owner"})
    action = fields.String(allow_none=True, metadata={
        "description": "null only for a batch item refused because it had no readable action"})
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
    details = fields.Dict(metadata={
        "description": "a refused `validation_failed` batch item: its field errors, under `fields`"})
    time_adjusted = fields.Boolean(metadata={
        "description": "true when the phone's time could not be right (older than the offline window, in the "
                       "future, or before the unit's previous scan): the scan is recorded at the time the server "
                       "received it, and the message says so"})


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
    store_id = Int(load_default=None, validate=validate.Range(min=1, max=MAX_ID, error="不是有效的门店编号"))
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
