"""Store scans: receive, sell, return (one or an offline batch), undo, and the store's recent scans."""

import json
from datetime import datetime
from functools import wraps

from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import ValidationError

from app.core.security import current_principal, default_store_id, require
from app.errors import AppError, NotFound
from app.scans import messages, queries
from app.scans.answers import build_answer
from app.scans.services import EncodedAnswer, ScanInput, scan, scan_batch, undo_scan
from miniprogram_api.scans.schemas import (
    MAX_ID,
    ScanAnswer,
    ScanBatchAnswer,
    ScanBatchBody,
    ScanBody,
    ScanListArgs,
    ScanPage,
    ScanUndoAnswer,
)

blp = Blueprint("mp_scans", __name__, description="Scans at the store (扫码入库、出库、退货)")

_scan_body = ScanBody()
_ACTIONS = frozenset(("receive", "sell", "return"))


def _plain_item(raw: dict) -> ScanInput | None:
    """A plain, well-formed scan (the shape the phone sends) taken as is, or None for the schema to judge.

    The shortcut exists because the schema costs more than the sell itself: in a 500-item batch, and in the
    CPU of a single sell."""
    if (isinstance(raw.get("request_id"), str) and 0 < len(raw["request_id"]) <= 64 and raw["request_id"].isprintable()
            and isinstance(raw.get("code"), str) and 0 < len(raw["code"]) <= 512 and "\x00" not in raw["code"]
            and isinstance(raw.get("action"), str) and raw["action"] in _ACTIONS
            and isinstance(raw.get("scanned_at"), str) and raw.keys() <= {"request_id", "code", "action",
                                                                         "scanned_at", "store_id"}
            and (raw.get("store_id") is None or (type(raw["store_id"]) is int and 0 < raw["store_id"] <= MAX_ID))):
        try:
            at = datetime.fromisoformat(raw["scanned_at"])
        except ValueError:
            return None
        if at.tzinfo is not None:
            return ScanInput(request_id=raw["request_id"], code=raw["code"], action=raw["action"], scanned_at=at,
                             store_id=raw.get("store_id"))
    return None


def _load_item(raw) -> ScanInput:
    """One batch item: a plain one as is; anything else through the schema (and its field errors)."""
    if not isinstance(raw, dict):
        raise ValidationError({"_item": ["每条扫码要是一个对象"]})
    return _plain_item(raw) or ScanInput(**_scan_body.load(raw))


def _bad_item(raw, err: ValidationError) -> dict:
    """The answer for a batch item that is not a well-formed scan: refused on its own, nothing recorded."""
    get = raw.get if isinstance(raw, dict) else (lambda _key: None)
    request_id = get("request_id") if isinstance(get("request_id"), str) else None
    action = get("action") if isinstance(get("action"), str) else None
    fields_ = err.messages if isinstance(err.messages, dict) else {"_item": err.messages}
    return build_answer("refused", request_id=request_id, action=action, reason="validation_failed",
                        message=messages.refused("validation_failed"), details={"fields": fields_})


def _arguments(schema, plain, build=lambda body: body):
    """`blp.arguments(schema)`: the same OpenAPI entry and, for anything but a body `plain` accepts, the same
    parsing and errors. A plain body skips the schema, which costs more than the work: in the CPU of a single
    sell, and in a batch's pass over 500 items (each item is checked on its own in the view anyway)."""

    def decorator(func):
        @wraps(func)
        def view(*args, **kwargs):
            value = plain(request.get_json(silent=True))
            if value is None:
                value = build(blp.ARGUMENTS_PARSER.parse(schema, location="json"))
            return func(value, *args, **kwargs)

        view._apidoc = blp.arguments(type(schema))(func)._apidoc
        return view

    return decorator


def _plain_batch(raw) -> dict | None:
    """A body of the batch's shape (its items are judged one by one in the view)."""
    if isinstance(raw, dict) and raw.keys() == {"items"} and isinstance(raw["items"], list) and raw["items"]:
        return raw
    return None


@blp.route("/scans", methods=["POST"])
@_arguments(_scan_body, lambda raw: _plain_item(raw) if isinstance(raw, dict) else None, lambda d: ScanInput(**d))
@blp.response(200, ScanAnswer)
@blp.doc(security=[{"bearer": []}])
def create_scan(item: ScanInput):
    """Scan one code (or a GTIN with a quantity): receive, sell or return; a replayed request_id answers as before."""
    # The answer is plain JSON already (as in the batch): no per-field dump on the hot path.
    return _json_response(_dump_answer(scan(current_principal(), item)))


_batch_body = ScanBatchBody()


@blp.route("/scans/batch", methods=["POST"])
@_arguments(_batch_body, _plain_batch)
@blp.response(200, ScanBatchAnswer)
@blp.doc(security=[{"bearer": []}])
def create_scan_batch(body):
    """Upload an offline queue of up to SCAN_BATCH_MAX scans; each item is answered on its own, in order."""
    principal = require("scan")
    limit = current_app.config["SCAN_BATCH_MAX"]
    if len(body["items"]) > limit:
        raise AppError(f"一次最多上传 {limit} 条扫码", code="batch_too_large", status=413,
                       details={"max": limit, "got": len(body["items"])})
    items: list = []
    for raw in body["items"]:
        try:
            items.append(_load_item(raw))
        except ValidationError as err:
            items.append(_bad_item(raw, err))
    answers = scan_batch(principal, items)
    # Answers from the hot path are accepted sells, already JSON: they go out as they are.
    statuses = ["accepted" if isinstance(a, EncodedAnswer) else a["status"] for a in answers]
    counts = {k: statuses.count(k) for k in ("accepted", "duplicate", "refused")}
    body = '{"items":[' + ",".join(_dump_answer(a) for a in answers) + "]," + json.dumps(counts)[1:]
    return _json_response(body)


def _dump_answer(answer) -> str:
    if isinstance(answer, EncodedAnswer):
        return answer.text
    return json.dumps(answer, ensure_ascii=False, default=str)


def _json_response(body: str):
    return current_app.response_class(body, mimetype="application/json")


@blp.route("/scans/<int:event_id>/undo", methods=["POST"])
@blp.response(200, ScanUndoAnswer)
@blp.doc(security=[{"bearer": []}])
def undo(event_id):
    """Undo a scan within the undo window (one's own; the store's owner, any scan made in the store): a correcting
    event, never a delete."""
    principal = require("scan")
    if event_id > MAX_ID:  # no such event can exist (ids are BIGINT)
        raise NotFound("找不到你的这次扫码", code="scan_not_found")
    return undo_scan(principal, event_id)


@blp.route("/scans", methods=["GET"])
@blp.arguments(ScanListArgs, location="query")
@blp.response(200, ScanPage)
@blp.doc(security=[{"bearer": []}])
def list_scans(args):
    """The store's recent scans, newest first."""
    principal = current_principal()
    store_id = default_store_id(principal, args["store_id"])
    return queries.list_store_scans(principal, store_id, page=args["page"], page_size=args["page_size"])
