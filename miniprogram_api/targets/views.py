"""A partner's targets of a month with actuals and variance (a distributor its own, an agent its subtree)."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.analytics import targets
from app.core.security import current_principal
from app.schemas.targets import PERIOD, TargetList

blp = Blueprint("mp_targets", __name__, description="The caller's targets with actuals and variance")
SECURITY = [{"bearer": []}]


class TargetArgs(Schema):
    period = fields.String(required=True, validate=PERIOD)


@blp.route("/targets", methods=["GET"])
@blp.arguments(TargetArgs, location="query")
@blp.response(200, TargetList)
@blp.doc(security=SECURITY)
def list_targets(args):
    """The month's targets of the caller's partner (an agent's whole subtree), each with its actual from the
    scans, orders and registrations attributed to it, the variance (actual − target) and attainment."""
    return {"items": targets.list_targets(current_principal(), args["period"]), "period": args["period"]}
