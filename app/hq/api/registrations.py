"""Registrations seen from HQ: the list (conflicts first when asked), refused attempts, reassignment with a
reason, and the rules (protection days, extensions, quotas by partner level, reminders, dormancy)."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.channel import registrations
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Bool, Id, Int
from app.core.security import current_principal, require
from app.schemas.registrations import RegistrationOut

blp = Blueprint("hq_registrations", __name__, description="Registrations (客户报备), conflicts and their rules")

STATUSES = ["protected", "converted", "expired", "released", "reassigned"]


class HqRegistrationArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    partner_id = Id(load_default=None)
    conflicts = Bool(load_default=False, metadata={"description": "only registrations others were refused on"})


class EventOut(Schema):
    at = AwareDateTime()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    action = fields.String()
    user_id = fields.Integer(allow_none=True)
    reason = fields.String()


class ConflictOut(Schema):
    id = fields.Integer()
    at = AwareDateTime()
    partner_id = fields.Integer(metadata={"description": "the partner refused"})
    partner_name = fields.String()
    holder_partner_id = fields.Integer(allow_none=True)
    holder_name = fields.String()
    registration_id = fields.Integer(allow_none=True)
    store_id = fields.Integer(allow_none=True, metadata={"description": "set when the shop was already a store"})
    matched = fields.String(metadata={"enum": ["licence", "phone", "name_district"]})
    name = fields.String()
    phone = fields.String()
    region_code = fields.String()
    region_name = fields.String()
    held_until = AwareDateTime(allow_none=True)


class HqRegistrationOut(RegistrationOut):
    conflicts = fields.List(fields.Nested(ConflictOut))


class RegistrationDetailOut(HqRegistrationOut):
    history = fields.List(fields.Nested(EventOut))


class ConflictListOut(Schema):
    items = fields.List(fields.Nested(ConflictOut))


class ReassignBody(Body):
    partner_id = Id(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


_DAYS = validate.Range(min=0, max=3650)


class PolicyIO(Schema):
    protection_days = Int(validate=_DAYS)
    max_extensions = Int(validate=_DAYS)
    extension_days = Int(validate=_DAYS)
    quota_by_level = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=16)),
                                 values=Int(validate=validate.Range(min=0, max=100_000)),
                                 validate=validate.Length(max=20))
    default_quota = Int(validate=validate.Range(min=0, max=100_000))
    reminder_days = Int(validate=_DAYS)
    dormancy_days = Int(validate=_DAYS)
    updated_at = AwareDateTime(dump_only=True, allow_none=True)


class PolicyBody(PolicyIO, Body):
    pass


def _with_conflicts(principal, regs) -> list[dict]:
    items = registrations.describe(regs)
    found = registrations.list_conflicts(principal, registration_ids=[r.id for r in regs])
    for item in items:
        item["conflicts"] = [c for c in found if c["registration_id"] == item["id"]]
    return items


@blp.route("/registrations", methods=["GET"])
@blp.arguments(HqRegistrationArgs, location="query")
@blp.response(200, page_schema(HqRegistrationOut, "HqRegistrationPage"))
def list_registrations(args):
    """Registrations: with `conflicts=1` those another partner was refused on (latest refusal first, each with
    the attempts: both partners); else protected ones ending soonest first."""
    principal = require("hq.read")
    page = paginate(registrations.list_registrations(principal, status=args["status"],
                                                     partner_id=args["partner_id"], conflicts=args["conflicts"],
                                                     action="hq.read"),
                    page=args["page"], page_size=args["page_size"])
    page["items"] = _with_conflicts(principal, page["items"])
    return page


@blp.route("/registrations/<int:registration_id>", methods=["GET"])
@blp.response(200, RegistrationDetailOut)
def get_registration(registration_id):
    """One registration with its refused attempts and its history (an audit row per transition)."""
    principal = require("hq.read")
    reg = registrations.get_registration_for(principal, registration_id, action="hq.read")
    item = _with_conflicts(principal, [reg])[0]
    item["history"] = registrations.history(reg)
    return item


@blp.route("/registration-conflicts", methods=["GET"])
@blp.response(200, ConflictListOut)
def list_conflicts():
    """Refused registrations, newest first (the 200 newest), with the partner refused and the holder (a
    registration, or a store the shop already is)."""
    return {"items": registrations.list_conflicts(require("hq.read"))}


@blp.route("/registrations/<int:registration_id>/reassign", methods=["POST"])
@blp.arguments(ReassignBody)
@blp.response(200, RegistrationOut)
def reassign_registration(body, registration_id):
    """Give a protected shop, or a dormant converted store, to another partner with a reason; answers the new
    registration (the old one ends `reassigned`)."""
    reg = registrations.reassign_registration(require("hq.write"), registration_id, **body)
    return registrations.describe([reg])[0]


@blp.route("/registration-policy", methods=["GET"])
@blp.response(200, PolicyIO)
def get_policy():
    """The rules in force."""
    require("hq.read")
    return registrations.get_policy()


@blp.route("/registration-policy", methods=["PUT"])
@blp.arguments(PolicyBody)
@blp.response(200, PolicyIO)
def put_policy(body):
    """Change the rules (fields left out keep their value); checked against their bounds (`policy_invalid`)."""
    return registrations.update_policy(current_principal(), **body)
