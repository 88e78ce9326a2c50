"""The answer shapes of registrations, given by the mini-program and by HQ."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.core.schemas import AwareDateTime


class RegistrationOut(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["protected", "converted", "expired", "released", "reassigned"]})
    name = fields.String()
    phone = fields.String()
    address = fields.String()
    region_code = fields.String()
    region_name = fields.String()
    industry = fields.String()
    licence_no = fields.String(allow_none=True)
    partner_id = fields.Integer()
    partner_name = fields.String()
    agent_id = fields.Integer(allow_none=True)
    agent_name = fields.String(allow_none=True)
    protected_until = AwareDateTime()
    days_left = fields.Integer(allow_none=True, metadata={"description": "whole days of protection left"})
    extensions_left = fields.Integer()
    store_id = fields.Integer(allow_none=True)
    converted_at = AwareDateTime(allow_none=True)
    converted_via = fields.String(allow_none=True, metadata={"enum": ["invite", "first_order", "scan_in"]})
    dormant_since = AwareDateTime(allow_none=True)
    conflict_count = fields.Integer()
    reassigned_from_id = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
