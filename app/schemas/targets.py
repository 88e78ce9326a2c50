"""The answer shapes of targets with their actuals, given by the mini-program and by HQ."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime

METRICS = ["sell_through_units", "sell_in_fen", "active_stores", "new_stores"]
PERIOD = validate.Regexp(r"^(20\d\d)-(0[1-9]|1[0-2])$", error="月份要写成 YYYY-MM（2000-01 到 2099-12），例如 2026-12")


class TargetOut(Schema):
    id = fields.Integer()
    partner_id = fields.Integer()
    partner_code = fields.String()
    partner_name = fields.String()
    partner_kind = fields.String()
    period = fields.String(metadata={"description": "YYYY-MM, the month in Asia/Shanghai"})
    metric = fields.String(metadata={"enum": METRICS})
    metric_name = fields.String()
    sku_group_id = fields.Integer(allow_none=True, metadata={"description": "the SKU group counted; null: all SKUs"})
    sku_group_name = fields.String(allow_none=True)
    target = fields.Integer()
    actual = fields.Integer()
    variance = fields.Integer(metadata={"description": "actual − target"})
    attainment_bp = fields.Integer(allow_none=True, metadata={"description": "actual / target in basis points; "
                                                                              "null for a zero target"})
    version = fields.Integer()
    set_at = AwareDateTime()


class TargetList(Schema):
    items = fields.List(fields.Nested(TargetOut))
    period = fields.String()


class TargetVersionOut(Schema):
    id = fields.Integer()
    partner_id = fields.Integer()
    period = fields.String()
    metric = fields.String(metadata={"enum": METRICS})
    sku_group_id = fields.Integer(allow_none=True)
    value = fields.Integer()
    version = fields.Integer()
    created_at = AwareDateTime()
    superseded_at = AwareDateTime(allow_none=True)
