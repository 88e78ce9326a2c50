"""A store's stock."""

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.channel import queries as channel_queries
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import current_principal, default_store_id
from app.scans import messages, stocktake

blp = Blueprint("mp_stock", __name__, description="Stock levels")


class StockArgs(Schema):
    store_id = Id(load_default=None)


class StockItem(Schema):
    sku_id = fields.Integer()
    sku_code = fields.String()
    name = fields.String()
    unit = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()
    available = fields.Integer()
    updated_at = AwareDateTime()


class StockOut(Schema):
    store_id = fields.Integer()
    items = fields.List(fields.Nested(StockItem))


@blp.route("/stock", methods=["GET"])
@blp.arguments(StockArgs, location="query")
@blp.response(200, StockOut)
@blp.doc(security=[{"bearer": []}])
def stock(args):
    """The store's stock per SKU."""
    principal = current_principal()
    store_id = default_store_id(principal, args["store_id"])
    return {"store_id": store_id, "items": channel_queries.list_store_stock(principal, store_id)}


class CountLine(Body):
    """A SKU without serials by its count; a one-item-one-code SKU by the code of every unit found (as scanned)."""

    sku_id = Id(required=True)
    counted = Int(load_default=None, validate=validate.Range(min=0, max=10_000_000))
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=512)), load_default=None,
                          validate=validate.Length(max=stocktake.MAX_SERIALS),
                          metadata={"description": "one-item-one-code SKUs: every unit's code as scanned (the "
                                                   "printed URL or the serial); an empty list counts none"})

    @validates_schema
    def _counted_or_serials(self, data, **_kwargs):
        if data.get("counted") is None and data.get("serials") is None:
            raise ValidationError("请填盘点数量，或扫每一件的码", field_name="counted")


class CountBody(Body):
    store_id = Id(load_default=None)
    lines = fields.List(fields.Nested(CountLine), required=True, validate=validate.Length(min=1, max=500))
    reason = fields.String(load_default="盘点", validate=validate.Length(min=1, max=255))


class CountLineOut(Schema):
    sku_id = fields.Integer()
    before = fields.Integer()
    counted = fields.Integer()
    delta = fields.Integer()
    on_hand = fields.Integer()
    found_serials = fields.List(fields.String(), metadata={
        "description": "by codes: units found here that the books put elsewhere (now here)"})
    missing_serials = fields.List(fields.String(), metadata={
        "description": "by codes: units the books put here that were not found (now `missing`)"})


class CountOut(Schema):
    store_id = fields.Integer()
    lines = fields.List(fields.Nested(CountLineOut))
    message = fields.String(metadata={"description": "one short Chinese sentence for the owner"})


class AdjustmentBody(Body):
    store_id = Id(load_default=None)
    sku_id = Id(required=True)
    delta = Int(required=True, validate=validate.Range(min=-1_000_000, max=1_000_000))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=255))


class AdjustmentOut(Schema):
    store_id = fields.Integer()
    sku_id = fields.Integer()
    delta = fields.Integer()
    on_hand = fields.Integer()
    reason = fields.String()
    message = fields.String(metadata={"description": "one short Chinese sentence for the owner"})


class MovementArgs(PageArgs):
    store_id = Id(load_default=None)
    sku_id = Id(load_default=None)


class MovementOut(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    delta_on_hand = fields.Integer()
    delta_reserved = fields.Integer()
    kind = fields.String()
    reason = fields.String(allow_none=True)
    ref_type = fields.String(allow_none=True)
    ref_id = fields.String(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()


@blp.route("/stock/counts", methods=["POST"])
@blp.arguments(CountBody)
@blp.response(201, CountOut)
@blp.doc(security=[{"bearer": []}])
def count(body):
    """Stocktake: bring each SKU's stock to the count, with a reason the ledger keeps; one-item-one-code SKUs are
    counted by their codes (a bare count of one is refused: `serials_required`), and their codes follow."""
    principal = current_principal()
    store_id = default_store_id(principal, body["store_id"])
    lines = stocktake.record_count(principal, store_id=store_id, lines=body["lines"], reason=body["reason"])
    return {"store_id": store_id, "lines": lines, "message": messages.counted(lines)}


@blp.route("/stock/adjustments", methods=["POST"])
@blp.arguments(AdjustmentBody)
@blp.response(201, AdjustmentOut)
@blp.doc(security=[{"bearer": []}])
def adjustment(body):
    """Add or remove units of a SKU without serials, with a reason (never below zero); a one-item-one-code SKU is
    corrected by a stocktake by its codes (`serials_required`)."""
    principal = current_principal()
    store_id = default_store_id(principal, body["store_id"])
    result = stocktake.adjust(principal, store_id=store_id, sku_id=body["sku_id"], delta=body["delta"],
                              reason=body["reason"])
    return {"store_id": store_id, **result}


@blp.route("/stock/movements", methods=["GET"])
@blp.arguments(MovementArgs, location="query")
@blp.response(200, page_schema(MovementOut, "StoreMovementPage"))
@blp.doc(security=[{"bearer": []}])
def list_movements(args):
    """The store's stock ledger, newest first."""

    principal = current_principal()
    store_id = default_store_id(principal, args["store_id"])
    return paginate(channel_queries.list_store_movements(principal, store_id, args["sku_id"]), page=args["page"],
                    page_size=args["page_size"])
