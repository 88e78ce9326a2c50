"""Request shapes of the mini-program's registration routes (the answers are in app/schemas/registrations.py)."""

from __future__ import annotations

from marshmallow import fields, validate

from app.core.pagination import PageArgs
from app.core.schemas import Body

STATUSES = ["protected", "converted", "expired", "released", "reassigned"]


class RegistrationBody(Body):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    # Checked and normalized by the service (`phone_invalid`, `licence_invalid`, `region_invalid`).
    phone = fields.String(required=True, validate=validate.Length(min=1, max=32))
    address = fields.String(load_default="", validate=validate.Length(max=255))
    region_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=12))
    industry = fields.String(required=True, validate=validate.Length(min=1, max=32))
    licence_no = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    lat = fields.Float(load_default=None, allow_none=True, allow_nan=False, validate=validate.Range(-90, 90))
    lng = fields.Float(load_default=None, allow_none=True, allow_nan=False, validate=validate.Range(-180, 180))


class ReasonBody(Body):
    # A phone that retries names its request: the repeat changes nothing and gets the same answer.
    request_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    reason = fields.String(load_default="", validate=validate.Length(max=200))


class RegistrationListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
