"""Assessment schemes, the month's close and recompute, and the rebate statements (CHANNEL.md §8), as JSON or
.xlsx (the same figures)."""

from __future__ import annotations

import io

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.assessment import queries, services
from app.core.schemas import Body, Id
from app.core.security import current_principal
from app.schemas.assessment import AssessmentList, CloseOut, RecomputeOut, SchemeOut, StatementList
from app.schemas.targets import PERIOD

blp = Blueprint("hq_assessment", __name__, description="Assessment schemes, period close, tiers and rebates")
SECURITY = [{"bearer": []}]
_POINTS = validate.Range(min=0, max=100, error="要是 0 到 100 的整数")


class SchemeWeightsBody(Body):
    attainment = fields.Integer(required=True, strict=True, validate=_POINTS)
    rating = fields.Integer(required=True, strict=True, validate=_POINTS)
    training = fields.Integer(required=True, strict=True, validate=_POINTS)
    attainment_cap_bp = fields.Integer(load_default=12000, strict=True, validate=validate.Range(
        min=10000, max=30000, error="目标达成封顶要在 10000 到 30000 基点之间"))
    diversion_penalty = fields.Integer(load_default=0, strict=True, validate=_POINTS)


class RebateTierBody(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40, error="等级名称 1 到 40 个字"))
    min_score = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=1000, error="起始分要是 0 到 1000 的整数"))
    rebate_bp = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=10000, error="返点要是 0 到 10000 基点的整数"))


class SchemeBody(Body):
    period = fields.String(required=True, validate=PERIOD)
    weights = fields.Nested(SchemeWeightsBody, required=True)
    tiers = fields.List(fields.Nested(RebateTierBody), required=True, validate=validate.Length(
        min=1, max=20, error="等级要有 1 到 20 个"))
    base = fields.String(required=True, validate=validate.OneOf(
        ["sell_in", "sell_through"], error="返点基数只能是进货金额（sell_in）"))


class AssessmentPeriodArgs(Schema):
    period = fields.String(required=True, validate=PERIOD)


class ClosePeriodPath(Schema):
    period = fields.String(required=True, validate=PERIOD)


class RecomputeBody(Body):
    reason = fields.String(required=True, validate=validate.Length(
        min=1, max=200, error="请写明重算原因（最多 200 字）"))


class RebateStatementArgs(Schema):
    period = fields.String(required=True, validate=PERIOD)
    partner_id = Id(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]))


@blp.route("/assessment-scheme", methods=["PUT"])
@blp.arguments(SchemeBody)
@blp.response(200, SchemeOut)
@blp.doc(security=SECURITY)
def put_scheme(body):
    """Set a month's scheme: weights of the parts (summing to 100), the attainment cap, points off per diversion
    alert, tiers from 0 with strictly increasing `min_score`, a rebate per tier in basis points, and the base
    (`sell_in`). 422 `weights_not_100`, `tiers_gap`, `tiers_not_increasing`, `duplicate_tier_name`,
    `base_unsupported`...; 409 `period_closed` once the month is closed."""
    row = services.put_scheme(current_principal(), **body)
    return {"period": row.period, "weights": row.weights, "tiers": row.tiers, "base": row.base,
            "updated_at": row.updated_at}


@blp.route("/assessment-scheme", methods=["GET"])
@blp.arguments(AssessmentPeriodArgs, location="query")
@blp.response(200, SchemeOut)
@blp.doc(security=SECURITY)
def get_scheme(args):
    """A month's scheme; 404 `scheme_not_found`."""
    return queries.scheme_of(current_principal(), args["period"])


@blp.route("/periods/<period>/close", methods=["POST"])
@blp.arguments(ClosePeriodPath, location="path", as_kwargs=True)
@blp.response(201, CloseOut)
@blp.doc(security=SECURITY)
def close_period(period):
    """Close an ended month: every agent's and distributor's score, tier and rebate, in one transaction. 409
    `period_closed` if it is closed already (the existing close in `details`), also to the loser of two racing
    closes; 422 `period_not_ended`, `scheme_missing`."""
    services.close_period(current_principal(), period)
    return queries.close_of(period)


@blp.route("/periods/<period>/recompute", methods=["POST"])
@blp.arguments(ClosePeriodPath, location="path", as_kwargs=True)
@blp.arguments(RecomputeBody)
@blp.response(200, RecomputeOut)
@blp.doc(security=SECURITY)
def recompute_period(body, period):
    """Recompute a closed month from the ledgers as they are now; writes adjusting rebate entries of exactly the
    difference per partner, with the reason, and bumps the close's version (nothing if nothing moved). 404
    `period_not_closed`; 409 `period_changed` when another recompute won a race."""
    return services.recompute_period(current_principal(), period, body["reason"])


@blp.route("/assessments", methods=["GET"])
@blp.arguments(AssessmentPeriodArgs, location="query")
@blp.response(200, AssessmentList)
@blp.doc(security=SECURITY)
def list_assessments(args):
    """Every assessed partner of a closed month with score, tier, movement and rebate (empty before the close)."""
    return queries.hq_assessments(current_principal(), args["period"])


STATEMENT_COLUMNS = [("partner_code", "伙伴编号"), ("partner_name", "伙伴"), ("period", "月份"),
                     ("score", "总分"), ("tier_name", "等级"), ("movement_name", "升降"),
                     ("previous_tier", "上月等级"), ("rebate_bp", "返点（基点）"), ("base_fen", "返点基数（分）"),
                     ("rebate_fen", "返点（分）"), ("ledger_fen", "返点台账合计（分）"), ("version", "版本")]


def _xlsx(rows: list[dict], period: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "返点汇总"
    ws.append([title for _, title in STATEMENT_COLUMNS])
    for row in rows:
        ws.append([row.get(k) for k, _ in STATEMENT_COLUMNS])
    detail = wb.create_sheet("计算明细")
    detail.append(["伙伴编号", "伙伴", "项目", "数值", "计算方法"])
    for row in rows:
        for line in row["lines"]:
            detail.append([row["partner_code"], row["partner_name"], line["item"], line["value"], line["how"]])
    ledger = wb.create_sheet("返点台账")
    ledger.append(["伙伴编号", "伙伴", "类型", "金额（分）", "版本", "原因", "时间"])
    for row in rows:
        for e in row["entries"]:
            ledger.append([e["partner_code"], e["partner_name"], "结算" if e["kind"] == "close" else "调整",
                           e["amount_fen"], e["version"], e["reason"], e["created_at"].isoformat()])
    for sheet in (ws, detail, ledger):
        sheet.freeze_panes = "A2"
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@blp.route("/rebate-statements", methods=["GET"])
@blp.arguments(RebateStatementArgs, location="query")
@blp.response(200, StatementList)
@blp.doc(security=SECURITY)
def rebate_statements(args):
    """The statements of a closed month (every partner, or one), each figure with its inputs and the rebate
    ledger; `format=xlsx` answers the same figures as an .xlsx workbook. 404 `statement_not_found`."""
    rows = queries.statement_rows(current_principal(), args["period"], args["partner_id"])
    if args["format"] == "xlsx":
        name = f"rebates-{args['period']}" + (f"-{args['partner_id']}" if args["partner_id"] else "")
        return Response(_xlsx(rows, args["period"]),
                        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return {"period": args["period"], "items": rows}
