"""Consumer orders in the mini-program: a partner takes a consumer's order; the partner serving the address accepts,
declines or completes it with the consumer's confirmation code."""

from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.core.pagination import page_schema
from app.core.security import current_principal
from app.orders import consumer_orders, consumer_queries
from app.schemas.consumer_orders import (
    ConsumerCompleteBody,
    ConsumerDeclineBody,
    ConsumerOrderCreateBody,
    ConsumerOrderCreatedOut,
    ConsumerOrderDetailOut,
    ConsumerOrderListArgs,
    ConsumerOrderOut,
)

blp = Blueprint("mp_consumer_orders", __name__, description="Consumer orders routed to the local partner")
SECURITY = [{"bearer": []}]


class MpConsumerOrderListArgs(ConsumerOrderListArgs):
    role = fields.String(load_default=None, validate=validate.OneOf(["brought", "serving"]),
                         metadata={"description": "brought: orders the caller's partner took; serving: routed to it"})


@blp.route("/consumer-orders", methods=["POST"])
@blp.arguments(ConsumerOrderCreateBody)
@blp.response(201, ConsumerOrderCreatedOut)
@blp.doc(security=SECURITY)
def create_consumer_order(body):
    """Take a consumer's order; it is routed to the partner serving the address (or HQ); a repeat replays."""
    answer = consumer_orders.create_consumer_order(current_principal(), **body)
    return {**consumer_queries.describe(answer["order"]), "confirmation_code": answer["confirmation_code"],
            "message": answer["message"]}


@blp.route("/consumer-orders", methods=["GET"])
@blp.arguments(MpConsumerOrderListArgs, location="query")
@blp.response(200, page_schema(ConsumerOrderOut, "MpConsumerOrderPage"))
@blp.doc(security=SECURITY)
def list_consumer_orders(args):
    """The consumer orders the caller's partner brought or serves, newest first."""
    return consumer_queries.consumer_order_page(current_principal(), **args)


@blp.route("/consumer-orders/<int:order_id>", methods=["GET"])
@blp.response(200, ConsumerOrderDetailOut)
@blp.doc(security=SECURITY)
def get_consumer_order(order_id):
    """One consumer order with its history and, once completed, its split."""
    return consumer_queries.consumer_order_detail(current_principal(), order_id)


@blp.route("/consumer-orders/<int:order_id>/accept", methods=["POST"])
@blp.response(200, ConsumerOrderDetailOut)
@blp.doc(security=SECURITY)
def accept_consumer_order(order_id):
    """The serving partner accepts the order (one of two at once wins; the other gets 409)."""
    return consumer_queries.describe(consumer_orders.accept_consumer_order(current_principal(), order_id))


@blp.route("/consumer-orders/<int:order_id>/decline", methods=["POST"])
@blp.arguments(ConsumerDeclineBody)
@blp.response(200, ConsumerOrderDetailOut)
@blp.doc(security=SECURITY)
def decline_consumer_order(body, order_id):
    """The serving partner declines: the order goes to the next candidate, else HQ."""
    return consumer_queries.describe(consumer_orders.decline_consumer_order(current_principal(), order_id,
                                                                            reason=body["reason"]))


@blp.route("/consumer-orders/<int:order_id>/complete", methods=["POST"])
@blp.arguments(ConsumerCompleteBody)
@blp.response(200, ConsumerOrderDetailOut)
@blp.doc(security=SECURITY)
def complete_consumer_order(body, order_id):
    """The serving partner records the service with the consumer's code (wrong codes are counted and limited)."""
    return consumer_queries.describe(consumer_orders.complete_consumer_order(
        current_principal(), order_id, confirmation_code=body["confirmation_code"]))
