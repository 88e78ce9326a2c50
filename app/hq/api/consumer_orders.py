"""HQ's consumer orders: the list, one order, routing it to another partner with a reason, shipping, cancelling."""

from flask_smorest import Blueprint

from app.core.pagination import page_schema
from app.core.schemas import Id
from app.core.security import require
from app.orders import consumer_orders, consumer_queries
from app.schemas.consumer_orders import (
    ConsumerCancelBody,
    ConsumerOrderDetailOut,
    ConsumerOrderListArgs,
    ConsumerOrderOut,
    ConsumerRouteBody,
    ConsumerShipBody,
)

blp = Blueprint("hq_consumer_orders", __name__, description="Consumer orders routed to the local partner")


class HqConsumerOrderListArgs(ConsumerOrderListArgs):
    partner_id = Id(load_default=None, metadata={"description": "brought or served by this partner"})


@blp.route("/consumer-orders", methods=["GET"])
@blp.arguments(HqConsumerOrderListArgs, location="query")
@blp.response(200, page_schema(ConsumerOrderOut, "HqConsumerOrderPage"))
def list_consumer_orders(args):
    """Consumer orders in the caller's region, newest first."""
    return consumer_queries.consumer_order_page(require("consumer_order.read", kind="hq"), **args)


@blp.route("/consumer-orders/<int:order_id>", methods=["GET"])
@blp.response(200, ConsumerOrderDetailOut)
def get_consumer_order(order_id):
    """One consumer order with its events and split."""
    return consumer_queries.consumer_order_detail(require("consumer_order.read", kind="hq"), order_id)


@blp.route("/consumer-orders/<int:order_id>/route", methods=["POST"])
@blp.arguments(ConsumerRouteBody)
@blp.response(200, ConsumerOrderDetailOut)
def route_consumer_order(body, order_id):
    """Route the order to a partner of HQ's choice (HQ's own id: HQ serves it), with a reason."""
    principal = require("hq.write", kind="hq")
    return consumer_queries.describe(consumer_orders.route_consumer_order(principal, order_id, **body))


@blp.route("/consumer-orders/<int:order_id>/ship", methods=["POST"])
@blp.arguments(ConsumerShipBody)
@blp.response(200, ConsumerOrderDetailOut)
def ship_consumer_order(body, order_id):
    """Ship the goods from the address's city warehouse, else central; stock leaves with its ledger rows."""
    principal = require("warehouse.operate", kind="hq")
    return consumer_queries.describe(consumer_orders.ship_consumer_order(principal, order_id, **body))


@blp.route("/consumer-orders/<int:order_id>/cancel", methods=["POST"])
@blp.arguments(ConsumerCancelBody)
@blp.response(200, ConsumerOrderDetailOut)
def cancel_consumer_order(body, order_id):
    """Cancel an order that has not shipped, with a reason."""
    principal = require("hq.write", kind="hq")
    return consumer_queries.describe(consumer_orders.cancel_consumer_order(principal, order_id, **body))
