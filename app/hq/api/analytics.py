"""HQ sell-through dashboards, exports, allocation plans, transfers and production suggestions."""

from __future__ import annotations

from datetime import datetime

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.analytics import exports, production, queries, services
from app.analytics.reports import TABLE_COLUMNS, list_plans, list_transfers, plan_detail, transfer_detail
from app.catalog.units import by_unit_text
from app.core.pagination import PageArgs
from app.core.replica import replica_reads
from app.core.schemas import Body, Bool, Day, Id, Int
from app.core.security import current_principal, require

blp = Blueprint("hq_analytics", __name__, description="Sell-through, stock cover, allocation and production")


class DashboardArgs(Schema):
    from_ = Day(data_key="from", load_default=None)
    to = Day(load_default=None)
    sku_id = Id(load_default=None)
    region = fields.String(load_default=None, validate=validate.Regexp(r"^\d{6}$"))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx", "csv"]))
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = Int(load_default=200, validate=validate.Range(min=1, max=1000))


class SellThroughArgs(DashboardArgs):
    group_by = fields.String(load_default="day", validate=validate.OneOf(queries.GROUPS))


class SellInArgs(DashboardArgs):
    group_by = fields.String(load_default="sku", validate=validate.OneOf(queries.GROUPS))


class DashboardTableOut(Schema):
    items = fields.List(fields.Dict())
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
    period = fields.Dict()
    group_by = fields.String()


