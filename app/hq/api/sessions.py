"""HQ staff login."""

from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.core.schemas import Body
from app.core.security import current_principal, require
from app.extensions import limiter
from app.schemas.sessions import SessionOut, UserOut
from app.sessions import flows

blp = Blueprint("hq_sessions", __name__, description="HQ staff login")


class HqLoginBody(Body):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


@blp.route("/sessions", methods=["POST"])
@limiter.limit("20/minute")
@blp.arguments(HqLoginBody)
@blp.response(201, SessionOut)
def create_session(body):
    """Log in with username and password; repeated failures lock the account for a while."""
    return flows.login_console(body["username"], body["password"])


@blp.route("/sessions", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=[{"bearer": []}])
def delete_sessions():
    """Log out: every token of the caller (the console's too) stops working on its next request."""
    flows.logout_everywhere(current_principal().user_id)
    return None


@blp.route("/me", methods=["GET"])
@blp.response(200, UserOut)
@blp.doc(security=[{"bearer": []}])
def me():
    """The logged-in HQ user."""
    principal = require("hq.read")
    return flows.describe_user(principal.user_id)
