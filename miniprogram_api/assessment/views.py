"""The caller's own partner's assessment and rebates of a month (not its distributors')."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.assessment import queries
from app.core.security import current_principal
from app.schemas.assessment import OwnAssessmentList, RebateList
from app.schemas.targets import PERIOD

blp = Blueprint("mp_assessment", __name__, description="The caller's partner's assessment, tier and rebates")
SECURITY = [{"bearer": []}]


class OwnAssessmentArgs(Schema):
    period = fields.String(required=True, validate=PERIOD)


@blp.route("/assessments", methods=["GET"])
@blp.arguments(OwnAssessmentArgs, location="query")
@blp.response(200, OwnAssessmentList)
@blp.doc(security=SECURITY)
def assessments(args):
    """The month's assessment of the caller's own partner: score, tier, movement and each figure's inputs
    (empty until HQ closes the month)."""
    return queries.own_assessments(current_principal(), args["period"])


@blp.route("/rebates", methods=["GET"])
@blp.arguments(OwnAssessmentArgs, location="query")
@blp.response(200, RebateList)
@blp.doc(security=SECURITY)
def rebates(args):
    """The month's rebate entries of the caller's own partner (the close's, and any adjustment with its
    reason) and their sum."""
    return queries.own_rebates(current_principal(), args["period"])
