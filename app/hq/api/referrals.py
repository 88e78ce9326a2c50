"""Consumer referral rewards for HQ (CHANNEL.md §9): the policy (the on switch), the rewards ledger, payouts."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs
from app.core.schemas import AwareDateTime, Body, Day, Id, Int
from app.core.security import current_principal, require
from app.referrals import queries, services
from app.schemas.referrals import STATUSES, HqReferralRewardList, ReferralPolicyBody, ReferralPolicyIO

blp = Blueprint("hq_referrals", __name__, description="Consumer referral rewards: policy, ledger, payouts")


class HqReferralRewardArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    referrer_id = Id(load_default=None)
    level = Int(load_default=None, validate=validate.OneOf([1, 2]))
    day_from = Day(load_default=None, data_key="from")
    day_to = Day(load_default=None, data_key="to")


class ReferralPayoutBody(Body):
    user_id = Id(required=True)
    amount_fen = Int(required=True, validate=validate.Range(min=1, max=100_000_000))
    method = fields.String(required=True, validate=validate.OneOf(services.PAYOUT_METHODS))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=64),
                              metadata={"description": "WeChat Pay transfer number, or the offline receipt's"})
    note = fields.String(load_default="", validate=validate.Length(max=200))


class ReferralPayoutOut(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    amount_fen = fields.Integer()
    method = fields.String()
    reference = fields.String()
    created_at = AwareDateTime()


@blp.route("/referral-policy", methods=["GET"])
@blp.response(200, ReferralPolicyIO)
@blp.doc(security=[{"bearer": []}])
def get_policy():
    """The policy in force (off until HQ switches it on)."""
    require("hq.read")
    return services.describe_policy()


@blp.route("/referral-policy", methods=["PUT"])
@blp.arguments(ReferralPolicyBody)
@blp.response(200, ReferralPolicyIO)
@blp.doc(security=[{"bearer": []}])
def put_policy(body):
    """Change the policy (fields left out keep their value). 422 `referral_policy_invalid`."""
    return services.update_policy(current_principal(), **body)


@blp.route("/referral-rewards", methods=["GET"])
@blp.arguments(HqReferralRewardArgs, location="query")
@blp.response(200, HqReferralRewardList)
@blp.doc(security=[{"bearer": []}])
def list_rewards(args):
    """The rewards ledger, newest first, filtered (`status`, `referrer_id`, `level`, `from`/`to` business days),
    with totals by status over the filter; readable while the policy is off (what is owed stays visible)."""
    return queries.hq_rewards(current_principal(), **args)


@blp.route("/referral-payouts", methods=["POST"])
@blp.arguments(ReferralPayoutBody)
@blp.response(201, ReferralPayoutOut)
@blp.doc(security=[{"bearer": []}])
def record_payout(body):
    """Record a payout HQ made (offline or a WeChat Pay transfer, with its reference); it is never assumed. 409
    `insufficient_balance` beyond the referrer's available balance, `payout_duplicate` for a reference again."""
    return services.record_payout(current_principal(), **body)
