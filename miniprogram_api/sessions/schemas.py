"""Request shapes of the mini-program's login routes (the session answer is in app/schemas/sessions.py)."""

from marshmallow import fields, validate

from app.core.schemas import Body


class LoginBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128))


class PhoneBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128))
