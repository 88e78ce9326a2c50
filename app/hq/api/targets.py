"""Partner targets set by HQ, and the variance report (CHANNEL.md §5), as JSON or .xlsx."""

from datetime import datetime

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.analytics import exports, targets
from app.core.replica import replica_reads
from app.core.schemas import Body, Id
from app.core.security import current_principal
from app.schemas.targets import METRICS, PERIOD, TargetList, TargetVersionOut

blp = Blueprint("hq_targets", __name__, description="Partner targets per month and metric, with actuals and variance")

COLUMNS = [("partner_code", "伙伴编号"), ("partner_name", "伙伴"), ("period", "月份"), ("metric_name", "指标"),
           ("sku_group_name", "商品组"),
           ("target", "目标"), ("actual", "实际"), ("variance", "差额"), ("attainment_bp", "达成（基点）"),
           ("version", "版本")]


class TargetBody(Body):
    partner_id = Id(required=True)
    period = fields.String(required=True, validate=PERIOD)
    metric = fields.String(required=True, validate=validate.OneOf(
        METRICS, error="指标只能是动销件数、进货金额、动销门店数或新开门店数"))
    value = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=2**63 - 1, error="目标值要是不小于 0 的整数"))
    sku_group_id = Id(load_default=None, allow_none=True)


class YearlyTargetBody(Body):
    partner_id = Id(required=True)
    year = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=2000, max=2099, error="年份要在 2000 到 2099 之间"))
    metric = fields.String(required=True, validate=validate.OneOf(
        METRICS, error="指标只能是动销件数、进货金额、动销门店数或新开门店数"))
    value = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=0, max=2**63 - 1, error="目标值要是不小于 0 的整数"))
    template_id = Id(required=True)
    sku_group_id = Id(load_default=None, allow_none=True)


class YearlyTargetOut(Schema):
    items = fields.List(fields.Nested(TargetVersionOut))


class SkuGroupBody(Body):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    sku_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=500))


class SkuGroupOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    sku_ids = fields.List(fields.Integer())


class SkuGroupList(Schema):
    items = fields.List(fields.Nested(SkuGroupOut))


class TemplateBody(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    shares_bp = fields.List(fields.Integer(strict=True, validate=validate.Range(min=0, max=10000)), required=True,
                            validate=validate.Length(equal=12, error="要给出 12 个月的比例"),
                            metadata={"description": "twelve monthly shares in basis points totalling 10000"})


class TemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    shares_bp = fields.List(fields.Integer())


class TemplateList(Schema):
    items = fields.List(fields.Nested(TemplateOut))


class TargetArgs(Schema):
    period = fields.String(required=True, validate=PERIOD)
    partner_id = Id(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]))


@blp.route("/targets", methods=["POST"])
@blp.arguments(TargetBody)
@blp.response(201, TargetVersionOut)
@blp.doc(security=[{"bearer": []}])
def set_target(body):
    """Set a partner's target for a month and metric; a change is a new version superseding the live one (the
    same value again changes nothing). 422 `invalid_period`, `invalid_metric`, `invalid_target_value`,
    `sku_group_not_for_metric`; 404 `partner_not_found`, `sku_group_not_found`; 409 `target_changed` when another
    change won a race."""
    return targets.set_target(current_principal(), **body)


@blp.route("/targets/yearly", methods=["POST"])
@blp.arguments(YearlyTargetBody)
@blp.response(201, YearlyTargetOut)
@blp.doc(security=[{"bearer": []}])
def set_yearly_target(body):
    """Split a yearly target over its months by a template and set the twelve monthly targets at once; the months
    total the yearly value exactly. 404 `template_not_found`; otherwise as `POST /targets`."""
    return {"items": targets.set_yearly_target(current_principal(), **body)}


@blp.route("/sku-groups", methods=["POST"])
@blp.arguments(SkuGroupBody)
@blp.response(201, SkuGroupOut)
@blp.doc(security=[{"bearer": []}])
def create_sku_group(body):
    """A named set of SKUs that a target may count alone. 409 `sku_group_exists`; 422 `unknown_skus`."""
    return targets.create_sku_group(current_principal(), **body)


@blp.route("/sku-groups", methods=["GET"])
@blp.response(200, SkuGroupList)
@blp.doc(security=[{"bearer": []}])
def list_sku_groups():
    """Every SKU group with its members."""
    return {"items": targets.list_sku_groups(current_principal())}


@blp.route("/target-templates", methods=["POST"])
@blp.arguments(TemplateBody)
@blp.response(201, TemplateOut)
@blp.doc(security=[{"bearer": []}])
def create_template(body):
    """Twelve monthly shares (basis points) that must total 10000. 422 `template_not_100`; 409 `template_exists`."""
    return targets.create_template(current_principal(), **body)


@blp.route("/target-templates", methods=["GET"])
@blp.response(200, TemplateList)
@blp.doc(security=[{"bearer": []}])
def list_templates():
    """The templates that split a yearly target over its months."""
    return {"items": targets.list_templates(current_principal())}


@blp.route("/targets", methods=["GET"])
@blp.arguments(TargetArgs, location="query")
@blp.response(200, TargetList)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def list_targets(args):
    """The month's live targets of every partner (or one) with actuals, variance and attainment; `format=xlsx`
    answers the same rows as an .xlsx file."""
    rows = targets.list_targets(current_principal(), args["period"], partner_id=args["partner_id"],
                                 action="hq.read")
    if args["format"] == "xlsx":
        stamp = datetime.now().strftime("%Y%m%d")
        data = exports.to_xlsx(rows, COLUMNS, sheet=f"目标-{args['period']}")
        return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition":
                                 f'attachment; filename="targets-{args["period"]}-{stamp}.xlsx"'})
    return {"items": rows, "period": args["period"]}
