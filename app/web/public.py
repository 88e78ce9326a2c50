"""Public routes (no login): the printed code's own page (phones outside WeChat) and `/api/public/v1/verify`."""

from __future__ import annotations

import hashlib
import re
import secrets

from flask import Blueprint as FlaskBlueprint
from flask import Flask, after_this_request, current_app, jsonify, render_template, request
from flask_smorest import Api, Blueprint
from marshmallow import fields, validate

from app.core.clock import BUSINESS_TZ, as_utc
from app.extensions import limiter
from app.schemas.verification import VerifyOut, WhereArgs
from app.verification.services import consumer_settings, verify

VERIFY_LIMIT = "30/minute;300/hour"
# The phone's first-party cookie: a random token, so the same phone's reload is not counted as another check
# (app.verification.services.REPEAT_WINDOW). Only its SHA-256 is stored; it says nothing about the person.
VIEWER_COOKIE = "vid"  # "__Host-vid" in production: Secure, this host only
VIEWER_MAX_AGE = 365 * 24 * 3600
_VIEWER_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

blp = Blueprint("public_verify", __name__, description="Consumer verification, no login")
page_bp = FlaskBlueprint("public_pages", __name__)


class PublicVerifyArgs(WhereArgs):
    code = fields.String(required=True, validate=validate.Length(min=1, max=512))
    lat = fields.Float(load_default=None, validate=validate.Range(min=-90, max=90),
                       metadata={"description": "where the phone is (with lng), if the consumer allows it"})
    lng = fields.Float(load_default=None, validate=validate.Range(min=-180, max=180))


class PublicVerifyOut(VerifyOut):
    """What a consumer sees: never the store, its owner or any internal id."""


def _viewer() -> str:
    """The phone's viewer key (the hash of its cookie); a phone without a valid cookie is given a new one."""
    secure = current_app.config.get("APP_ENV") == "production"
    name = "__Host-" + VIEWER_COOKIE if secure else VIEWER_COOKIE
    token = request.cookies.get(name, "")
    if not _VIEWER_TOKEN.match(token):
        token = secrets.token_urlsafe(18)

        @after_this_request
        def _set_cookie(response):
            response.set_cookie(name, token, max_age=VIEWER_MAX_AGE, httponly=True, samesite="Lax",
                                secure=secure, path="/")
            return response
    return hashlib.sha256(token.encode()).hexdigest()


def _with_brand(result: dict) -> dict:
    """The brand's name (the product's own, else HQ's setting) and its service contact, on every answer."""
    settings = consumer_settings()
    product = result.get("product")
    if product is not None and not product.get("brand"):
        product["brand"] = settings["brand_name"]
    return {**result, "service_contact": settings["service_contact"]}


@blp.route("/verify", methods=["GET"])
@limiter.limit(VERIFY_LIMIT)
@blp.arguments(PublicVerifyArgs, location="query")
@blp.response(200, PublicVerifyOut)
def verify_code(args):
    """Is this unit genuine: the brand and product, when and in which city it was sold, when it was first verified
    and how many times (rate limited), and the brand's service contact.

    The answer sets a first-party cookie (`vid`, random): the same phone checking the same unit again within 24
    hours is not counted as another check. With the phone's `lat` and `lng`, a check far from where the unit was
    shipped raises a diversion alert for HQ."""
    return _with_brand(verify(args["code"], lat=args["lat"], lng=args["lng"], viewer=_viewer()))


@page_bp.get("/c/<path:rest>")
@limiter.limit(VERIFY_LIMIT)
def code_page(rest):
    """The printed URL's page: HTML for a phone browser, JSON with `Accept: application/json`. A reload by the
    same phone (its cookie) is not another check."""
    query = request.query_string.decode("latin-1")
    result = _with_brand(verify("/" + rest + (f"?{query}" if query else ""), viewer=_viewer()))
    result_json = PublicVerifyOut().dump(result)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(result_json)
    first = result.get("first_verified_at")
    first_local = as_utc(first).astimezone(BUSINESS_TZ).strftime("%Y年%m月%d日 %H:%M") if first else None
    sold = result.get("sold_at")
    sold_local = as_utc(sold).astimezone(BUSINESS_TZ).strftime("%Y年%m月%d日") if sold else None
    return render_template("public/code.html", r=result_json, first_verified_local=first_local,
                           sold_local=sold_local)


def register(app: Flask, api: Api) -> None:
    api.register_blueprint(blp, url_prefix="/api/public/v1")
    app.register_blueprint(page_bp)
