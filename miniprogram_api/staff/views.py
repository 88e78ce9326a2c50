"""The people of a store: who is bound to it, and removing one (their tokens stop working at once)."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.channel import flows
from app.core.schemas import AwareDateTime
from app.core.security import current_principal
from app.errors import NotFound

blp = Blueprint("mp_staff", __name__, description="A store's people (店员管理)")

_MAX_ID = 2**63 - 1


class MemberOut(Schema):
    user_id = fields.Integer()
    display_name = fields.String()
    role = fields.String()
    role_name = fields.String()
    since = AwareDateTime()


class MembersOut(Schema):
    items = fields.List(fields.Nested(MemberOut))


def _checked(*ids: int) -> None:
    if any(i > _MAX_ID for i in ids):
        raise NotFound()


@blp.route("/stores/<int:store_id>/members", methods=["GET"])
@blp.response(200, MembersOut)
@blp.doc(security=[{"bearer": []}])
def list_members(store_id):
    """The store's owner and clerks (for its owner, the partner serving it, HQ)."""
    _checked(store_id)
    return {"items": flows.store_members(current_principal(), store_id)}


@blp.route("/stores/<int:store_id>/members/<int:user_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=[{"bearer": []}])
def remove_member(store_id, user_id):
    """Unbind a person from the store: an owner removes clerks, the partner serving it and HQ anyone.
    Their tokens stop working on their next request; logging in again gives them a token without the store."""
    _checked(store_id, user_id)
    flows.remove_store_member(current_principal(), store_id, user_id)
    return None
