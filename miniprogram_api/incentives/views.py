"""A store's scan incentive ledger and balance."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Id, Int
from app.core.security import current_principal, default_store_id
from app.incentives.queries import list_store_ledger

blp = Blueprint("mp_incentives", __name__, description="Scan incentives (扫码奖励)")


class IncentiveLedgerArgs(Schema):
    store_id = Id(load_default=None)
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = Int(load_default=20, validate=validate.Range(min=1, max=200))


class IncentiveCreditOut(Schema):
    id = fields.Integer()
    serial = fields.String()
    sku_id = fields.Integer()
    sku_name = fields.String()
    step = fields.String()
    kind = fields.String(metadata={"enum": ["credit", "reversal"],
                                   "description": "a reversal takes back a credit whose scan was undone"})
    reversed = fields.Boolean(metadata={"description": "a credit taken back by a later reversal entry"})
    reverses_id = fields.Integer(allow_none=True)
    points = fields.Integer()
    amount_fen = fields.Integer()
    event_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()


class IncentiveLedgerOut(Schema):
    store_id = fields.Integer()
    balance_points = fields.Integer()
    balance_fen = fields.Integer()
    items = fields.List(fields.Nested(IncentiveCreditOut))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


@blp.route("/incentives", methods=["GET"])
@blp.arguments(IncentiveLedgerArgs, location="query")
@blp.response(200, IncentiveLedgerOut)
@blp.doc(security=[{"bearer": []}])
def ledger(args):
    """The store's scan rewards, newest first, and the balance."""
    principal = current_principal()
    store_id = default_store_id(principal, args["store_id"])
    return list_store_ledger(principal, store_id, page=args["page"], page_size=args["page_size"])
