"""HQ manages products, SKUs and price tiers."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.catalog import queries, services
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import Body, Bool, Id, Int
from app.core.security import require
from app.errors import NotFound

blp = Blueprint("hq_catalog", __name__, description="Products, SKUs and price tiers")


class PriceOut(Schema):
    price_tier_id = fields.Integer()
    price_fen = fields.Integer()


class SkuOut(Schema):
    id = fields.Integer()
    sku_id = fields.Function(lambda s: s.id)
    product_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    specification = fields.String()
    unit = fields.String(metadata={"description": "what one code, one scan and one unit of an order count (提, 瓶)"})
    case_unit = fields.String(metadata={"description": "the case holding `case_pack` units (箱)"})
    gtin = fields.String()
    case_pack = fields.Integer(metadata={"description": "units per case; order quantities are multiples of it"})
    min_order_quantity = fields.Integer()
    serialized = fields.Boolean()
    is_active = fields.Boolean()
    prices = fields.List(fields.Nested(PriceOut))


class ProductOut(Schema):
    id = fields.Integer()
    name = fields.String()
    brand = fields.String()
    category = fields.String()


class TierOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class PriceIn(Body):
    price_tier_id = Id(required=True)
    price_fen = Int(required=True, validate=validate.Range(min=0, max=10**10))


class ProductBody(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    brand = fields.String(load_default="", validate=validate.Length(max=64))
    category = fields.String(load_default="", validate=validate.Length(max=64))


class ProductPatch(Body):
    name = fields.String(validate=validate.Length(min=1, max=100))
    brand = fields.String(validate=validate.Length(max=64))
    category = fields.String(validate=validate.Length(max=64))


class SkuBody(Body):
    product_id = Id(required=True)
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    gtin = fields.String(required=True, validate=validate.Length(min=8, max=14))
    specification = fields.String(load_default="", validate=validate.Length(max=64))
    unit = fields.String(load_default="件", validate=validate.Length(min=1, max=16))
    case_unit = fields.String(load_default="箱", validate=validate.Length(min=1, max=16))
    case_pack = Int(load_default=1, validate=validate.Range(min=1, max=10_000))
    min_order_quantity = Int(load_default=None, validate=validate.Range(min=1, max=1_000_000),
                             metadata={"description": "in units, a whole number of cases (422 "
                                                      "`min_order_not_whole_cases` otherwise); default one case"})
    serialized = Bool(load_default=True)
    prices = fields.List(fields.Nested(PriceIn), load_default=list)


class SkuPatch(Body):
    name = fields.String(validate=validate.Length(min=1, max=100))
    gtin = fields.String(validate=validate.Length(min=8, max=14))
    specification = fields.String(validate=validate.Length(max=64))
    unit = fields.String(validate=validate.Length(min=1, max=16))
    case_unit = fields.String(validate=validate.Length(min=1, max=16))
    case_pack = Int(validate=validate.Range(min=1, max=10_000))
    min_order_quantity = Int(validate=validate.Range(min=1, max=1_000_000))
    serialized = Bool()
    is_active = Bool()
    prices = fields.List(fields.Nested(PriceIn))


class TierBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))


@blp.route("/products", methods=["POST"])
@blp.arguments(ProductBody)
@blp.response(201, ProductOut)
def create_product(body):
    """Add a product."""
    return services.create_product(require("hq.write"), **body)


@blp.route("/products", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(ProductOut, "ProductPage"))
def list_products(args):
    """Products."""
    require("hq.read")
    return paginate(queries.list_products(), **args)


@blp.route("/products/<int:product_id>", methods=["PATCH"])
@blp.arguments(ProductPatch)
@blp.response(200, ProductOut)
def patch_product(body, product_id):
    """Change a product's name, brand or category."""
    return services.update_product(require("hq.write"), product_id, **body)


@blp.route("/skus", methods=["POST"])
@blp.arguments(SkuBody)
@blp.response(201, SkuOut)
def create_sku(body):
    """Add a SKU; its GTIN's check digit is validated, prices are fen per tier."""
    principal = require("hq.write")
    prices = {p["price_tier_id"]: p["price_fen"] for p in body.pop("prices")}
    return services.create_sku(principal, **body, prices=prices)


@blp.route("/skus", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(SkuOut, "SkuPage"))
def list_sku_page(args):
    """SKUs with their prices."""
    require("hq.read")
    return paginate(queries.list_skus(), **args)


@blp.route("/skus/<int:sku_id>", methods=["GET"])
@blp.response(200, SkuOut)
def get_sku(sku_id):
    """One SKU."""
    require("hq.read")
    sku = queries.get_sku(sku_id)
    if sku is None:
        raise NotFound("找不到这个 SKU", code="sku_not_found")
    return sku


@blp.route("/skus/<int:sku_id>", methods=["PATCH"])
@blp.arguments(SkuPatch)
@blp.response(200, SkuOut)
def patch_sku(body, sku_id):
    """Change a SKU's fields or prices."""
    principal = require("hq.write")
    if "prices" in body:
        body["prices"] = {p["price_tier_id"]: p["price_fen"] for p in body["prices"]}
    return services.update_sku(principal, sku_id, **body)


@blp.route("/price-tiers", methods=["POST"])
@blp.arguments(TierBody)
@blp.response(201, TierOut)
def create_tier(body):
    """Add a price tier."""
    return services.create_price_tier(require("hq.write"), **body)


@blp.route("/price-tiers", methods=["GET"])
@blp.response(200, TierOut(many=True))
def list_tiers():
    """Price tiers."""
    require("hq.read")
    return queries.list_price_tiers()
