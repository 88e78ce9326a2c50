"""The console's code pages: issue a batch and watch it being made, put it away, download its labels, and trace
any code an operator scans or pastes (the printed URL, WeChat's `q=` link or the bare serial).

Each form is parsed with the API's own bounds, and a refusal (by the form or by the service) is shown beside the
field it is about, on the same page with a 4xx status, and changes nothing. The writes call the same use cases as
the HQ API (`app.codes.services`), with the console's caller.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, validate

from app.catalog.queries import list_serialized_skus
from app.catalog.units import pack_text
from app.codes import queries as code_queries
from app.codes import services as code_services
from app.codes.parse import grouped
from app.core.schemas import Id, Int
from app.errors import AppError, NotFound
from app.inventory.queries import list_warehouses

STATUS_ZH = {"done": "已完成", "pending": "排队中", "running": "生成中", "failed": "失败"}
ACTION_ZH = {"commission": "赋码", "pack": "装箱", "putaway": "入仓", "ship": "发货", "receive": "门店收货",
             "sell": "售出", "return": "退货", "undo": "撤销", "adjust": "盘点调整", "missing": "盘点未找到",
             "found": "盘点找回", "verify": "消费者查验"}
STATE_ZH = {"issued": "已发码", "packed": "已装箱", "in_warehouse": "在仓", "in_transit": "在途",
            "in_store": "在店", "sold": "已售出", "returned": "已退货", "voided": "已作废", "missing": "盘点未找到"}
MAX_TRACE_INPUT = 512
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")


class _IssueForm(Schema):
    sku_id = Id(required=True)
    quantity = Int(required=True, validate=validate.Range(min=1, max=code_services.MAX_BATCH))
    case_size = Int(load_default=None, validate=validate.Range(min=1, max=10_000))


class _PutAwayForm(Schema):
    warehouse_id = Id(required=True)
    add_stock = fields.Boolean(load_default=False, truthy={1, "on", "true"}, falsy={0, "off", "false"})


# Which field a service's refusal is about (by its stable code); others are shown above the form.
_ISSUE_FIELDS = {"sku_not_found": "sku_id", "sku_not_serialized": "sku_id", "bad_quantity": "quantity",
                 "bad_case_size": "case_size"}
_PUT_AWAY_FIELDS = {"warehouse_not_found": "warehouse_id", "forbidden": "warehouse_id",
                    "out_of_scope": "warehouse_id"}


def _form(schema: Schema) -> tuple[dict | None, dict[str, str]]:
    """The form's fields (empty ones left out), loaded; or the message per field."""
    data: dict[str, Any] = {k: v.strip() for k, v in request.form.items() if k != "csrf" and v.strip()}
    # A form sends text: whole numbers become numbers, for the API's own bounded types to check.
    data = {k: int(v) if _INTEGER.fullmatch(v) else v for k, v in data.items()}
    try:
        return schema.load(data, unknown="exclude"), {}
    except ValidationError as err:
        return None, {name: "；".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs)
                      for name, msgs in err.messages.items()}


def _refusal(err: AppError, fields_by_code: dict[str, str]) -> dict[str, str]:
    """A service's refusal as messages by field: its own field messages, else the field its code is about."""
    named = err.details.get("fields") if isinstance(err.details, dict) else None
    if isinstance(named, dict) and named:
        return {k: "；".join(v) if isinstance(v, list) else str(v) for k, v in named.items()}
    return {fields_by_code.get(err.code, "_form"): err.message}


def _batch_rows() -> list[dict[str, Any]]:
    return [{"id": b["id"], "sku": b["sku_name"] or b["sku_id"], "quantity": b["quantity"],
             "case_size": b["case_size"], "status": b["status"], "units_made": b["units_made"],
             "created_at": b["created_at"]} for b in code_queries.list_batches(limit=200)]


def _batches_page(errors: dict[str, str] | None = None, values: dict | None = None, status: int = 200):
    skus = list_serialized_skus()
    for s in skus:
        s["pack"] = pack_text(s["case_pack"], s["unit"], s["case_unit"])
    return render_template("hq/code_batches.html", items=_batch_rows(), skus=skus, errors=errors or {},
                           values=values or {}, status_zh=STATUS_ZH), status