class DashboardOverviewOut(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    totals = fields.Dict()
    trend = fields.List(fields.Dict())
    top_skus = fields.List(fields.Dict())
    top_provinces = fields.List(fields.Dict())
    top_cities = fields.List(fields.Dict())


class TransferOrderOut(Schema):
    id = fields.Integer()
    plan_id = fields.Integer(allow_none=True)
    status = fields.String()
    from_warehouse_id = fields.Integer()
    from_warehouse_name = fields.String()
    to_warehouse_id = fields.Integer()
    to_warehouse_name = fields.String()
    created_at = fields.String()
    received_at = fields.String(allow_none=True)
    lines = fields.List(fields.Dict())
    total_units = fields.Integer(metadata={"description": "every unit alike; show `units_by_unit`"})
    units_by_unit = fields.List(fields.Dict(), metadata={"description": "[{unit, quantity}]: a total per unit"})


class PlanOut(Schema):
    id = fields.Integer()
    status = fields.String()
    target_cover_days = fields.Integer()
    alpha = fields.Float()
    history_days = fields.Integer()
    as_of = fields.String()
    note = fields.String()
    created_at = fields.String()
    approved_at = fields.String(allow_none=True)
    total_units = fields.Integer(metadata={"description": "every unit alike; show `units_by_unit`"})
    units_by_unit = fields.List(fields.Dict(), metadata={"description": "[{unit, quantity}]: a total per unit"})
    line_count = fields.Integer()
    central_warehouse = fields.Dict()
    lines = fields.List(fields.Dict())
    transfers = fields.List(fields.Nested(TransferOrderOut))


def _table(name: str, rows: list[dict], args: dict, extra: dict | None = None):
    """Answer a dashboard table as JSON (paged) or as a file download."""
    fmt = args.get("format", "json")
    if fmt in ("xlsx", "csv"):
        columns = TABLE_COLUMNS[name]
        stamp = datetime.now().strftime("%Y%m%d")
        if fmt == "xlsx":
            data = exports.to_xlsx(_for_sheet(rows), columns, sheet=name)
            mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            data = exports.to_csv(_for_sheet(rows), columns)
            mime = "text/csv; charset=utf-8"
        return Response(data, mimetype=mime, headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'})
    page, size = args.get("page", 1), args.get("page_size", 200)
    out = {"items": rows[(page - 1) * size: page * size], "page": page, "page_size": size, "total": len(rows)}
    out.update(extra or {})
    return out


def _for_sheet(rows: list[dict]):
    for r in rows:
        # Each per-unit total (`units_by_unit`, `on_hand_by_unit`…) as its text beside it (`units_text`).
        r = {**r, **{f"{key[:-len('_by_unit')]}_text": by_unit_text(value) for key, value in r.items()
                     if key.endswith("_by_unit") and isinstance(value, list)}}
        if "by_unit" in r:  # sell-in: a rate per unit
            r = {**r, "rates_text": " · ".join(
                f"{g['unit']} {'—' if g['rate_pct'] is None else g['rate_pct']}%" for g in r["by_unit"])}
        if "amount_fen" in r:
            r = {**r, "amount_yuan": exports.fen_to_yuan(r["amount_fen"]),
                 "previous_amount_yuan": exports.fen_to_yuan(r.get("previous_amount_fen"))}
        yield r


def _period(args):
    return queries.period(args.get("from_"), args.get("to"))


@blp.route("/sell-through", methods=["GET"])
@blp.arguments(SellThroughArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def sell_through(args):
    """Units and fen sold, grouped by day, SKU, province, city, distributor or store, with the previous period."""
    principal = require("hq.read")
    p = _period(args)
    rows = queries.sell_through(principal, p=p, group_by=args["group_by"], sku_id=args["sku_id"],
                                region=args["region"])
    return _table("sell_through", rows, args, {"period": _period_info(p), "group_by": args["group_by"]})


def _period_info(p):
    prev = p.previous()
    return {"from": p.start.isoformat(), "to": p.end.isoformat(), "previous_from": prev.start.isoformat(),
            "previous_to": prev.end.isoformat()}


@blp.route("/store-stock", methods=["GET"])
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def store_stock(args):
    """On hand per store and SKU with the smoothed daily rate and days of cover (null when nothing sells)."""
    principal = require("hq.read")
    rows = queries.list_store_cover(principal, sku_id=args["sku_id"], region=args["region"])
    return _table("store_stock", rows, args)


@blp.route("/sell-in", methods=["GET"])
@blp.arguments(SellInArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def sell_in(args):
    """Units shipped to stores (sell-in) beside units they sold (sell-through), per group."""
    principal = require("hq.read")
    p = _period(args)
    rows = queries.sell_in_vs_through(principal, p=p, group_by=args["group_by"], sku_id=args["sku_id"],
                                      region=args["region"])
    return _table("sell_in", rows, args, {"period": _period_info(p)})


@blp.route("/slow-stores", methods=["GET"])
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def slow_stores(args):
    """Stores holding stock that sold least in the period."""
    principal = require("hq.read")
    p = _period(args)
    return _table("slow_stores", queries.slow_stores(principal, p=p, region=args["region"], limit=1000), args,
                  {"period": _period_info(p)})


@blp.route("/distributor-ranking", methods=["GET"])
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def distributor_ranking(args):
    """Distributors ranked by units their stores sold, with the previous period."""
    principal = require("hq.read")
    p = _period(args)
    rows = queries.distributor_ranking(principal, p=p, sku_id=args["sku_id"], region=args["region"])
    return _table("distributor_ranking", rows, args, {"period": _period_info(p)})


@blp.route("/overview", methods=["GET"])
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardOverviewOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def overview(args):
    """Key figures this period vs the previous one, the daily trend, top SKUs, provinces and cities."""
    principal = require("hq.read")
    return queries.overview(principal, p=_period(args), sku_id=args["sku_id"], region=args["region"])


# --- allocation plans -------------------------------------------------------------------------------------

class PlanBody(Body):
    target_cover_days = Int(required=True, validate=validate.Range(min=1, max=365))
    history_days = Int(load_default=28, validate=validate.Range(min=7, max=180))
    alpha = fields.Float(load_default=0.3, validate=validate.Range(min=0.01, max=1.0))
    sku_ids = fields.List(Id(), load_default=None, validate=validate.Length(min=1, max=5000))
    note = fields.String(load_default="", validate=validate.Length(max=255))


class PlanLineBody(Body):
    quantity = Int(required=True, validate=validate.Range(min=0, max=10_000_000))


class ProductionArgs(Schema):
    horizon_days = Int(load_default=45, validate=validate.Range(min=1, max=365))
    safety_days = Int(load_default=7, validate=validate.Range(min=0, max=180))
    include_stores = Bool(load_default=False)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx", "csv"]))


@blp.route("/allocation-plans", methods=["POST"])
@blp.arguments(PlanBody)
@blp.response(201, PlanOut)
@blp.doc(security=[{"bearer": []}])
def create_plan(body):
    """Compute a draft allocation plan (central → sub-warehouses) from smoothed city sell-through."""
    plan = services.create_plan(current_principal(), **body)
    return plan_detail(plan.id)


@blp.route("/allocation-plans", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
def get_plans(args):
    """Allocation plans, newest first."""
    require("hq.read")
    return list_plans(page=args["page"], page_size=args["page_size"])


@blp.route("/allocation-plans/<int:plan_id>", methods=["GET"])
@blp.response(200, PlanOut)
@blp.doc(security=[{"bearer": []}])
def get_plan(plan_id):
    """One plan with its lines: rate, stock, in transit, suggested and planned quantity, cover after."""
    require("hq.read")
    return plan_detail(plan_id)


@blp.route("/allocation-plans/<int:plan_id>/lines/<int:line_id>", methods=["PATCH"])
@blp.arguments(PlanLineBody)
@blp.response(200, PlanOut)
@blp.doc(security=[{"bearer": []}])
def edit_line(body, plan_id, line_id):
    """Change one line's quantity (whole cases) while the plan is a draft."""
    services.edit_line(current_principal(), plan_id=plan_id, line_id=line_id, quantity=body["quantity"])
    return plan_detail(plan_id)


@blp.route("/allocation-plans/<int:plan_id>/approve", methods=["POST"])
@blp.response(200, PlanOut)
@blp.doc(security=[{"bearer": []}])
def approve_plan(plan_id):
    """Approve the plan: transfer orders are created and the stock leaves central (in transit)."""
    services.approve_plan(current_principal(), plan_id=plan_id)
    return plan_detail(plan_id)


class TransferListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(["in_transit", "received"]))


@blp.route("/transfers", methods=["GET"])
@blp.arguments(TransferListArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
def get_transfers(args):
    """Transfer orders between warehouses, newest first."""
    require("hq.read")
    return list_transfers(page=args["page"], page_size=args["page_size"], status=args["status"])


@blp.route("/transfers/<int:transfer_id>/receive", methods=["POST"])
@blp.response(200, TransferOrderOut)
@blp.doc(security=[{"bearer": []}])
def receive_transfer(transfer_id):
    """The sub-warehouse confirms receipt: the goods move from transit into its stock."""
    services.receive_transfer(current_principal(), transfer_id=transfer_id)
    return transfer_detail(transfer_id)


@blp.route("/production-suggestions", methods=["GET"])
@blp.arguments(ProductionArgs, location="query")
@blp.response(200, DashboardTableOut)
@blp.doc(security=[{"bearer": []}])
@replica_reads()
def production_suggestions(args):
    """Per SKU: forecast over the horizon plus safety stock minus the network's stock, each line explained."""
    require("hq.read")
    rows = production.production_suggestions(horizon_days=args["horizon_days"], safety_days=args["safety_days"],
                                             include_stores=args["include_stores"])
    return _table("production", rows, {**args, "page": 1, "page_size": max(1, len(rows))})

