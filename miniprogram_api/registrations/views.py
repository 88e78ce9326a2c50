"""Registrations (客户报备) by partner staff: register a prospect shop, see one's own with days left, ask for more
time, let one go."""

from flask_smorest import Blueprint

from app.channel import registrations
from app.core.pagination import page_schema, paginate
from app.core.security import current_principal
from app.schemas.registrations import RegistrationOut
from miniprogram_api.registrations.schemas import ReasonBody, RegistrationBody, RegistrationListArgs

blp = Blueprint("mp_registrations", __name__, description="Registrations of prospect shops (客户报备)")
SECURITY = [{"bearer": []}]


def _one(reg):
    return registrations.describe([reg])[0]


@blp.route("/registrations", methods=["POST"])
@blp.arguments(RegistrationBody)
@blp.response(201, RegistrationOut)
@blp.doc(security=SECURITY)
def create_registration(body):
    """Register a shop for the caller's partner; a repeated request_id answers as the first time did.

    409 `registration_conflict` (details: held_by, until (null when the shop is already a store), matched) when
    another partner holds the shop; `already_registered`, `registration_quota`, `request_id_reused`. 422
    `phone_invalid`, `licence_invalid`, `region_invalid`, `name_invalid`."""
    return _one(registrations.create_registration(current_principal(), **body))


@blp.route("/registrations", methods=["GET"])
@blp.arguments(RegistrationListArgs, location="query")
@blp.response(200, page_schema(RegistrationOut, "RegistrationPage"))
@blp.doc(security=SECURITY)
def list_registrations(args):
    """The caller's registrations (a distributor's own, an agent's whole subtree): protected ones ending soonest
    first, with days left."""
    page = paginate(registrations.list_registrations(current_principal(), status=args["status"]),
                    page=args["page"], page_size=args["page_size"])
    page["items"] = registrations.describe(page["items"])
    return page


@blp.route("/registrations/<int:registration_id>/extend", methods=["POST"])
@blp.arguments(ReasonBody)
@blp.response(200, RegistrationOut)
@blp.doc(security=SECURITY)
def extend_registration(body, registration_id):
    """Ask for more protection: the policy's extension days, as often as it allows (`extension_limit`)."""
    return _one(registrations.extend(current_principal(), registration_id, **body))


@blp.route("/registrations/<int:registration_id>/release", methods=["POST"])
@blp.arguments(ReasonBody)
@blp.response(200, RegistrationOut)
@blp.doc(security=SECURITY)
def release_registration(body, registration_id):
    """Let the shop go: anyone may register it at once."""
    return _one(registrations.release_registration(current_principal(), registration_id, **body))
