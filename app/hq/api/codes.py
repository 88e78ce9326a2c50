"""HQ: code batches and labels, finding and tracing codes, diversion alerts (and handling them), EPCIS export, scan
and consumer-page settings."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.analytics import exports
from app.codes import epcis, labels, queries, services
from app.codes.models import CODE_STATES
from app.core.clock import BUSINESS_TZ, as_utc
from app.core.pagination import PageArgs, page_schema, paginate
from app.core.replica import replica_reads
from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import current_principal, require
from app.errors import NotFound
from app.incentives import queries as incentive_queries
from app.incentives import services as incentive_services
from app.scans import alerts as alert_services
from app.scans import policy as scan_policy
from app.scans.models import ALERT_STATUSES
from app.scans.queries import count_alerts, get_alert_detail, list_alert_rows
from app.verification import services as verification

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
    status = fields.String(load_default=None, validate=validate.OneOf(ALERT_STATUSES))
    sku_id = Id(load_default=None)
    store_id = Id(load_default=None)
    distributor_id = Id(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$"),
                           metadata={"description": "expected or actual region; a province or city takes in "
                                                    "its cities and districts"})
    from_ = AwareDateTime(load_default=None, data_key="from")
    to = AwareDateTime(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx", "csv"]),
                           metadata={"description": "xlsx or csv: every matching alert (at most 50,000) as a file"})


class DiversionAlertOut(Schema):
    id = fields.Integer()
    serial = fields.String()
    sku_id = fields.Integer()
    sku_name = fields.String(allow_none=True)
    source = fields.String()
    event_id = fields.Integer(allow_none=True)
    expected_store_id = fields.Integer(allow_none=True)
    expected_store_name = fields.String(allow_none=True)
    expected_distributor_id = fields.Integer(allow_none=True)
    expected_distributor_name = fields.String(allow_none=True)
    expected_region = fields.String(allow_none=True)
    expected_region_name = fields.String(allow_none=True)
    actual_store_id = fields.Integer(allow_none=True)
    actual_store_name = fields.String(allow_none=True)
    actual_distributor_id = fields.Integer(allow_none=True)
    actual_distributor_name = fields.String(allow_none=True)
    actual_region = fields.String(allow_none=True)
    actual_region_name = fields.String(allow_none=True)
    policy = fields.String()
    status = fields.String(metadata={"enum": list(ALERT_STATUSES)})
    handled_by_id = fields.Integer(allow_none=True)
    handled_by_name = fields.String(allow_none=True)
    handled_at = AwareDateTime(allow_none=True)
    created_at = AwareDateTime()


class DiversionAlertEventOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": ["status", "note"]})
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    note = fields.String()
    user_id = fields.Integer(allow_none=True)
    user_name = fields.String(allow_none=True)
    created_at = AwareDateTime()


class DiversionAlertDetailOut(DiversionAlertOut):
    events = fields.List(fields.Nested(DiversionAlertEventOut))
    allowed_next = fields.List(fields.String())


class AlertStatusBody(Body):
    status = fields.String(required=True, validate=validate.OneOf(ALERT_STATUSES))
    note = fields.String(load_default="", validate=validate.Length(max=alert_services.NOTE_MAX))


class AlertNoteBody(Body):
    text = fields.String(required=True, validate=validate.Length(min=1, max=alert_services.NOTE_MAX))


ALERT_EXPORT_MAX = 50_000
ALERT_COLUMNS = (("id", "预警编号"), ("created_at_local", "时间"), ("status_name", "处理状态"),
                 ("source_name", "来源"), ("sku_name", "商品"), ("serial", "防伪码"),
                 ("expected_store_name", "应在门店"), ("expected_distributor_name", "应在分销商"),
                 ("expected_region_name", "应在地区"), ("actual_store_name", "实际门店"),
                 ("actual_distributor_name", "实际分销商"), ("actual_region_name", "实际地区"),
                 ("policy_name", "处理方式"), ("handled_by_name", "处理人"), ("handled_at_local", "处理时间"))
SOURCE_NAMES = {"sell": "门店售出", "consumer": "顾客查询", "stocktake": "门店盘点"}


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


class ConsumerSettingsBody(Body):
    brand_name = fields.String(required=True, validate=validate.Length(min=1, max=verification.BRAND_NAME_MAX),
                               metadata={"description": "shown for products without a brand of their own"})
    service_contact = fields.String(required=True,
                                    validate=validate.Length(min=1, max=verification.SERVICE_CONTACT_MAX),
                                    metadata={"description": "e.g. 客服热线 400-… (hours)"})


class ConsumerSettingsOut(Schema):
    brand_name = fields.String()
    service_contact = fields.String()


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
    """Cross-region sales found by scans: expected versus actual store, distributor and region, with the names
    beside the ids, and how HQ handled each (status, who, when). A region-bound caller sees only their region."""
    principal = require("hq.read")
    filters = {"sku_id": args["sku_id"], "store_id": args["store_id"], "region": args["region"],
               "distributor_id": args["distributor_id"], "since": args["from_"], "until": args["to"],
               "source": args["source"], "status": args["status"]}
    if args["format"] != "json":  # the export is a report: it may be served by the read replica
        with replica_reads():
            return _alerts_file(list_alert_rows(principal, limit=ALERT_EXPORT_MAX, **filters), args["format"])
    page, size = args["page"], args["page_size"]
    return {"items": list_alert_rows(principal, limit=size, offset=(page - 1) * size, **filters),
            "page": page, "page_size": size, "total": count_alerts(principal, **filters)}


def _local(value) -> str:
    return as_utc(value).astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M") if value else ""


def _alerts_file(rows: list[dict], fmt: str) -> Response:
    sheet = [{**r, "created_at_local": _local(r["created_at"]), "handled_at_local": _local(r["handled_at"]),
              "status_name": alert_services.STATUS_NAMES.get(r["status"], r["status"]),
              "source_name": SOURCE_NAMES.get(r["source"], r["source"]),
              "policy_name": "已拒绝" if r["policy"] == "refuse" else "仅预警"} for r in rows]
    stamp = datetime.now(BUSINESS_TZ).strftime("%Y%m%d")
    if fmt == "xlsx":
        data = exports.to_xlsx(sheet, ALERT_COLUMNS, sheet="窜货预警")
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        data = exports.to_csv(sheet, ALERT_COLUMNS)
        mime = "text/csv; charset=utf-8"
    return Response(data, mimetype=mime,
                    headers={"Content-Disposition": f'attachment; filename="diversion-alerts-{stamp}.{fmt}"'})


def _detail(principal, alert_id: int) -> dict:
    detail = get_alert_detail(principal, alert_id)
    return {**detail, "allowed_next": list(alert_services.allowed_next(detail["status"]))}


@blp.route("/diversion-alerts/<int:alert_id>", methods=["GET"])
@blp.response(200, DiversionAlertDetailOut)
def get_alert(alert_id):
    """One alert with its names, its status and its whole history (status changes and notes, oldest first)."""
    return _detail(require("hq.read"), alert_id)


@blp.route("/diversion-alerts/<int:alert_id>/status", methods=["POST"])
@blp.arguments(AlertStatusBody)
@blp.response(200, DiversionAlertDetailOut)
def set_alert_status(body, alert_id):
    """Move an alert: open → investigating → confirmed | dismissed (open → dismissed too; a closed one may be
    reopened to investigating). Closing or reopening needs a note. An illegal step is 409
    `alert_transition_refused`, with the steps allowed from where it is."""
    principal = current_principal()
    alert_services.change_status(principal, alert_id, status=body["status"], note=body["note"])
    return _detail(principal, alert_id)


@blp.route("/diversion-alerts/<int:alert_id>/notes", methods=["POST"])
@blp.arguments(AlertNoteBody)
@blp.response(201, DiversionAlertDetailOut)
def add_alert_note(body, alert_id):
    """Add a note to an alert's history (its status does not change)."""
    principal = current_principal()
    alert_services.add_note(principal, alert_id, text=body["text"])
    return _detail(principal, alert_id)


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
    return {"diversion_policy": scan_policy.get_scan_policy(require("hq.read"))}


@blp.route("/scan-policy", methods=["PUT"])
@blp.arguments(ScanPolicyBody)
@blp.response(200, ScanPolicyOut)
def put_policy(body):
    """Set the diversion policy."""
    return {"diversion_policy": scan_policy.set_scan_policy(require("hq.write", kind="hq"), **body)}


@blp.route("/consumer-settings", methods=["GET"])
@blp.response(200, ConsumerSettingsOut)
def get_consumer_settings():
    """What the consumer page (`/c/…`, `/api/public/v1/verify`) says about the brand: its name (for products
    without their own) and its service contact."""
    require("hq.read")
    return verification.consumer_settings()


@blp.route("/consumer-settings", methods=["PUT"])
@blp.arguments(ConsumerSettingsBody)
@blp.response(200, ConsumerSettingsOut)
def put_consumer_settings(body):
    """Set the brand name and service contact the consumer page shows."""
    return verification.set_consumer_settings(require("hq.write", kind="hq"), **body)

