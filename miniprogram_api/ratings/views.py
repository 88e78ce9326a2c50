"""Store ratings of their distributor: an owner rates once a month; the distributor reads its summary."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import current_principal
from app.ratings import queries, services

blp = Blueprint("mp_ratings", __name__, description="Store ratings of their distributor (门店评价)")

PERIOD = validate.Regexp(r"^20\d{2}-(0[1-9]|1[0-2])$", error="月份格式是 YYYY-MM（2000 到 2099 年）")


class RatingBody(Body):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    score = Int(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    store_id = Id(load_default=None, metadata={"description": "the caller's store when omitted"})


class RatingOut(Schema):
    id = fields.Integer()
    store_id = fields.Integer()
    distributor_id = fields.Integer()
    period = fields.String(metadata={"description": "the business month rated (YYYY-MM, Asia/Shanghai)"})
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    created_at = AwareDateTime()


class SummaryArgs(Schema):
    period = fields.String(load_default=None, validate=PERIOD, metadata={"description": "default: this month"})


class CommentOut(Schema):
    score = fields.Integer()
    comment = fields.String()


class DistributorRatingSummary(Schema):
    distributor_id = fields.Integer()
    distributor_code = fields.String()
    distributor_name = fields.String()
    period = fields.String()
    count = fields.Integer()
    min_count = fields.Integer(metadata={"description": "ratings needed before the average counts"})
    counted = fields.Boolean()
    average = fields.Float(allow_none=True, metadata={"description": "null until `min_count` ratings"})
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer())
    comments = fields.List(fields.Nested(CommentOut), metadata={"description": "never who wrote which"})


class SummaryOut(Schema):
    period = fields.String()
    items = fields.List(fields.Nested(DistributorRatingSummary))


@blp.route("/ratings", methods=["POST"])
@blp.arguments(RatingBody)
@blp.response(201, RatingOut)
@blp.alt_response(200, schema=RatingOut, description="a repeat of the same request_id: the first answer")
@blp.doc(security=[{"bearer": []}])
def rate(body):
    """A store owner rates the distributor serving the store for this month (once a month, after an order or a
    delivery that month): 409 `already_rated` / `no_business_this_month`."""
    rating, new = services.rate_distributor(current_principal(), **body)
    return rating, 201 if new else 200


@blp.route("/ratings/summary", methods=["GET"])
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, SummaryOut)
@blp.doc(security=[{"bearer": []}])
def summary(args):
    """Partner staff: each distributor of their scope's ratings that month (count, average once it counts,
    comments), never who wrote which."""
    return queries.distributor_summary(current_principal(), period=args["period"])
