"""Login, the caller, phone binding."""

from flask_smorest import Blueprint

from app.core.security import current_principal
from app.extensions import limiter
from app.schemas.sessions import SessionOut, UserOut
from app.sessions import flows
from miniprogram_api.sessions.schemas import LoginBody, PhoneBody

blp = Blueprint("mp_sessions", __name__, description="Mini-program login and the caller")


@blp.route("/sessions", methods=["POST"])
@limiter.limit("30/minute")
@blp.arguments(LoginBody)
@blp.response(201, SessionOut)
def create_session(body):
    """Log in with the code from `wx.login`; the WeChat session key stays on the server."""
    return flows.login_with_wechat(body["code"])


@blp.route("/consumer-sessions", methods=["POST"])
@limiter.limit("30/minute")
@blp.arguments(LoginBody)
@blp.response(201, SessionOut)
def create_consumer_session(body):
    """A shopper logs in with the code from `wx.login`: the same user as `/sessions`, holding the `consumer` role
    from now on (verify units, referral rewards)."""
    return flows.login_as_consumer(body["code"])


@blp.route("/sessions", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=[{"bearer": []}])
def delete_sessions():
    """Log out: every token of the caller, on every phone, stops working on its next request."""
    flows.logout_everywhere(current_principal().user_id)
    return None


@blp.route("/me", methods=["GET"])
@blp.response(200, UserOut)
@blp.doc(security=[{"bearer": []}])
def me():
    """Who the caller is: roles, the store or partner they are bound to."""
    return flows.describe_user(current_principal().user_id)


@blp.route("/me/phone", methods=["POST"])
@blp.arguments(PhoneBody)
@blp.response(200, UserOut)
@blp.doc(security=[{"bearer": []}])
def bind_phone(body):
    """Bind the phone number from the `getPhoneNumber` button's code."""
    return flows.bind_phone(current_principal().user_id, body["code"])