def code_batches():
    """Code batches with progress and label downloads, the form that issues one, and the trace search."""
    return _batches_page()


def issue_batch():
    """Issue a batch from the form; then its page, where the progress bar follows the job."""
    values = {k: request.form.get(k, "") for k in ("sku_id", "quantity", "case_size")}
    form, errors = _form(_IssueForm())
    if errors:
        return _batches_page(errors, values, 422)
    try:
        batch = code_services.create_batch(g.principal, **form)
    except AppError as err:
        return _batches_page(_refusal(err, _ISSUE_FIELDS), values, err.status)
    flash(f"已提交发码：{batch.quantity} 个码，正在生成", "ok")
    return redirect(url_for("hq_pages.code_batch", batch_id=batch.id))


def _batch_page(batch_id: int, errors: dict[str, str] | None = None, values: dict | None = None,
                status: int = 200):
    batch = code_queries.get_batch(batch_id)
    if batch is None:
        raise NotFound("找不到这批码", code="batch_not_found")
    sku = next((s for s in list_serialized_skus() if s["id"] == batch.sku_id), None)
    sample = [{"serial": grouped(r["serial"]), "raw": r["serial"], "url": r["url"]}
              for r in code_queries.list_label_rows(batch_id, "unit", 0, 5)] if batch.status == "done" else []
    return render_template("hq/code_batch.html", batch=batch, sku=sku, warehouses=list_warehouses(),
                           status_zh=STATUS_ZH, sample=sample, errors=errors or {}, values=values or {}), status


def code_batch(batch_id: int):
    """One batch: a live progress bar while it is made, then its labels and the put-away form."""
    return _batch_page(batch_id)


def put_away(batch_id: int):
    """Put the whole batch into a warehouse (packed → in warehouse), optionally booking its units into stock."""
    values = {k: request.form.get(k, "") for k in ("warehouse_id", "add_stock")}
    form, errors = _form(_PutAwayForm())
    if code_queries.get_batch(batch_id) is None:
        raise NotFound("找不到这批码", code="batch_not_found")
    if errors:
        return _batch_page(batch_id, errors, values, 422)
    try:
        units = code_services.put_away(g.principal, batch_id=batch_id, **form)
    except AppError as err:
        return _batch_page(batch_id, _refusal(err, _PUT_AWAY_FIELDS), values, err.status)
    flash(f"已入仓：{units} 个码" + ("，并记入仓库库存" if form["add_stock"] else ""), "ok")
    return redirect(url_for("hq_pages.code_batch", batch_id=batch_id))


def trace():
    """Find a code by whatever was scanned or pasted, and show its timeline (events in order, place and who)."""
    text = request.args.get("code", "").strip()
    if not text:
        return render_template("hq/trace.html", text="", item=None, error=None)
    if len(text) > MAX_TRACE_INPUT:
        return render_template("hq/trace.html", text=text[:MAX_TRACE_INPUT], item=None,
                               error="内容太长，不是我们的码"), 422
    try:
        item = code_queries.get_trace_for(g.principal, text)
    except AppError as err:
        return render_template("hq/trace.html", text=text, item=None, error=err.message), err.status
    return render_template("hq/trace.html", text=text, item=item, error=None, grouped=grouped,
                           action_zh=ACTION_ZH, state_zh=STATE_ZH)


def add_routes(bp: Blueprint, login_required) -> None:
    """Mount these pages on the console's blueprint."""
    bp.add_url_rule("/code-batches", "code_batches", login_required(code_batches), methods=["GET"])
    bp.add_url_rule("/code-batches", "issue_batch", login_required(issue_batch), methods=["POST"])
    bp.add_url_rule("/code-batches/<int:batch_id>", "code_batch", login_required(code_batch), methods=["GET"])
    bp.add_url_rule("/code-batches/<int:batch_id>/put-away", "put_away_batch", login_required(put_away),
                    methods=["POST"])
    bp.add_url_rule("/codes/trace", "trace", login_required(trace), methods=["GET"])
