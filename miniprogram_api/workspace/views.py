"""The partner's workspace: the stores in the caller's scope, one store's summary, sell-through in the scope."""

from flask_smorest import Blueprint

from app.analytics import queries, rollups, workspace
from app.core.security import current_principal
from miniprogram_api.workspace.schemas import (
    SellThroughArgs,
    SellThroughPage,
    StoreListArgs,
    StoreSummary,
    WorkspaceStorePage,
)

blp = Blueprint("mp_workspace", __name__, description="The partner's workspace (门店巡访、动销)")


@blp.before_request
def _fresh_rollups():
    """Sales figures come from the rollups: fold the sales recorded since the last fold first (as HQ's do)."""
    rollups.fold()


@blp.route("/stores", methods=["GET"])
@blp.arguments(StoreListArgs, location="query")
@blp.response(200, WorkspaceStorePage)
@blp.doc(security=[{"bearer": []}])
def list_stores(args):
    """The caller's stores (a distributor: those it serves; an agent: every distributor's under it; HQ: all),
    each with its last scan, stock on hand by unit, sell-through this and last month, days since the last
    order and open orders, sorted by `sort` (default `visit`: the stores needing a visit first). Store users: 403."""
    return workspace.list_workspace_stores(current_principal(), **args)


@blp.route("/stores/<int:store_id>", methods=["GET"])
@blp.response(200, StoreSummary)
@blp.doc(security=[{"bearer": []}])
def store_summary(store_id):
    """One store's summary: its figures as in the list, stock and sales by SKU, recent orders and scans."""
    return workspace.store_summary(current_principal(), store_id)


@blp.route("/sell-through", methods=["GET"])
@blp.arguments(SellThroughArgs, location="query")
@blp.response(200, SellThroughPage)
@blp.doc(security=[{"bearer": []}])
def sell_through(args):
    """Units and fen sold in the caller's scope (a store user: their store; partner staff: their stores), by
    day, SKU or store, with the previous period of the same length (default: the last 28 complete days)."""
    p = queries.period(args["from_"], args["to"])
    rows = workspace.workspace_sell_through(current_principal(), p=p, group_by=args["group_by"])
    page, size = args["page"], args["page_size"]
    prev = p.previous()
    return {"items": rows[(page - 1) * size: page * size], "page": page, "page_size": size, "total": len(rows),
            "group_by": args["group_by"],
            "period": {"from": p.start.isoformat(), "to": p.end.isoformat(), "previous_from": prev.start.isoformat(),
                       "previous_to": prev.end.isoformat()}}
