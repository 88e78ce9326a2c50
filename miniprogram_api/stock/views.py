"""A store's stock."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.core.schemas import AwareDateTime, Int
from app.core.security import authorize_store, current_principal, default_store_id
from app.inventory.queries import store_stock

blp = Blueprint("mp_stock", __name__, description="Stock levels")


class StockArgs(Schema):
    store_id = Int(load_default=None)


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
    authorize_store(principal, "stock.read", store_id)
    return {"store_id": store_id, "items": store_stock(store_id)}
