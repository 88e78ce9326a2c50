"""Territory assignments seen and made by HQ (CHANNEL.md §1): who holds which region, exclusive or shared, when."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.channel import queries, territories
from app.core import regions
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Bool, Id
from app.core.security import current_principal

blp = Blueprint("hq_territories", __name__, description="Territory assignments: partner × region × industry × kind")

_CODE = validate.Regexp(r"^\d{6}$", error="行政区划代码是 6 位数字")


class AssignmentBody(Body):
    partner_id = Id(required=True)
    region_code = fields.String(required=True, validate=_CODE)
    industry = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    kind = fields.String(required=True, validate=validate.OneOf(["exclusive", "shared"]))
    valid_from = AwareDateTime(load_default=None, allow_none=True)
    valid_to = AwareDateTime(load_default=None, allow_none=True)


class EndBody(Body):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    at = AwareDateTime(load_default=None, allow_none=True)


class AssignmentListArgs(PageArgs):
    region = fields.String(load_default=None, validate=_CODE)
    partner_id = Id(load_default=None)
    active = Bool(load_default=None, allow_none=True)


class AssignmentOut(Schema):
    id = fields.Integer()
    partner_id = fields.Integer()
    partner_name = fields.Function(lambda t: t.partner.name)
    partner_kind = fields.Function(lambda t: t.partner.kind)
    region_code = fields.String()
    region_name = fields.Function(lambda t: regions.region_name(t.region_code))
    industry = fields.String(allow_none=True)
    kind = fields.String()
    valid_from = AwareDateTime()
    valid_to = AwareDateTime(allow_none=True)
    ended_at = AwareDateTime(allow_none=True)
    end_reason = fields.String(allow_none=True)
    created_at = AwareDateTime()


@blp.route("/territory-assignments", methods=["POST"])
@blp.arguments(AssignmentBody)
@blp.response(201, AssignmentOut)
def assign(body):
    """Assign a region to an agent or distributor; an exclusive one overlapping another is refused (409
    `territory_taken`, naming the holder and until when)."""
    return territories.assign_territory(current_principal(), **body)


@blp.route("/territory-assignments", methods=["GET"])
@blp.arguments(AssignmentListArgs, location="query")
@blp.response(200, page_schema(AssignmentOut, "TerritoryAssignmentPage"))
def list_assignments(args):
    """Assignments by region (a region filter includes its children); `active`: valid now, or not."""
    stmt = queries.list_territories(current_principal(), region=args.pop("region"),
                                    partner_id=args.pop("partner_id"), active=args.pop("active"))
    page = paginate(stmt, scalars=False, **args)
    page["items"] = [row[0] for row in page["items"]]
    return page


@blp.route("/territory-assignments/<int:assignment_id>/end", methods=["POST"])
@blp.arguments(EndBody)
@blp.response(200, AssignmentOut)
def end(body, assignment_id):
    """End an assignment now (or at `at`); history written while it held keeps its attribution."""
    return territories.end_territory(current_principal(), assignment_id, **body)
