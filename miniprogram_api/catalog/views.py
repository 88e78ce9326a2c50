"""The catalog with the caller's store's prices."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.channel.queries import list_store_catalog
from app.core.schemas import Id
from app.core.security import current_principal, default_store_id

blp = Blueprint("mp_catalog", __name__, description="Products and this store's prices")


class CatalogArgs(Schema):
    store_id = Id(load_default=None)


class CatalogItem(Schema):
    sku_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    product_name = fields.String()
    gtin = fields.String()
    specification = fields.String()
    unit = fields.String(metadata={"description": "what a scan and an order's quantity count (提, 瓶, 袋)"})
    case_unit = fields.String(metadata={"description": "the case holding `case_pack` units (箱)"})
    case_pack = fields.Integer(metadata={"description": "units per case; quantities are multiples of it"})
    min_order_quantity = fields.Integer(metadata={"description": "in units, a whole number of cases"})
    serialized = fields.Boolean()
    price_fen = fields.Integer()


class CatalogOut(Schema):
    store_id = fields.Integer()
    items = fields.List(fields.Nested(CatalogItem))


@blp.route("/catalog", methods=["GET"])
@blp.arguments(CatalogArgs, location="query")
@blp.response(200, CatalogOut)
@blp.doc(security=[{"bearer": []}])
def catalog(args):
    """SKUs with the prices of the store's price tier, in fen."""
    principal = current_principal()
    store_id = default_store_id(principal, args["store_id"])
    return {"store_id": store_id, "items": list_store_catalog(principal, store_id)}
