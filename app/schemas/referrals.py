"""Answer shapes of referral rewards that the mini-program and HQ edges share."""

from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Body, Bool, Int

STATUSES = ("pending", "available", "cancelled", "reversed")


class ReferralPolicyIO(Schema):
    enabled = fields.Boolean()
    binding_days = fields.Integer(metadata={"description": "how long a binding lasts"})
    purchase_window_days = fields.Integer(
        metadata={"description": "a unit a store sold within the last N days counts as the consumer's purchase"})
    reward_fen = fields.Integer(metadata={"description": "level 1 reward per unit"})
    freeze_days = fields.Integer(metadata={"description": "days a reward stays pending before it is available"})
    daily_cap_fen = fields.Integer(metadata={"description": "most a referrer earns per business day"})
    levels = fields.Integer(metadata={"enum": [1, 2]})
    level2_reward_fen = fields.Integer(metadata={"description": "the referrer's referrer's reward (levels 2)"})
    updated_at = AwareDateTime(allow_none=True)


class ReferralPolicyBody(Body):
    enabled = Bool(load_default=None)
    binding_days = Int(load_default=None, validate=validate.Range(min=1, max=365))
    purchase_window_days = Int(load_default=None, validate=validate.Range(min=1, max=90))
    reward_fen = Int(load_default=None, validate=validate.Range(min=0, max=100_000))
    freeze_days = Int(load_default=None, validate=validate.Range(min=0, max=90))
    daily_cap_fen = Int(load_default=None, validate=validate.Range(min=0, max=10_000_000))
    levels = Int(load_default=None, validate=validate.OneOf([1, 2]))
    level2_reward_fen = Int(load_default=None, validate=validate.Range(min=0, max=100_000))


class ReferralRewardOut(Schema):
    id = fields.Integer()
    level = fields.Integer()
    amount_fen = fields.Integer()
    status = fields.String(metadata={"enum": list(STATUSES)})
    cancel_reason = fields.String(allow_none=True, metadata={"enum": ["returned", "daily_cap", None]})
    frozen_until = AwareDateTime()
    created_at = AwareDateTime()
    settled_at = AwareDateTime(allow_none=True)
    serial = fields.String()
    sku_name = fields.String()


class ReferralBalanceOut(Schema):
    pending_fen = fields.Integer()
    available_fen = fields.Integer()
    paid_fen = fields.Integer()


class MyReferralRewardList(Schema):
    items = fields.List(fields.Nested(ReferralRewardOut))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
    balance = fields.Nested(ReferralBalanceOut)


class HqReferralRewardOut(ReferralRewardOut):
    referrer_id = fields.Integer()
    consumer_id = fields.Integer()
    referrer_name = fields.String(allow_none=True)
    referrer_phone = fields.String(allow_none=True, metadata={"description": "masked"})


class ReferralRewardTotals(Schema):
    count = fields.Integer()
    pending = fields.Integer()
    available = fields.Integer()
    cancelled = fields.Integer()
    reversed = fields.Integer()
    paid_out_fen = fields.Integer(metadata={"description": "all payouts recorded (every referrer)"})
    payable_fen = fields.Integer(metadata={"description": "available balances not yet paid (every referrer)"})


class HqReferralRewardList(Schema):
    items = fields.List(fields.Nested(HqReferralRewardOut))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
    totals = fields.Nested(ReferralRewardTotals)
