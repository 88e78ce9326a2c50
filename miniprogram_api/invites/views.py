"""Redeeming an invite QR."""

from flask_smorest import Blueprint
from marshmallow import validate

from app.channel import flows
from app.core.schemas import Body
from app.core.security import current_principal
from app.schemas.sessions import SessionOut

blp = Blueprint("mp_invites", __name__, description="Invites into a store or partner")

_TOKEN = validate.Regexp(r"^[0-9A-Za-z]{1,32}$")


@blp.route("/invites/<string:token>/redeem", methods=["POST"])
@blp.arguments(Body)
@blp.response(200, SessionOut)
@blp.doc(security=[{"bearer": []}])
def redeem(_body, token):
    """Join the store or partner the invite names; the answer carries a new token with the role."""
    principal = current_principal()
    if not _TOKEN.regex.match(token):
        from app.errors import NotFound

        raise NotFound("邀请码无效", code="invite_not_found")
    return flows.redeem_invite(principal, token)
