"""Public routes (no login): the printed code's own page (phones outside WeChat) and `/api/public/v1/verify`."""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import Flask, jsonify, render_template, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.core.clock import BUSINESS_TZ, as_utc
from app.core.schemas import AwareDateTime
from app.extensions import limiter
from app.verification.services import verify

VERIFY_LIMIT = "30/minute;300/hour"

blp = Blueprint("public_verify", __name__, description="Consumer verification, no login")
page_bp = FlaskBlueprint("public_pages", __name__)


class PublicVerifyArgs(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=512))
    lat = fields.Float(load_default=None, validate=validate.Range(min=-90, max=90),
                       metadata={"description": "where the phone is (with lng), if the consumer allows it"})
    lng = fields.Float(load_default=None, validate=validate.Range(min=-180, max=180))

    @validates_schema
    def _both_or_neither(self, data, **_kwargs):
        if (data.get("lat") is None) != (data.get("lng") is None):
            raise ValidationError("lat 和 lng 要一起给", field_name="lat")


class ConsumerProduct(Schema):
    name = fields.String()
    product_name = fields.String()
    specification = fields.String(allow_none=True)
    gtin = fields.String()


class PublicVerifyOut(Schema):
    """What a consumer sees: never the store, its owner or any internal id."""


    genuine = fields.Boolean()
    status = fields.String(metadata={"enum": ["genuine", "suspicious", "not_found", "invalid", "mismatch"]})
    reason = fields.String(allow_none=True)
    message = fields.String()
    serial = fields.String()
    serial_grouped = fields.String()
    product = fields.Nested(ConsumerProduct)
    state = fields.String()
    sold = fields.Boolean()
    sold_at = AwareDateTime(allow_none=True)
    first_verified_at = AwareDateTime(allow_none=True)
    times_verified = fields.Integer()
    suspicious = fields.Boolean()


@blp.route("/verify", methods=["GET"])
@limiter.limit(VERIFY_LIMIT)
@blp.arguments(PublicVerifyArgs, location="query")
@blp.response(200, PublicVerifyOut)
def verify_code(args):
    """Is this unit genuine: the product, when it was first verified and how many times (rate limited).

    With the phone's `lat` and `lng`, a check far from where the unit was shipped raises a diversion alert for HQ."""
    return verify(args["code"], lat=args["lat"], lng=args["lng"])


@page_bp.get("/c/<path:rest>")
@limiter.limit(VERIFY_LIMIT)
def code_page(rest):
    """The printed URL's page: HTML for a phone browser, JSON with `Accept: application/json`."""
    query = request.query_string.decode("latin-1")
    result = verify("/" + rest + (f"?{query}" if query else ""))
    result_json = PublicVerifyOut().dump(result)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(result_json)
    first = result.get("first_verified_at")
    first_local = as_utc(first).astimezone(BUSINESS_TZ).strftime("%Y年%m月%d日 %H:%M") if first else None
    return render_template("public/code.html", r=result_json, first_verified_local=first_local)


def register(app: Flask, api: Api) -> None:
    api.register_blueprint(blp, url_prefix="/api/public/v1")
    app.register_blueprint(page_bp)
