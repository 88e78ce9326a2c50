"""HQ: code batches and labels, finding and tracing codes, diversion alerts, EPCIS export, scan settings."""

from __future__ import annotations

import json

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.codes import epcis, labels, queries, services
from app.codes.models import CODE_STATES
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import require
from app.errors import NotFound
from app.incentives import queries as incentive_queries
from app.incentives import services as incentive_services
from app.scans.queries import list_diversion_alerts
from app.scans.services import diversion_policy

blp = Blueprint("hq_codes", __name__, description="One item, one code: batches, labels, trace, diversion")

MAX_PDF_LABELS = 10_000


class CodeBatchBody(Body):
    sku_id = Id(required=True)
    quantity = Int(required=True, validate=validate.Range(min=1, max=services.MAX_BATCH))
    case_size = Int(load_default=None, validate=validate.Range(min=1, max=10_000))


class CodeBatchOut(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    quantity = fields.Integer()
    case_size = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": ["pending", "running", "done", "failed"]})
    units_made = fields.Integer()
    cases_made = fields.Integer()
    progress = fields.Function(lambda b: round(b.units_made / b.quantity, 4) if b.quantity else 1.0)
    error = fields.String(allow_none=True)
    created_at = AwareDateTime()
    started_at = AwareDateTime(allow_none=True)
    finished_at = AwareDateTime(allow_none=True)


class PutAwayBody(Body):
    warehouse_id = Id(required=True)
    add_stock = fields.Boolean(load_default=False)


class PutAwayOut(Schema):
    units = fields.Integer()


class LabelSheetArgs(Schema):
    columns = Int(load_default=4, validate=validate.Range(min=1, max=10))
    rows = Int(load_default=8, validate=validate.Range(min=1, max=20))
    offset = Int(load_default=0, validate=validate.Range(min=0))
    limit = Int(load_default=1000, validate=validate.Range(min=1, max=MAX_PDF_LABELS))
    kind = fields.String(load_default="unit", validate=validate.OneOf(["unit", "case"]))


class CodeListArgs(PageArgs):
    state = fields.String(load_default=None, validate=validate.OneOf(CODE_STATES))
    store_id = Id(load_default=None)
    sku_id = Id(load_default=None)
    batch_id = Id(load_default=None)
    kind = fields.String(load_default=None, validate=validate.OneOf(["unit", "case"]))


class HqCodeOut(Schema):
    serial = fields.String()
    serial_grouped = fields.String()
    url = fields.String(metadata={"description": "what the QR holds"})
    sku_id = fields.Integer()
    kind = fields.String()
    state = fields.String()
    store_id = fields.Integer(allow_none=True)
    location_id = fields.Integer(allow_none=True)
    batch_id = fields.Integer(allow_none=True)
    case_id = fields.Integer(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    destination_store_id = fields.Integer(allow_none=True)
    destination_distributor_id = fields.Integer(allow_none=True)
    destination_region = fields.String(allow_none=True)
    sold_at = AwareDateTime(allow_none=True)
    first_verified_at = AwareDateTime(allow_none=True)
    verify_count = fields.Integer()


class CodeEventOut(Schema):
    id = fields.Integer()
    action = fields.String()
    biz_step = fields.String()
    disposition = fields.String()
    quantity = fields.Integer()
    store_id = fields.Integer(allow_none=True)
    store_name = fields.String(allow_none=True)
    location_id = fields.Integer(allow_none=True)
    location_name = fields.String(allow_none=True, metadata={"description": "the warehouse or store location"})
    event_time = AwareDateTime(metadata={"description": "from the device"})
    recorded_at = AwareDateTime(metadata={"description": "when the server received it"})
    user_id = fields.Integer(allow_none=True)
    user_name = fields.String(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    parent_event_id = fields.Integer(allow_none=True)
    corrects_event_id = fields.Integer(allow_none=True)
    undone_by_event_id = fields.Integer(allow_none=True)
    diverted = fields.Boolean()


class CodeTraceOut(HqCodeOut):
    sku = fields.Dict()
    location_name = fields.String(allow_none=True)
    case_serial = fields.String(allow_none=True)
    units = fields.List(fields.String())
    events = fields.List(fields.Nested(CodeEventOut))


class DiversionAlertArgs(PageArgs):
    source = fields.String(load_default=None, validate=validate.OneOf(["sell", "consumer", "stocktake"]),
                           metadata={"description": "sell: a store sold it; consumer: a consumer checked it; "
                                                    "stocktake: a store's stocktake found it on its shelf"})
    sku_id = Id(load_default=None)
    store_id = Id(load_default=None)
    distributor_id = Id(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$"))
    from_ = AwareDateTime(load_default=None, data_key="from")
    to = AwareDateTime(load_default=None)


class DiversionAlertOut(Schema):
    id = fields.Integer()
    serial = fields.String()
    sku_id = fields.Integer()
    source = fields.String()
    event_id = fields.Integer(allow_none=True)
    expected_store_id = fields.Integer(allow_none=True)
    expected_distributor_id = fields.Integer(allow_none=True)
    expected_region = fields.String(allow_none=True)
    actual_store_id = fields.Integer(allow_none=True)
    actual_distributor_id = fields.Integer(allow_none=True)
    actual_region = fields.String(allow_none=True)
    policy = fields.String()
    created_at = AwareDateTime()


class EpcisExportArgs(Schema):
    from_ = AwareDateTime(required=True, data_key="from")
    to = AwareDateTime(required=True)


class IncentiveRuleIn(Body):
    sku_id = Id(required=True)
    step = fields.String(required=True, validate=validate.OneOf(["receive", "sell"]))
    points = Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    amount_fen = Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    is_active = fields.Boolean(load_default=True)


class IncentiveRulesBody(Body):
    rules = fields.List(fields.Nested(IncentiveRuleIn), required=True, validate=validate.Length(min=1, max=1000))


class IncentiveRuleOut(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    step = fields.String()
    points = fields.Integer()
    amount_fen = fields.Integer()
    is_active = fields.Boolean()
    updated_at = AwareDateTime()


class ScanPolicyBody(Body):
    diversion_policy = fields.String(required=True, validate=validate.OneOf(["alert", "refuse"]))


class ScanPolicyOut(Schema):
    diversion_policy = fields.String()


def _batch_or_404(batch_id: int):
    batch = queries.get_batch(batch_id)
    if batch is None:
        raise NotFound("找不到这批码", code="batch_not_found")
    return batch


@blp.route("/code-batches", methods=["POST"])
@blp.arguments(CodeBatchBody)
@blp.response(202, CodeBatchOut)
def create_batch(body):
    """Issue N unit codes for a SKU, optionally packed into cases; made by a background job (see progress)."""
    return services.create_batch(require("hq.write", kind="hq"), **body)


@blp.route("/code-batches/<int:batch_id>", methods=["GET"])
@blp.response(200, CodeBatchOut)
def get_batch(batch_id):
    """A batch and the job's progress."""
    require("hq.read")
    return _batch_or_404(batch_id)


@blp.route("/code-batches/<int:batch_id>/put-away", methods=["POST"])
@blp.arguments(PutAwayBody)
@blp.response(200, PutAwayOut)
def put_away(body, batch_id):
    """Put a whole batch into a warehouse (state in_warehouse); `add_stock` books the units into its stock.

    A batch whose codes are still being made is refused (409 `batch_not_ready`)."""
    return {"units": services.put_away(require("warehouse.operate"), batch_id=batch_id, **body)}


@blp.route("/code-batches/<int:batch_id>/labels.pdf", methods=["GET"])
@blp.arguments(LabelSheetArgs, location="query")
@blp.response(200, content_type="application/pdf")
def labels_pdf(args, batch_id):
    """A printable A4 label sheet (grid `columns` × `rows`; `offset`/`limit` pick a slice of the batch)."""
    require("hq.read")
    _batch_or_404(batch_id)
    rows = queries.list_label_rows(batch_id, args["kind"], args["offset"], args["limit"])
    pdf = labels.pdf_bytes(rows, columns=args["columns"], rows=args["rows"], title=f"batch {batch_id}")
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="batch-{batch_id}-labels.pdf"'})


@blp.route("/code-batches/<int:batch_id>/labels.csv", methods=["GET"])
@blp.response(200, content_type="text/csv")
def labels_csv(batch_id):
    """The batch for a packaging-line printer: serial, printed URL, kind, case (cases first)."""
    require("hq.read")
    _batch_or_404(batch_id)
    rows = queries.list_label_rows(batch_id, "case") + queries.list_label_rows(batch_id, "unit")
    return Response(labels.csv_bytes(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.csv"'})


@blp.route("/codes/<string:serial>.png", methods=["GET"])
@blp.response(200, content_type="image/png")
def code_png(serial):
    """One code's QR as a PNG."""
    url = queries.get_code_url_for(require("hq.read"), serial)
    return Response(labels.png_bytes(url), mimetype="image/png")


@blp.route("/codes", methods=["GET"])
@blp.arguments(CodeListArgs, location="query")
@blp.response(200, page_schema(HqCodeOut, "CodePage"))
def list_codes(args):
    """Find codes by state, store, SKU or batch (those at or bound for the caller's stores)."""
    principal = require("hq.read")
    page, page_size = args.pop("page"), args.pop("page_size")
    result = paginate(queries.list_codes(principal=principal, **args), page=page, page_size=page_size,
                      scalars=False)
    result["items"] = [queries.code_item(code, gtin) for code, gtin in result["items"]]
    return result


@blp.route("/codes/<path:code>", methods=["GET"])
@blp.response(200, CodeTraceOut)
def trace_code(code):
    """One code's product, state, location and whole event history (serial or printed URL)."""
    return queries.get_trace_for(require("hq.read"), code)


@blp.route("/diversion-alerts", methods=["GET"])
@blp.arguments(DiversionAlertArgs, location="query")
@blp.response(200, page_schema(DiversionAlertOut, "DiversionAlertPage"))
def list_alerts(args):
    """Cross-region sales found by scans: expected versus actual store, distributor and region."""
    principal = require("hq.read")
    stmt = list_diversion_alerts(principal, sku_id=args["sku_id"], store_id=args["store_id"], region=args["region"],
                                 distributor_id=args["distributor_id"], since=args["from_"], until=args["to"],
                                 source=args["source"])
    result = paginate(stmt, page=args["page"], page_size=args["page_size"], scalars=False)
    result["items"] = [{**{c.key: getattr(a, c.key) for c in a.__table__.columns}, "serial": serial}
                       for a, serial in result["items"]]
    return result


@blp.route("/events/epcis", methods=["GET"])
@blp.arguments(EpcisExportArgs, location="query")
@blp.response(200, content_type="application/ld+json")
def export_epcis(args):
    """The period's scan events as a GS1 EPCIS 2.0 JSON-LD document (at most 31 days)."""
    document = epcis.document_for(require("hq.read"), args["from_"], args["to"])
    body = json.dumps(document, ensure_ascii=False)
    return Response(body, mimetype="application/ld+json")


@blp.route("/incentive-rules", methods=["PUT"])
@blp.arguments(IncentiveRulesBody)
@blp.response(200, IncentiveRuleOut(many=True))
def put_rules(body):
    """Set the points or fen a store earns per verified receive or sell of a SKU (once per code and step)."""
    incentive_services.set_rules(require("hq.write", kind="hq"), body["rules"])
    return incentive_queries.list_rules()


@blp.route("/incentive-rules", methods=["GET"])
@blp.response(200, IncentiveRuleOut(many=True))
def get_rules():
    """The scan incentive rules."""
    require("hq.read")
    return incentive_queries.list_rules()


@blp.route("/scan-policy", methods=["GET"])
@blp.response(200, ScanPolicyOut)
def get_policy():
    """The diversion policy: `alert` (sell and tell HQ, default) or `refuse`."""
    require("hq.read")
    return {"diversion_policy": diversion_policy()}


@blp.route("/scan-policy", methods=["PUT"])
@blp.arguments(ScanPolicyBody)
@blp.response(200, ScanPolicyOut)
def put_policy(body):
    """Set the diversion policy."""
    return {"diversion_policy": services.set_scan_policy(require("hq.write", kind="hq"), **body)}
