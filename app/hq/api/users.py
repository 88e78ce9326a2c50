"""HQ admins manage users: deactivate one, take a role away, log one out everywhere.

Each change raises the user's token version, so their tokens stop working on their next request.
"""

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.accounts import flows
from app.core.schemas import Body
from app.core.security import require
from app.errors import NotFound

blp = Blueprint("hq_users", __name__, description="Users: deactivate, remove a role, log out everywhere")

_MAX_ID = 2**63 - 1


class UserStateOut(Schema):
    id = fields.Integer()
    is_active = fields.Boolean()


def _checked(*ids: int) -> None:
    if any(i > _MAX_ID for i in ids):
        raise NotFound()


@blp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@blp.arguments(Body)
@blp.response(200, UserStateOut)
@blp.doc(security=[{"bearer": []}])
def deactivate(_body, user_id):
    """The user can no longer log in; their tokens stop working on their next request."""
    principal = require("user.manage")
    _checked(user_id)
    return flows.deactivate_user(principal, user_id)


@blp.route("/users/<int:user_id>/revoke-sessions", methods=["POST"])
@blp.arguments(Body)
@blp.response(204)
@blp.doc(security=[{"bearer": []}])
def revoke_sessions(_body, user_id):
    """Log the user out on every phone and browser (a lost phone, a leaked token)."""
    principal = require("user.manage")
    _checked(user_id)
    flows.revoke_user_sessions(principal, user_id)
    return None


@blp.route("/users/<int:user_id>/memberships/<int:membership_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=[{"bearer": []}])
def remove_membership(user_id, membership_id):
    """Take one role away from the user; tokens that carry it stop working on their next request."""
    principal = require("user.manage")
    _checked(user_id, membership_id)
    flows.remove_membership(principal, user_id, membership_id)
    return None
