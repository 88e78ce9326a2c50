"""HQ's orders: the list, allocation to a warehouse, shipping, refunds, offline payments, credit and commission."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import authorize_store, require
from app.orders import commission, fulfilment, payments, queries, services, states
from app.orders.models import CreditAccount
from app.schemas.orders import CANCEL_REQUEST_NAMES, LineIn, OrderDetailOut, OrderOut, ShipmentOut

blp = Blueprint("hq_orders", __name__, description="Orders: allocation, shipping, refunds, credit, commission")


class HqOrderArgs(PageArgs):
    store_id = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(states.STATUSES))
    partner_id = Id(load_default=None)
    warehouse_id = Id(load_default=None)
    number = fields.String(load_default=None, validate=validate.Length(max=20))
    distributor_id = Id(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$"),
                           metadata={"description": "a province, city or district adcode: its stores' orders"})
    created_from = AwareDateTime(load_default=None, data_key="from")
    created_to = AwareDateTime(load_default=None, data_key="to")


class AllocateBody(Body):
    warehouse_id = Id(load_default=None, allow_none=True)


class ShipBody(Body):
    case_codes = fields.List(fields.String(validate=validate.Length(min=1, max=128)), load_default=list,
                             validate=validate.Length(max=500))
    # Goods without codes, by quantity; left out, whatever remains of them ships.
    lines = fields.List(fields.Nested(LineIn), load_default=None, validate=validate.Length(max=100))


class RefundBody(Body):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=80))


class OfflinePaymentBody(Body):
    reference = fields.String(required=True, validate=validate.Length(min=1, max=64))
    amount_fen = Int(required=True, validate=validate.Range(min=1))


class CreditBody(Body):
    limit_fen = Int(required=True, validate=validate.Range(min=0, max=10**12))


class RepayBody(Body):
    amount_fen = Int(required=True, validate=validate.Range(min=1, max=10**12))


class CreditLedgerOut(Schema):
    kind = fields.String()
    delta_fen = fields.Integer()
    balance_after_fen = fields.Integer()
    order_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()


class CreditOut(Schema):
    store_id = fields.Integer()
    limit_fen = fields.Integer()
    balance_fen = fields.Integer()
    available_fen = fields.Function(lambda a: a.limit_fen - a.balance_fen)
    ledger = fields.Function(lambda a: CreditLedgerOut(many=True).dump(queries.credit_ledger(a.id)) if a.id else [])


class RuleBody(Body):
    margin_bp = Int(required=True, validate=validate.Range(min=0, max=10000))
    bringer_share_bp = Int(required=True, validate=validate.Range(min=0, max=10000))


class CommissionRuleOut(Schema):
    id = fields.Integer()
    margin_bp = fields.Integer()
    bringer_share_bp = fields.Integer()
    created_at = AwareDateTime()


class CommissionArgs(Schema):
    partner_id = Id(load_default=None)
    date_from = AwareDateTime(load_default=None, data_key="from")
    date_to = AwareDateTime(load_default=None, data_key="to")


class CommissionEntryOut(Schema):
    id = fields.Integer()
    order_id = fields.Integer(allow_none=True)
    consumer_order_id = fields.Integer(allow_none=True)
    kind = fields.String(metadata={"description": "store | consumer: which kind of order the entry came from"})
    order_number = fields.String()
    partner_id = fields.Integer()
    role = fields.String()
    base_fen = fields.Integer()
    share_bp = fields.Integer()
    amount_fen = fields.Integer()
    created_at = AwareDateTime()


class PartnerCommissionOut(Schema):
    partner_id = fields.Integer()
    partner_name = fields.String()
    entries = fields.Integer()
    amount_fen = fields.Integer()


class CommissionReportOut(Schema):
    total_fen = fields.Integer()
    partners = fields.List(fields.Nested(PartnerCommissionOut))
    entries = fields.List(fields.Nested(CommissionEntryOut))


@blp.route("/orders", methods=["GET"])
@blp.arguments(HqOrderArgs, location="query")
@blp.response(200, page_schema(OrderOut, "HqOrderPage"))
def list_orders(args):
    """Orders in the caller's region, newest first, filtered by store, status, partner, distributor, region,
    warehouse, number, time (an operator tied to one warehouse: the orders allocated to it)."""
    principal = require("order.read", kind="hq")
    page, page_size = args.pop("page"), args.pop("page_size")
    return paginate(queries.list_orders(principal, **args), page=page, page_size=page_size)


@blp.route("/orders/<int:order_id>", methods=["GET"])
@blp.response(200, OrderDetailOut)
def get_order(order_id):
    """One order with its lines, history, shipments and refunds."""
    return queries.get_order_for(require("order.read", kind="hq"), order_id)


@blp.route("/orders/<int:order_id>/allocate", methods=["POST"])
@blp.arguments(AllocateBody)
@blp.response(200, OrderDetailOut)
def allocate_order(body, order_id):
    """Reserve a paid order's goods: the city sub-warehouse if it has everything, else central, or the one given."""
    principal = require("warehouse.operate", kind="hq")
    return fulfilment.allocate_order(principal, order_id, warehouse_id=body["warehouse_id"])


@blp.route("/orders/<int:order_id>/ship", methods=["POST"])
@blp.arguments(ShipBody)
@blp.response(201, ShipmentOut)
def ship_order(body, order_id):
    """Ship (part of) an allocated order with its case codes; goods without codes ship by quantity."""
    principal = require("warehouse.operate", kind="hq")
    return fulfilment.ship_order(principal, order_id, case_codes=body["case_codes"], lines=body["lines"])


