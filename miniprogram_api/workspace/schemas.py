"""Request and answer shapes of the partner's workspace (the stores partner staff work through)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.analytics.workspace import SORTS, WORKSPACE_GROUPS
from app.core.pagination import PageArgs
from app.core.schemas import AwareDateTime, Day, Id


class StoreListArgs(PageArgs):
    sort = fields.String(load_default="visit", validate=validate.OneOf(SORTS), metadata={
        "description": "`visit` (default): stores needing a visit first: those with an open issue (a SKU sold "
                       "out or running low, an order waiting on the store); then, in each group, the longest "
                       "without an order or a scan, in steps (never, 30+ days, 14+, 7+, less); within a step the "
                       "biggest fall in sales (last 28 days against the 28 before); then the oldest contact and "
                       "the name. `name`; `sales`: most units sold this month first"})
    distributor_id = Id(load_default=None, metadata={"description": "only this distributor's stores (an agent's "
                                                                    "staff, one distributor at a time)"})


class DistributorGroup(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    stores = fields.Integer()
    stores_needing_visit = fields.Integer(metadata={"description": "an open issue, or 14 days or more without "
                                                                   "an order or a scan (or never)"})
    units_this_month = fields.Integer()
    units_last_month = fields.Integer()


class OnHandByUnit(Schema):
    unit = fields.String(metadata={"description": "the unit of sale (箱, 包, 瓶…); units are never added across"})
    units = fields.Integer()
    skus = fields.Integer(metadata={"description": "SKUs of this unit in stock"})


class DistributorRef(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class Attention(Schema):
    code = fields.String(metadata={"description": "out_of_stock | low_stock | orders_waiting | never_active | "
                                                  "idle | falling_sales"})
    count = fields.Integer()
    message = fields.String(metadata={"description": "a short Chinese sentence"})


class WorkspaceStore(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    province_code = fields.String()
    city_code = fields.String()
    district_code = fields.String(allow_none=True)
    province_name = fields.String()
    city_name = fields.String()
    district_name = fields.String(allow_none=True)
    distributor = fields.Nested(DistributorRef, metadata={"description": "the distributor serving the store "
                                                                         "(an agent's staff group by it)"})
    last_scan_at = AwareDateTime(allow_none=True, metadata={"description": "the newest scan received from "
                                                                           "the store"})
    days_since_last_scan = fields.Integer(allow_none=True)
    last_order_at = AwareDateTime(allow_none=True, metadata={"description": "the newest order not called off"})
    days_since_last_order = fields.Integer(allow_none=True, metadata={"description": "business days (Asia/Shanghai)"})
    open_orders = fields.Integer(metadata={"description": "orders not yet delivered nor called off"})
    orders_waiting = fields.Integer(metadata={"description": "orders waiting on the store to confirm or pay"})
    on_hand = fields.List(fields.Nested(OnHandByUnit))
    skus_in_stock = fields.Integer()
    skus_out_of_stock = fields.Integer(metadata={"description": "SKUs with none on hand that sold in the last 28 days"})
    skus_low = fields.Integer(metadata={"description": "SKUs whose stock covers fewer than 7 days at the pace of "
                                                      "the last 28 days"})
    units_this_month = fields.Integer()
    amount_this_month_fen = fields.Integer()
    units_last_month = fields.Integer()
    amount_last_month_fen = fields.Integer()
    units_last_28_days = fields.Integer()
    units_28_days_before = fields.Integer()
    attention = fields.List(fields.Nested(Attention), metadata={"description": "why the store is worth a visit"})


class WorkspaceStorePage(Schema):
    items = fields.List(fields.Nested(WorkspaceStore))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
    sort = fields.String()
    distributors = fields.List(fields.Nested(DistributorGroup), metadata={
        "description": "every distributor of the caller's scope (whatever the page and the filter)"})


class StoreSku(Schema):
    sku_id = fields.Integer()
    sku_code = fields.String()
    name = fields.String()
    unit = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()
    units_this_month = fields.Integer()
    amount_this_month_fen = fields.Integer()
    units_last_month = fields.Integer()
    amount_last_month_fen = fields.Integer()
    units_last_28_days = fields.Integer()
    days_of_cover = fields.Float(allow_none=True, metadata={"description": "null when it did not sell"})
    out_of_stock = fields.Boolean()
    low = fields.Boolean()


class StoreOrder(Schema):
    id = fields.Integer()
    number = fields.String()
    status = fields.String()
    status_name = fields.String()
    is_proxy = fields.Boolean()
    total_fen = fields.Integer()
    created_at = AwareDateTime()


class StoreScan(Schema):
    id = fields.Integer()
    action = fields.String()
    sku_id = fields.Integer()
    sku_name = fields.String()
    serial = fields.String(allow_none=True)
    quantity = fields.Integer()
    event_time = AwareDateTime()
    recorded_at = AwareDateTime()
    undone = fields.Boolean()
    diverted = fields.Boolean()


class DayRange(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()


class SummaryPeriods(Schema):
    this_month = fields.Nested(DayRange)
    last_month = fields.Nested(DayRange)


class StoreSummary(WorkspaceStore):
    skus = fields.List(fields.Nested(StoreSku))
    recent_orders = fields.List(fields.Nested(StoreOrder))
    recent_scans = fields.List(fields.Nested(StoreScan))
    periods = fields.Nested(SummaryPeriods)


class SellThroughArgs(PageArgs):
    group_by = fields.String(load_default="day", validate=validate.OneOf(WORKSPACE_GROUPS))
    from_ = Day(data_key="from", load_default=None)
    to = Day(load_default=None)


class SellThroughRow(Schema):
    key = fields.String(metadata={"description": "the day (ISO), SKU id or store id"})
    label = fields.String()
    units = fields.Integer(metadata={"description": "every unit alike; show `units_by_unit`"})
    units_by_unit = fields.List(fields.Dict(), metadata={"description": "[{unit, quantity}]: a total per unit"})
    amount_fen = fields.Integer()
    previous_units = fields.Integer()
    previous_units_by_unit = fields.List(fields.Dict())
    previous_amount_fen = fields.Integer()
    change_pct = fields.Float(allow_none=True)


class PeriodOut(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    previous_from = fields.String()
    previous_to = fields.String()


class SellThroughPage(Schema):
    items = fields.List(fields.Nested(SellThroughRow))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
    period = fields.Nested(PeriodOut)
    group_by = fields.String()
