"""The answer shapes of assessments, statements and rebate entries, given by the mini-program and by HQ."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.core.schemas import AwareDateTime


class RebateTier(Schema):
    name = fields.String()
    min_score = fields.Integer(metadata={"description": "whole points; the first tier starts at 0"})
    rebate_bp = fields.Integer(metadata={"description": "rebate in basis points of the base"})


class SchemeWeights(Schema):
    attainment = fields.Integer()
    rating = fields.Integer()
    training = fields.Integer()
    attainment_cap_bp = fields.Integer()
    diversion_penalty = fields.Integer(metadata={"description": "points off per diversion alert"})


class SchemeOut(Schema):
    period = fields.String()
    weights = fields.Nested(SchemeWeights)
    tiers = fields.List(fields.Nested(RebateTier))
    base = fields.String(metadata={"enum": ["sell_in"]})
    updated_at = AwareDateTime(allow_none=True)


class CloseOut(Schema):
    period = fields.String()
    version = fields.Integer()
    partners = fields.Integer()
    rebate_fen = fields.Integer()
    closed_at = AwareDateTime()
    recomputed_at = AwareDateTime(allow_none=True)
    scheme = fields.Nested(SchemeOut)


class RecomputeOut(Schema):
    period = fields.String()
    version = fields.Integer()
    changed = fields.Integer(metadata={"description": "partners whose figures moved"})
    difference_fen = fields.Integer(metadata={"description": "the adjusting entries' sum"})


class AssessmentOut(Schema):
    partner_id = fields.Integer()
    partner_code = fields.String()
    partner_name = fields.String()
    partner_kind = fields.String()
    period = fields.String()
    version = fields.Integer()
    score_x100 = fields.Integer(metadata={"description": "the score in hundredths of a point"})
    score = fields.String()
    tier_index = fields.Integer()
    tier_name = fields.String()
    previous_tier = fields.String(allow_none=True)
    movement = fields.String(metadata={"enum": ["new", "promoted", "kept", "demoted"]})
    movement_name = fields.String()
    rebate_bp = fields.Integer()
    base_fen = fields.Integer()
    rebate_fen = fields.Integer()
    ledger_fen = fields.Integer(metadata={"description": "the partner's rebate entries' sum (equals rebate_fen)"})


class RebateEntryOut(Schema):
    id = fields.Integer()
    partner_id = fields.Integer()
    partner_code = fields.String()
    partner_name = fields.String()
    period = fields.String()
    kind = fields.String(metadata={"enum": ["close", "adjust"]})
    amount_fen = fields.Integer()
    version = fields.Integer()
    reason = fields.String()
    created_at = AwareDateTime()


class StatementLine(Schema):
    item = fields.String()
    value = fields.String()
    how = fields.String()


class TierHistoryOut(Schema):
    period = fields.String()
    tier_name = fields.String()
    score_x100 = fields.Integer()
    movement = fields.String()
    movement_name = fields.String()
    previous_tier = fields.String(allow_none=True)


class StatementOut(AssessmentOut):
    inputs = fields.Dict()
    parts = fields.Dict()
    scheme = fields.Nested(SchemeOut)
    lines = fields.List(fields.Nested(StatementLine))
    entries = fields.List(fields.Nested(RebateEntryOut))
    history = fields.List(fields.Nested(TierHistoryOut))
    close_version = fields.Integer()


class AssessmentList(Schema):
    period = fields.String()
    close = fields.Nested(CloseOut, allow_none=True)
    items = fields.List(fields.Nested(AssessmentOut))
    rebate_fen = fields.Integer()


class StatementList(Schema):
    period = fields.String()
    items = fields.List(fields.Nested(StatementOut))


class OwnAssessmentList(Schema):
    period = fields.String()
    closed = fields.Boolean()
    items = fields.List(fields.Nested(StatementOut))


class RebateList(Schema):
    period = fields.String()
    items = fields.List(fields.Nested(RebateEntryOut))
    total_fen = fields.Integer()
