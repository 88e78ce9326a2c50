"""Orders in the mini-program: place, confirm or reject a proxy order, pay, and confirm receipt."""

from flask_smorest import Blueprint

from app.core.pagination import page_schema, paginate
from app.core.security import current_principal
from app.errors import ValidationFailed
from app.orders import fulfilment, payments, queries, services, states
from app.schemas.orders import OrderDetailOut, OrderOut
from miniprogram_api.orders.schemas import (
    CancelBody,
    CancelOut,
    ConfirmBody,
    OrderCreateBody,
    OrderListArgs,
    PaymentBody,
    PaymentOut,
    ReceiptOut,
    RejectBody,
)

blp = Blueprint("mp_orders", __name__, description="Orders: proxy orders, payment, receipt")
SECURITY = [{"bearer": []}]


@blp.route("/orders", methods=["POST"])
@blp.arguments(OrderCreateBody)
@blp.response(201, OrderDetailOut)
@blp.doc(security=SECURITY)
def create_order(body):
    """Place an order for a store (a distributor's order waits for the owner); a repeated request_id replays."""
    return services.create_order(current_principal(), **body)


@blp.route("/orders", methods=["GET"])
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, page_schema(OrderOut, "OrderPage"))
@blp.doc(security=SECURITY)
def list_orders(args):
    """Orders of the stores the caller may see, newest first."""
    page, page_size = args.pop("page"), args.pop("page_size")
    return paginate(queries.list_orders(current_principal(), **args), page=page, page_size=page_size)


@blp.route("/orders/<int:order_id>", methods=["GET"])
@blp.response(200, OrderDetailOut)
@blp.doc(security=SECURITY)
def get_order(order_id):
    """One order with its lines, history, shipments and refunds."""
    return queries.get_order_for(current_principal(), order_id)


@blp.route("/orders/<int:order_id>/confirm", methods=["POST"])
@blp.arguments(ConfirmBody)
@blp.response(200, OrderDetailOut)
@blp.doc(security=SECURITY)
def confirm_order(body, order_id):
    """The owner confirms a proxy order, optionally lowering quantities."""
    return services.confirm_order(current_principal(), order_id, lines=body["lines"])


@blp.route("/orders/<int:order_id>/reject", methods=["POST"])
@blp.arguments(RejectBody)
@blp.response(200, OrderDetailOut)
@blp.doc(security=SECURITY)
def reject_order(body, order_id):
    """The owner rejects a proxy order with a reason."""
    return services.reject_order(current_principal(), order_id, reason=body["reason"])


@blp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@blp.arguments(CancelBody)
@blp.response(200, CancelOut, description="cancelled")
@blp.alt_response(202, schema=CancelOut, success=True,
                  description="paid: a cancellation request waits for HQ (the refund happens when HQ approves)")
@blp.doc(security=SECURITY)
def cancel_order(body, order_id):
    """Cancel an order that has not shipped: an unpaid one at once; a paid one asks HQ, who refunds on approval."""
    order = services.cancel_order(current_principal(), order_id, reason=body["reason"])
    request = order.cancel_request
    if order.status not in (states.CANCELLED, states.REFUNDED) and request is not None and request.status == "pending":
        return order, 202
    return order


@blp.route("/orders/<int:order_id>/payments", methods=["POST"])
@blp.arguments(PaymentBody)
@blp.response(200, PaymentOut)
@blp.doc(security=SECURITY)
def pay_order(body, order_id):
    """Pay: `wechat` answers the wx.requestPayment arguments; `credit` and `offline` pay at once."""
    principal = current_principal()
    method = body["method"]
    if method == "wechat":
        params = payments.start_wechat_payment(principal, order_id)
        return {"method": method, "order": queries.get_order_for(principal, order_id), "request_payment": params}
    if method == "credit":
        order = payments.pay_with_credit(principal, order_id)
    else:
        if not body["reference"]:
            raise ValidationFailed("请填写收款凭证号", code="reference_required",
                                   details={"fields": {"reference": ["必填"]}})
        order = payments.record_offline_payment(principal, order_id, reference=body["reference"],
                                                amount_fen=body["amount_fen"])
    return {"method": method, "order": order, "request_payment": None}


@blp.route("/orders/<int:order_id>/payments/check", methods=["POST"])
@blp.response(200, OrderDetailOut)
@blp.doc(security=SECURITY)
def check_payment(order_id):
    """The phone says it paid: ask WeChat Pay and book the payment if it went through."""
    return payments.check_wechat_payment(current_principal(), order_id)


@blp.route("/orders/<int:order_id>/receive", methods=["POST"])
@blp.response(200, ReceiptOut)
@blp.doc(security=SECURITY)
def receive_order(order_id):
    """The owner confirms the goods arrived (instead of scanning them in): everything still on its way is received
    into the store's stock, coded goods by their codes as a scan-in would; a repeat answers the same."""
    return fulfilment.confirm_receipt(current_principal(), order_id)