@blp.route("/orders/<int:order_id>/refund", methods=["POST"])
@blp.arguments(RefundBody)
@blp.response(200, OrderDetailOut)
def refund_order(body, order_id):
    """Refund a paid order that has not shipped: it is cancelled and its reservations released."""
    principal = require("hq.write", kind="hq")
    return services.refund_order(principal, order_id, reason=body["reason"])


@blp.route("/orders/<int:order_id>/offline-payments", methods=["POST"])
@blp.arguments(OfflinePaymentBody)
@blp.response(200, OrderDetailOut)
def offline_payment(body, order_id):
    """Record money received outside WeChat Pay (bank transfer, cash) with its reference."""
    principal = require("order.offline_pay", kind="hq")
    return payments.record_offline_payment(principal, order_id, **body)


@blp.route("/stores/<int:store_id>/credit", methods=["PUT"])
@blp.arguments(CreditBody)
@blp.response(200, CreditOut)
def set_credit(body, store_id):
    """Set a store's credit limit (never below what it owes)."""
    principal = require("hq.write", kind="hq")
    return payments.set_credit_limit(principal, store_id, limit_fen=body["limit_fen"])


@blp.route("/stores/<int:store_id>/credit", methods=["GET"])
@blp.response(200, CreditOut)
def get_credit(store_id):
    """A store's credit line and its latest ledger lines."""
    principal = require("hq.read", kind="hq")
    authorize_store(principal, "order.read", store_id)
    # A store without a credit line reads as a zero limit, so the console shows the same shape for every store.
    return queries.get_credit_account(store_id) or CreditAccount(store_id=store_id, limit_fen=0, balance_fen=0)


@blp.route("/stores/<int:store_id>/credit/repayments", methods=["POST"])
@blp.arguments(RepayBody)
@blp.response(200, CreditOut)
def repay_credit(body, store_id):
    """Record a store paying back credit."""
    principal = require("hq.write", kind="hq")
    return payments.repay_credit(principal, store_id, amount_fen=body["amount_fen"])


@blp.route("/commission-rule", methods=["PUT"])
@blp.arguments(RuleBody)
@blp.response(200, CommissionRuleOut)
def set_rule(body):
    """Set the split rule: margin on an order, and the bringing partner's share of it (basis points)."""
    principal = require("hq.write", kind="hq")
    return commission.set_commission_rule(principal, **body)


@blp.route("/commission-rule", methods=["GET"])
@blp.response(200, CommissionRuleOut)
def get_rule():
    """The split rule in force."""
    from app.errors import NotFound

    require("hq.read", kind="hq")
    rule = queries.current_commission_rule()
    if rule is None:
        raise NotFound("还没有设置分成规则", code="no_commission_rule")
    return rule


@blp.route("/commissions", methods=["GET"])
@blp.arguments(CommissionArgs, location="query")
@blp.response(200, CommissionReportOut)
def commissions(args):
    """Commission per partner over a period, with its entries (the partners the caller may see)."""
    return queries.commission_report(require("hq.read", kind="hq"), **args)


# --- cancellation requests of paid orders -----------------------------------------------------------------------


class CancelRequestArgs(PageArgs):
    status = fields.String(load_default="pending", validate=validate.OneOf(["pending", "approved", "rejected"]))


class ApproveBody(Body):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class RejectCancelBody(Body):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CancelRequestOut(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    order_number = fields.String()
    order_status = fields.String()
    store_id = fields.Integer()
    store_name = fields.String()
    paid_fen = fields.Integer()
    payment_method = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": ["pending", "approved", "rejected"]})
    status_name = fields.Function(lambda r: CANCEL_REQUEST_NAMES.get(r["status"], r["status"]))
    reason = fields.String()
    requested_by_id = fields.Integer(allow_none=True)
    requested_at = AwareDateTime()
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = AwareDateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)


@blp.route("/cancel-requests", methods=["GET"])
@blp.arguments(CancelRequestArgs, location="query")
@blp.response(200, page_schema(CancelRequestOut, "CancelRequestPage"))
def cancel_requests(args):
    """Stores' requests to cancel paid orders (pending by default), oldest first, in the caller's region."""
    principal = require("order.read", kind="hq")
    page = paginate(queries.cancel_requests(principal, status=args["status"]), page=args["page"],
                    page_size=args["page_size"], scalars=False)
    page["items"] = [queries.cancel_request_dict(row) for row in page["items"]]
    return page


@blp.route("/cancel-requests/<int:request_id>/approve", methods=["POST"])
@blp.arguments(ApproveBody)
@blp.response(200, CancelRequestOut)
def approve_cancel_request(body, request_id):
    """Approve: the order is cancelled, its reservations released and what was paid refunded."""
    principal = require("hq.write", kind="hq")
    request = services.decide_cancel_request(principal, request_id, approve=True, note=body["note"])
    return queries.cancel_request_detail(request.id)


@blp.route("/cancel-requests/<int:request_id>/reject", methods=["POST"])
@blp.arguments(RejectCancelBody)
@blp.response(200, CancelRequestOut)
def reject_cancel_request(body, request_id):
    """Reject, saying why: the order goes on as it was."""
    principal = require("hq.write", kind="hq")
    request = services.decide_cancel_request(principal, request_id, approve=False, note=body["reason"])
    return queries.cancel_request_detail(request.id)
