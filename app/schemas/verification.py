"""The consumer verification's answer, as the public verify route and the mini-program's consumer both give it."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates_schema

from app.core.schemas import AwareDateTime

STATUSES = ["genuine", "suspicious", "not_found", "invalid", "mismatch"]


class WhereArgs(Schema):
    """Where the phone is, if the consumer allows it: both or neither."""

    @validates_schema
    def _both_or_neither(self, data, **_kwargs):
        if (data.get("lat") is None) != (data.get("lng") is None):
            raise ValidationError("lat 和 lng 要一起给", field_name="lat")


class ConsumerProduct(Schema):
    name = fields.String()
    product_name = fields.String()
    brand = fields.String(allow_none=True)
    specification = fields.String(allow_none=True)
    gtin = fields.String()


class VerifyOut(Schema):
    """What a consumer sees: never the store, its owner or any internal id."""

    genuine = fields.Boolean()
    status = fields.String(metadata={"enum": STATUSES})
    reason = fields.String(allow_none=True)
    message = fields.String()
    serial = fields.String()
    serial_grouped = fields.String()
    product = fields.Nested(ConsumerProduct)
    state = fields.String()
    sold = fields.Boolean()
    sold_at = AwareDateTime(allow_none=True)
    sold_city = fields.String(allow_none=True, metadata={"description": "the city it was sold in (never the store)"})
    service_contact = fields.String(metadata={"description": "the brand's customer service (HQ's setting)"})
    first_verified_at = AwareDateTime(allow_none=True)
    times_verified = fields.Integer()
    suspicious = fields.Boolean()
