"""A consumer's verification in the mini-program, and referral rewards (CHANNEL.md §9), when HQ has them on."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs
from app.core.schemas import AwareDateTime, Body
from app.core.security import current_principal
from app.extensions import limiter
from app.referrals import queries, services
from app.schemas.referrals import STATUSES, MyReferralRewardList
from app.schemas.verification import VerifyOut, WhereArgs
from app.verification.flows import verify_as_consumer
from app.verification.services import consumer_settings

blp = Blueprint("mp_referrals", __name__, description="Consumer verification and referral rewards (推荐奖励)")


class ConsumerVerifyBody(Body, WhereArgs):
    code = fields.String(required=True, validate=validate.Length(min=1, max=512))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-180, max=180))


class EarnedRewardOut(Schema):
    level = fields.Integer()
    status = fields.String()


class ConsumerVerifyOut(VerifyOut):
    referral_rewards = fields.List(fields.Nested(EarnedRewardOut),
                                   metadata={"description": "rewards this check earned the consumer's referrers"})


class ReferralLinkOut(Schema):
    link = fields.String(metadata={"description": "the token to share"})
    path = fields.String(metadata={"description": "the mini-program page that binds through it"})
    created_at = AwareDateTime()


class ReferralBindOut(Schema):
    status = fields.String(metadata={"enum": ["bound", "already_bound"]})
    mine = fields.Boolean(metadata={"description": "bound to this link's consumer (false: to an earlier one)"})
    bound_at = AwareDateTime()
    expires_at = AwareDateTime()


class MyReferralRewardArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


@blp.route("/consumer-verifications", methods=["POST"])
@limiter.limit("30/minute;300/hour")
@blp.arguments(ConsumerVerifyBody)
@blp.response(200, ConsumerVerifyOut)
@blp.doc(security=[{"bearer": []}])
def verify_code(body):
    """A logged-in consumer checks a unit: the public page's answer; a genuine unit is recorded against them (what
    lets them share a link) and, when referral rewards are on, earns their referrers a reward."""
    result = verify_as_consumer(current_principal(), body["code"], lat=body["lat"], lng=body["lng"])
    settings = consumer_settings()
    product = result.get("product")
    if product is not None and not product.get("brand"):
        product["brand"] = settings["brand_name"]
    return {**result, "service_contact": settings["service_contact"]}


@blp.route("/referral-links", methods=["POST"])
@blp.response(201, ReferralLinkOut)
@blp.doc(security=[{"bearer": []}])
def create_link():
    """The caller's share link (the same one each time). 409 `referral_off`; 409 `verify_first` before the
    caller has verified a genuine unit in the mini-program."""
    return services.create_link(current_principal())


@blp.route("/referrals/<string:link>/bind", methods=["POST"])
@blp.response(200, ReferralBindOut)
@blp.doc(security=[{"bearer": []}])
def bind(link):
    """Bind the caller to the link's consumer: first touch wins (`already_bound` while a binding lasts). 409
    `referral_off`, `self_referral`, `referral_loop`; 404 `referral_link_not_found`."""
    return services.bind(current_principal(), link)


@blp.route("/referral-rewards", methods=["GET"])
@blp.arguments(MyReferralRewardArgs, location="query")
@blp.response(200, MyReferralRewardList)
@blp.alt_response(409, "CONFLICT")  # `referral_off`: HQ has not switched referral rewards on
@blp.doc(security=[{"bearer": []}])
def my_rewards(args):
    """The caller's rewards as a referrer (newest first) and their balances. 409 `referral_off`."""
    return queries.my_rewards(current_principal(), status=args["status"], page=args["page"],
                              page_size=args["page_size"])
