"""The channel seen from HQ (and from partners, within their subtree): partners, stores, invites, regions."""

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.accounts.roles import ALL_ROLES
from app.channel import flows, queries, services
from app.core import regions
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import current_principal, require

blp = Blueprint("hq_channel", __name__, description="Partners, stores, invites and regions")


class TerritoryIO(Body):
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    industry = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    kind = fields.String(load_default="shared", validate=validate.OneOf(["exclusive", "shared"]), load_only=True)


class PartnerBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(["agent", "distributor"]))
    parent_id = Id(required=True)
    level = fields.String(load_default="standard", validate=validate.Length(max=16))
    contact_phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20))
    territories = fields.List(fields.Nested(TerritoryIO), load_default=list)


class PartnerOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    parent_id = fields.Integer(allow_none=True)
    level = fields.String()
    territories = fields.List(fields.Nested(Schema.from_dict({"region_code": fields.String(),
                                                              "industry": fields.String(allow_none=True)})))


class StoreBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    # Without one, the distributor whose territory serves the store's place (422 when none does).
    distributor_id = Id(load_default=None, allow_none=True)
    price_tier_id = Id(required=True)
    owner_name = fields.String(load_default="", validate=validate.Length(max=64))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^1\d{10}$"))
    address = fields.String(load_default="", validate=validate.Length(max=255))
    industry = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))


class StoreOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    owner_name = fields.String()
    phone = fields.String(allow_none=True)
    address = fields.String()
    province_code = fields.String()
    city_code = fields.String()
    district_code = fields.String(allow_none=True)
    city_name = fields.Function(lambda s: regions.region_name(s.city_code))
    industry = fields.String(allow_none=True)
    distributor_id = fields.Integer()
    price_tier_id = fields.Integer()


class StoreListArgs(PageArgs):
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$"))


class InviteBody(Body):
    role = fields.String(required=True, validate=validate.OneOf(ALL_ROLES))
    store_id = Id(load_default=None, allow_none=True)
    partner_id = Id(load_default=None, allow_none=True)
    ttl_hours = Int(load_default=72)


class InviteOut(Schema):
    id = fields.Integer()
    token = fields.String()
    role = fields.String()
    store_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)
    expires_at = AwareDateTime()
    redeemed_at = AwareDateTime(allow_none=True)
    revoked_at = AwareDateTime(allow_none=True)
    qr_url = fields.Function(lambda i: f"/api/hq/v1/invites/{i.id}/qr.png")


class RegionOut(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    label = fields.Function(lambda r: regions.region_name(r.code),
                            metadata={"description": "the name a person reads (a municipality's 市辖区 reads as "
                                                     "the municipality)"})


@blp.route("/partners", methods=["POST"])
@blp.arguments(PartnerBody)
@blp.response(201, PartnerOut)
def create_partner(body):
    """Add an agent or distributor under a parent partner."""
    return services.create_partner(require("hq.write"), **body)


@blp.route("/partners", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(PartnerOut, "PartnerPage"))
def list_partners(args):
    """Partners the caller may see (a partner sees its own subtree)."""
    return paginate(queries.list_partners(require("partner.read")), **args)


@blp.route("/partners/<int:partner_id>", methods=["GET"])
@blp.response(200, PartnerOut)
def get_partner(partner_id):
    """One partner."""
    return queries.get_partner_for(current_principal(), partner_id)


@blp.route("/stores", methods=["POST"])
@blp.arguments(StoreBody)
@blp.response(201, StoreOut)
def create_store(body):
    """Add a store served by a distributor."""
    return services.create_store(require("hq.write"), **body)


@blp.route("/stores", methods=["GET"])
@blp.arguments(StoreListArgs, location="query")
@blp.response(200, page_schema(StoreOut, "StorePage"))
def list_store_page(args):
    """Stores the caller may see."""
    principal = require("store.read")
    region = args.pop("region")
    return paginate(queries.list_stores(principal, region=region), **args)


@blp.route("/stores/<int:store_id>", methods=["GET"])
@blp.response(200, StoreOut)
def get_store(store_id):
    """One store."""
    return queries.get_store_for(current_principal(), store_id)


@blp.route("/invites", methods=["POST"])
@blp.arguments(InviteBody)
@blp.response(201, InviteOut)
def create_invite(body):
    """Invite a person into a role at a store or partner; show them the invite's QR."""
    return flows.create_invite(current_principal(), **body)


@blp.route("/invites/<int:invite_id>/qr.png", methods=["GET"])
@blp.response(200, content_type="image/png")
def invite_qr(invite_id):
    """The invite's mini-program code (made once through WeChat, then kept)."""
    png = flows.invite_qr_png(current_principal(), invite_id)
    return Response(png, mimetype="image/png")


@blp.route("/invites/<int:invite_id>/revoke", methods=["POST"])
@blp.arguments(Body)
@blp.response(200, InviteOut)
def revoke_invite(_body, invite_id):
    """Withdraw an invite that has not been used."""
    return flows.revoke_invite(current_principal(), invite_id)


@blp.route("/regions", methods=["GET"])
@blp.arguments(Schema.from_dict({"parent": fields.String(load_default=None,
                                                           validate=validate.Regexp(r"^\d{6}$"))}),
               location="query")
@blp.response(200, RegionOut(many=True))
def list_regions(args):
    """Provinces, or the cities of a province, or the districts of a city."""
    current_principal()
    if args["parent"]:
        return regions.children(args["parent"])
    return regions.provinces()


class RatingsArgs(PageArgs):
    period = fields.String(load_default=None, validate=validate.Regexp(
        r"^20\d{2}-(0[1-9]|1[0-2])$", error="月份格式是 YYYY-MM（2000 到 2099 年）"))
    partner_id = Id(load_default=None, metadata={"description": "a distributor, or an agent (its distributors)"})


class RatingRowOut(Schema):
    id = fields.Integer()
    store_id = fields.Integer()
    store_code = fields.String()
    store_name = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    user_id = fields.Integer()
    created_at = AwareDateTime()


class RatingGroupOut(Schema):
    distributor_id = fields.Integer()
    distributor_code = fields.String()
    distributor_name = fields.String()
    period = fields.String()
    count = fields.Integer()
    min_count = fields.Integer()
    counted = fields.Boolean()
    average = fields.Float(allow_none=True)
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer())
    ratings = fields.List(fields.Nested(RatingRowOut))


class RatingPageOut(Schema):
    items = fields.List(fields.Nested(RatingGroupOut))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


@blp.route("/ratings", methods=["GET"])
@blp.arguments(RatingsArgs, location="query")
@blp.response(200, RatingPageOut)
def list_ratings(args):
    """Store ratings per distributor and month, every rating with its store and writer (HQ sees all)."""
    from app.ratings.queries import hq_ratings

    rows = hq_ratings(current_principal(), period=args["period"], partner_id=args["partner_id"])
    page, size = args["page"], args["page_size"]
    return {"items": rows[(page - 1) * size: page * size], "page": page, "page_size": size, "total": len(rows)}
