"""Warehouses: the central one and the city sub-warehouses."""

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.channel import regions
from app.core.schemas import Body
from app.core.security import require
from app.core.tx import transaction
from app.errors import ValidationFailed
from app.extensions import db
from app.inventory import services
from app.inventory.models import StockLevel, Warehouse

blp = Blueprint("hq_warehouses", __name__, description="Warehouses and the cities they serve")


class WarehouseBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(["central", "sub"]))
    city_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    serves = fields.List(fields.String(validate=validate.Regexp(r"^\d{6}$")), load_default=list,
                         validate=validate.Length(max=500))


class WarehouseOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    city_code = fields.String()
    city_name = fields.Function(lambda w: regions.region_name(w.city_code))
    location_id = fields.Integer()
    serves = fields.Function(lambda w: [c.city_code for c in w.cities])
    stock_units = fields.Method("get_units")

    def get_units(self, w):
        return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(StockLevel.on_hand), 0))
                                     .where(StockLevel.location_id == w.location_id)) or 0)


@blp.route("/warehouses", methods=["POST"])
@blp.arguments(WarehouseBody)
@blp.response(201, WarehouseOut)
def create_warehouse(body):
    """Add a warehouse; a sub-warehouse lists the city codes it serves."""
    require("hq.write")
    for code in [body["city_code"], *body["serves"]]:
        if not regions.is_valid(code, "city"):
            raise ValidationFailed("城市代码不对", code="unknown_region", details={"region_code": code})
    with transaction():
        return services.create_warehouse(**body)


@blp.route("/warehouses", methods=["GET"])
@blp.response(200, WarehouseOut(many=True))
def list_warehouses():
    """All warehouses."""
    require("hq.read")
    return list(db.session.scalars(sa.select(Warehouse).order_by(Warehouse.id)))
