"""The session shapes both edges answer with: a token and who the caller is (roles, store, partner)."""

from marshmallow import Schema, fields


class StoreBrief(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    city_code = fields.String()


class PartnerBrief(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String()


class MembershipOut(Schema):
    role = fields.String()
    role_name = fields.String()
    store_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)


class UserOut(Schema):
    id = fields.Integer()
    roles = fields.List(fields.String())
    store_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)
    phone = fields.String(allow_none=True)
    display_name = fields.String()
    store = fields.Nested(StoreBrief, allow_none=True)
    partner = fields.Nested(PartnerBrief, allow_none=True)
    memberships = fields.List(fields.Nested(MembershipOut))


class SessionOut(Schema):
    token = fields.String()
    expires_at = fields.String()
    user = fields.Nested(UserOut)
