"""Invites: redeeming an invite QR, and a store's invites made by the people serving it (partner staff, or an
owner inviting clerks) without the HQ API."""

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.accounts.roles import STORE_CLERK, STORE_OWNER
from app.channel import flows, queries
from app.channel.flows import INVITE_PAGE
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Int
from app.core.security import current_principal
from app.errors import NotFound
from app.schemas.sessions import SessionOut
from app.sessions import flows as sessions

blp = Blueprint("mp_invites", __name__, description="Invites into a store or partner")

_TOKEN = validate.Regexp(r"^[0-9A-Za-z]{1,32}$")
_ROLES = {"owner": STORE_OWNER, "clerk": STORE_CLERK}


@blp.route("/invites/<string:token>/redeem", methods=["POST"])
@blp.arguments(Body)
@blp.response(200, SessionOut)
@blp.doc(security=[{"bearer": []}])
def redeem(_body, token):
    """Join the store or partner the invite names; the answer carries a new token with the role."""
    principal = current_principal()
    if not _TOKEN.regex.match(token):
        raise NotFound("邀请码无效", code="invite_not_found")
    return sessions.redeem_invite(principal, token)


class StoreInviteBody(Body):
    role = fields.String(required=True, validate=validate.OneOf(list(_ROLES)),
                         metadata={"description": "`owner` (partner staff and HQ only) or `clerk`"})
    ttl_hours = Int(load_default=72, validate=validate.Range(min=1, max=24 * 30))


class StoreInviteOut(Schema):
    id = fields.Integer()
    token = fields.String(metadata={"description": "the mini-program code's scene; redeem with "
                                                  "POST /invites/{token}/redeem"})
    role = fields.String(metadata={"description": "store_owner | store_clerk"})
    store_id = fields.Integer()
    status = fields.Function(queries.invite_status, metadata={"description": "open | redeemed | revoked | expired"})
    expires_at = AwareDateTime()
    redeemed_at = AwareDateTime(allow_none=True)
    revoked_at = AwareDateTime(allow_none=True)
    created_at = AwareDateTime()
    page = fields.Function(lambda _i: INVITE_PAGE, metadata={"description": "the mini-program page the code opens"})
    qr_url = fields.Function(lambda i: f"/api/mp/v1/stores/{i.store_id}/invites/{i.id}/qr.png",
                             metadata={"description": "the invite's mini-program code (PNG) to show the person"})


@blp.route("/stores/<int:store_id>/invites", methods=["POST"])
@blp.arguments(StoreInviteBody)
@blp.response(201, StoreInviteOut)
@blp.doc(security=[{"bearer": []}])
def create_store_invite(body, store_id):
    """Invite a store's owner or a clerk (the partner serving the store, HQ; an owner invites clerks only)."""
    return flows.create_invite(current_principal(), role=_ROLES[body["role"]], store_id=store_id,
                               ttl_hours=body["ttl_hours"])


@blp.route("/stores/<int:store_id>/invites", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(StoreInviteOut, "StoreInvitePage"))
@blp.doc(security=[{"bearer": []}])
def list_store_invites(args, store_id):
    """The store's invites, newest first (an owner sees the clerks' invites)."""
    return paginate(queries.list_store_invites(current_principal(), store_id), **args)


@blp.route("/stores/<int:store_id>/invites/<int:invite_id>/qr.png", methods=["GET"])
@blp.response(200, content_type="image/png")
@blp.doc(security=[{"bearer": []}])
def store_invite_qr(store_id, invite_id):
    """The invite's mini-program code (made once through WeChat, then kept)."""
    return Response(flows.invite_qr_png(current_principal(), invite_id, store_id=store_id), mimetype="image/png")


@blp.route("/stores/<int:store_id>/invites/<int:invite_id>/revoke", methods=["POST"])
@blp.arguments(Body)
@blp.response(200, StoreInviteOut)
@blp.doc(security=[{"bearer": []}])
def revoke_store_invite(_body, store_id, invite_id):
    """Withdraw an invite of the store that has not been used."""
    return flows.revoke_invite(current_principal(), invite_id, store_id=store_id)
