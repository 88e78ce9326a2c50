"""Warehouses: the central one and the city sub-warehouses."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core import regions
from app.core.schemas import Body
from app.core.security import require
from app.inventory import queries, services
from app.inventory.models import Warehouse

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
    city_name = fields.Method("get_city_name")
    location_id = fields.Integer()
    serves = fields.Method("get_serves")
    stock_units = fields.Method("get_units", metadata={"description": "every unit alike; show `stock_by_unit`"})
    stock_by_unit = fields.Method("get_by_unit", metadata={"description": "[{unit, quantity}]: the stock per "
                                                                          "sellable unit (提, 袋 never added up)"})

    # A warehouse just made (a model) or one row of `queries.list_warehouses` (a dict, with its stock).
    def get_city_name(self, w):
        return regions.region_name(w.city_code if isinstance(w, Warehouse) else w["city_code"])

    def get_serves(self, w):
        return [c.city_code for c in w.cities] if isinstance(w, Warehouse) else w["serves"]

    def get_units(self, w):
        return 0 if isinstance(w, Warehouse) else w["stock_units"]  # a warehouse just made holds nothing yet

    def get_by_unit(self, w):
        return [] if isinstance(w, Warehouse) else w["stock_by_unit"]


@blp.route("/warehouses", methods=["POST"])
@blp.arguments(WarehouseBody)
@blp.response(201, WarehouseOut)
def create_warehouse(body):
    """Add a warehouse; a sub-warehouse lists the city codes it serves."""
    return services.create_warehouse(require("hq.write"), **body)


@blp.route("/warehouses", methods=["GET"])
@blp.response(200, WarehouseOut(many=True))
def list_warehouses():
    """All warehouses."""
    require("hq.read")
    return queries.list_warehouses()
