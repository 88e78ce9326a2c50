"""The scope matrix, part two: routes about orders, credit, scans, stock, codes and analytics (the full demo).

Same actors, scopes and rules as `test_scope_matrix.py`. The demo (with codes, history and orders) is seeded once
for the module; a route that changes an object names a `make` that builds a fresh one for each target, and with
`consumes=True` a new one after every caller who was allowed to change it. So the specs do not depend on their order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.services import create_hq_user
from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.codes.models import Code, CodeBatch
from app.core.security import Binding, Principal, read_token
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import Warehouse
from app.inventory.services import move_stock
from tests.api import test_scope_matrix as matrix
from tests.api.test_scope_matrix import ALL_STORES, PARTNER_SCOPE, STORE_READERS, hq, partners
from tests.conftest import hq_login, mp_login
from tests.helpers import clear_tables

# The matrix's actors, and an operator bound to the Shenzhen sub-warehouse (made by the fixture): warehouse work is
# scoped by warehouse, so they may allocate and ship S2's orders (from Shenzhen) but not S1's (from Hangzhou).
ACTORS = {**matrix.ACTORS, "wh_sz": ("hq", "warehouse_sz")}
STORE_SCOPE = {**matrix.STORE_SCOPE, "wh_sz": ALL_STORES}
WAREHOUSE_STAFF = ("warehouse", "wh_sz")
HQ_READERS = ("hq_admin", "hq_analyst", "analyst_zj", *WAREHOUSE_STAFF)
ALERT_HANDLERS = ("hq_admin", "hq_analyst", "analyst_zj")
ORDER_CREATORS = ("owner_s1", "owner_s2", "staff_d1", "staff_d2", "staff_a1", "hq_admin")
ORDER_CANCELLERS = ORDER_CREATORS
OFFLINE_PAYERS = ("staff_d1", "staff_d2", "staff_a1", "hq_admin")
OWNERS = ("owner_s1", "owner_s2")
STORE_TARGETS = ("S1", "S2", "S5")
# An operator tied to one warehouse reads only the orders allocated to it: not an unallocated order of any store.
UNALLOCATED_READERS = tuple(a for a in (*STORE_READERS, *WAREHOUSE_STAFF) if a != "wh_sz")
HQ_UNALLOCATED_READERS = tuple(a for a in HQ_READERS if a != "wh_sz")
_n = itertools.count()


@dataclass
class World:
    app: Any
    client: Any
    ids: dict
    headers: dict
    principals: dict = field(default_factory=dict)


@dataclass
class Route:
    name: str
    method: str
    path: str
    allowed: Callable[[str, str], bool]
    targets: tuple[str, ...] = ("-",)
    # The request body from (world, target, placeholders).
    body: Callable[[World, str, dict], Any] | None = None
    ok: int = 200
    # What a caller outside the rule gets: 403, or 404 where the object is not theirs to know of.
    denied: tuple[int, ...] = (403,)
    # Optional check of an allowed answer: (world, actor, target, body).
    check: Callable[[World, str, str, Any], None] | None = None
    # Build the object a target needs; answers more path placeholders (e.g. {"order_id": 7}).
    make: Callable[[World, str], dict] | None = None
    # The allowed call used the object up (cancelled, paid, received...): make a fresh one for the next caller.
    consumes: bool = False


# --- building objects through the services ------------------------------------------------------------------

def _owner_of(w: World, store: str) -> Principal:
    """A store owner of any demo store (S5 has no owner user; the order services only read the binding)."""
    return Principal(w.ids["users"]["admin"], "mp", (Binding("store_owner", store_id=w.ids["stores"][store]),))


def _admin(w: World) -> Principal:
    return w.principals["hq_admin"]


def _order(w: World, store: str, status: str = "awaiting_payment") -> dict:
    """An order of `store` (ten packs of biscuits, no serials) brought to `status`."""
    from app.orders import fulfilment, payments, services

    with w.app.app_context():
        who = _admin(w) if status == "awaiting_confirmation" else _owner_of(w, store)
        order = services.create_order(who, request_id=f"m-{next(_n)}", store_id=w.ids["stores"][store],
                                      lines=[{"sku_id": w.ids["skus"]["BISC"], "quantity": 10}])
        order_id = order.id
        steps = ["paid", "allocated", "shipped"]
        if status in steps:
            payments.record_offline_payment(_admin(w), order_id, reference=f"M{next(_n)}")
        if status in steps[1:]:
            fulfilment.allocate_order(_admin(w), order_id)
        if status == "shipped":
            fulfilment.ship_order(_admin(w), order_id, case_codes=[])
        db.session.remove()
    return {"order_id": order_id}


def order_in(status: str) -> Callable[[World, str], dict]:
    return lambda w, target: _order(w, target, status)


def _scan_event(w: World, store: str) -> dict:
    """A receive scan (biscuits by GTIN) by the owner of S1 or S2, for the undo route."""
    from app.scans.services import ScanInput, scan

    who = {"S1": "owner_s1", "S2": "owner_s2"}[store]
    with w.app.app_context():
        answer = scan(w.principals[who], ScanInput(
            request_id=f"m-{next(_n)}", code=w.ids["gtins"]["BISC"], action="receive",
            scanned_at=datetime.now(UTC), store_id=w.ids["stores"][store], quantity=1))
        db.session.remove()
    assert answer["status"] == "accepted", answer
    return {"event_id": answer["event_id"]}


def _batch(w: World, target: str) -> dict:
    from app.codes import services

    with w.app.app_context():
        batch = services.create_batch(_admin(w), sku_id=w.ids["skus"]["MILK250"], quantity=2, case_size=None)
        batch_id = batch.id
        db.session.remove()
    return {"batch_id": batch_id}


def _alert(w: World, target: str) -> dict:
    """A fresh open alert: a unit sold at the target store (S1 Zhejiang, S2 Guangdong), meant for another one."""
    from app.scans.models import DiversionAlert

    expected = {"S1": "S3", "S2": "S6"}[target]
    with w.app.app_context():
        with transaction():
            code = db.session.scalar(sa.select(Code).where(Code.serial == w.ids["codes"][target]))
            alert = DiversionAlert(code_id=code.id, sku_id=code.sku_id, source="sell", policy="alert",
                                   expected_store_id=w.ids["stores"][expected], actual_store_id=w.ids["stores"][target])
            db.session.add(alert)
        alert_id = alert.id
        db.session.remove()
    return {"alert_id": alert_id}


def _plan(w: World, target: str) -> dict:
    from app.analytics import services

    with w.app.app_context():
        plan = services.create_plan(_admin(w), target_cover_days=1)
        out = {"plan_id": plan.id, "line_id": plan.lines[0].id}
        db.session.remove()
    return out


def _transfer(w: World, target: str) -> dict:
    from app.analytics import services
    from app.analytics.models import TransferOrder

    with w.app.app_context():
        plan = services.create_plan(_admin(w), target_cover_days=1)
        # Whatever the plan suggests, one case to the target warehouse only: one small transfer.
        to = w.ids["warehouses"][target]
        line = next(ln for ln in plan.lines if ln.warehouse_id == to)
        for ln in plan.lines:
            services.edit_line(_admin(w), plan_id=plan.id, line_id=ln.id,
                               quantity=db.session.get(Sku, ln.sku_id).case_pack if ln is line else 0)
        services.approve_plan(_admin(w), plan_id=plan.id)
        transfer_id = db.session.scalar(sa.select(TransferOrder.id).where(TransferOrder.plan_id == plan.id)
                                        .order_by(TransferOrder.id))
        db.session.remove()
    return {"transfer_id": transfer_id}


def _credit_owed(w: World, store: str) -> dict:
    """A credit line with something owed, so a repayment can go through."""
    from app.orders import payments

    order_id = _order(w, store)["order_id"]
    with w.app.app_context():
        payments.set_credit_limit(_admin(w), w.ids["stores"][store], limit_fen=10**9)
        payments.pay_with_credit(_owner_of(w, store), order_id)
        db.session.remove()
    return {}


def _cancel_request(w: World, store: str) -> dict:
    """A paid order of the store whose owner asked to cancel it: a request waiting for HQ."""
    from app.orders import services

    order_id = _order(w, store, "paid")["order_id"]
    with w.app.app_context():
        request_id = services.cancel_order(_owner_of(w, store), order_id, reason="矩阵").cancel_request.id
        db.session.remove()
    return {"request_id": request_id}


def _consumer_order(w: World, target: str, status: str = "routed") -> dict:
    """A consumer order served by `target`: D1 (D2 took it for a Hangzhou address) or D5 (D1 took it for a Chengdu
    one), brought to `status` by HQ's admin (who may serve any order)."""
    from app.orders import consumer_orders

    with w.app.app_context():
        answer = consumer_orders.create_consumer_order(
            w.principals["staff_d2" if target == "D1" else "staff_d1"], request_id=f"m-{next(_n)}",
            customer={"name": "矩阵", "phone": "13900000000"}, address="矩阵路 1 号",
            region_code="330106" if target == "D1" else "510107",
            lines=[{"sku_id": w.ids["skus"]["BISC"], "quantity": 1}], needs_service=False)
        order_id = answer["order"].id
        if status in ("accepted", "shipped"):
            consumer_orders.accept_consumer_order(_admin(w), order_id)
        if status == "shipped":
            consumer_orders.ship_consumer_order(_admin(w), order_id)
        db.session.remove()
    return {"consumer_order_id": order_id, "code": answer["confirmation_code"]}


def consumer_order_in(status: str) -> Callable[[World, str], dict]:
    return lambda w, target: _consumer_order(w, target, status)


# Who sees a consumer order: the bringing side, the serving side (and the agent over either), HQ by region, and
# warehouse staff (they ship); who serves it: the serving side and HQ's admin.
HQ_ALL = ("hq_admin", "hq_analyst", "analyst_zj", *WAREHOUSE_STAFF)
CONSUMER_READERS = {"D1": {"staff_d1", "staff_d2", "staff_a1", *HQ_ALL},
                    "D5": {"staff_d1", "staff_a1", *(set(HQ_ALL) - {"analyst_zj"})}}
CONSUMER_SERVERS = {"D1": {"staff_d1", "staff_a1", "hq_admin"}, "D5": {"hq_admin"}}
CONSUMER_TARGETS = ("D1", "D5")
PARTNER_STAFF = ("staff_d1", "staff_d2", "staff_a1")


def consumer_readers(actor: str, target: str) -> bool:
    return actor in CONSUMER_READERS[target]


def consumer_servers(actor: str, target: str) -> bool:
    return actor in CONSUMER_SERVERS[target]


def _consumer_orders_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    from app.orders.models import ConsumerOrder

    ids = [item["id"] for item in body["items"]]
    with w.app.app_context():
        rows = db.session.scalars(sa.select(ConsumerOrder).where(ConsumerOrder.id.in_(ids))).all()
        db.session.remove()
    mine = {w.ids["partners"][p] for p in PARTNER_SCOPE.get(actor, set())}
    for row in rows:
        if actor in PARTNER_STAFF:
            assert {row.brought_by_partner_id, row.serving_partner_id} & mine, (actor, row.id)
        elif actor == "analyst_zj":
            assert row.province_code == "330000", (actor, row.id, row.region_code)


# --- checks of list answers -----------------------------------------------------------------------------------

def _store_ids(w: World, actor: str) -> set[int]:
    return {w.ids["stores"][s] for s in STORE_SCOPE.get(actor, set())}


def _items_in_scope(key: str) -> Callable[[World, str, str, Any], None]:
    """Every item's `key` (a store id) is a store in the caller's scope."""
    def check(w: World, actor: str, target: str, body: Any) -> None:
        outside = {item[key] for item in body["items"]} - _store_ids(w, actor)
        assert not outside, f"{actor} sees stores {sorted(outside)}"
    return check


def _orders_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    """Orders of stores in the caller's scope; the Shenzhen operator's are all allocated to Shenzhen."""
    _items_in_scope("store_id")(w, actor, target, body)
    if actor == "wh_sz":
        elsewhere = {item["id"] for item in body["items"]} - {
            item["id"] for item in body["items"] if item["warehouse_id"] == w.ids["warehouses"]["WH-SZ"]}
        assert not elsewhere, f"wh_sz sees orders {sorted(elsewhere)} of other warehouses"


def _groups_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    outside = {int(item["key"]) for item in body["items"]} - _store_ids(w, actor)
    assert not outside, f"{actor} sees stores {sorted(outside)}"


def _workspace_sales_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    """Only stores of the caller's scope, and (the demo's history sells everywhere) every one of them."""
    keys = {int(item["key"]) for item in body["items"]}
    assert keys - _store_ids(w, actor) == set(), f"{actor} sees stores {sorted(keys - _store_ids(w, actor))}"
    assert keys & {w.ids["stores"][s] for s in ALL_STORES} == _store_ids(w, actor), actor


def _workspace_stores_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    ids = {item["id"] for item in body["items"]} & {w.ids["stores"][s] for s in ALL_STORES}
    assert ids == _store_ids(w, actor), actor


def _distributors_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    if actor == "analyst_zj":
        zj = {w.ids["partners"][p] for p in ("D1", "D3")}
        outside = {int(item["key"]) for item in body["items"]} - zj
        assert not outside, f"{actor} sees distributors {sorted(outside)}"


def _provinces_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    if actor == "analyst_zj":
        assert {p["key"] for p in body["top_provinces"]} <= {"330000"}, body["top_provinces"]


def _codes_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    if actor == "analyst_zj":
        seen = {c["store_id"] for c in body["items"]} | {c["destination_store_id"] for c in body["items"]}
        outside = seen - _store_ids(w, actor) - {None}
        assert not outside, f"{actor} sees codes of stores {sorted(outside)}"
        assert all(c["store_id"] or c["destination_store_id"] for c in body["items"]), "codes outside any store"


def _alerts_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    mine = _store_ids(w, actor)
    for alert in body["items"]:
        assert {alert["actual_store_id"], alert["expected_store_id"]} & mine, (actor, alert)


def _epcis_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    if actor == "analyst_zj":
        from app.codes.models import ScanEvent

        ids = [int(ev["eventID"].rsplit("-", 1)[1]) for ev in body["epcisBody"]["eventList"]]
        with w.app.app_context():
            seen = set(db.session.scalars(sa.select(ScanEvent.store_id).where(ScanEvent.id.in_(ids))))
            db.session.remove()
        outside = seen - _store_ids(w, actor)
        assert not outside, f"{actor} sees events at stores {sorted(outside, key=str)}"


def _commissions_in_scope(w: World, actor: str, target: str, body: Any) -> None:
    mine = {w.ids["partners"][p] for p in PARTNER_SCOPE.get(actor, set())}
    outside = {p["partner_id"] for p in body["partners"]} - mine
    assert not outside, f"{actor} sees commission of partners {sorted(outside)}"


def _batch_scoped(w: World, actor: str, target: str, body: Any) -> None:
    answers = body["items"]
    expected_refused = target not in STORE_SCOPE.get(actor, set())
    assert all((a.get("reason") == "out_of_scope") == expected_refused for a in answers), (actor, target, answers)


def _order_body(w: World, target: str, values: dict) -> dict:
    return {"request_id": f"matrix-{next(_n)}", "store_id": w.ids["stores"][target],
            "lines": [{"sku_id": w.ids["skus"]["BISC"], "quantity": 10}]}


def _scan_body(w: World, target: str, values: dict) -> dict:
    return {"request_id": f"matrix-{next(_n)}", "code": w.ids["gtins"]["BISC"], "action": "receive", "quantity": 1,
            "scanned_at": datetime.now(UTC).isoformat(), "store_id": w.ids["stores"][target]}


def _epcis_period() -> str:
    now = datetime.now(UTC)
    return f"from={(now - timedelta(days=30)).isoformat()}&to={(now + timedelta(hours=1)).isoformat()}".replace(
        "+", "%2B")


def stores(*actors: str) -> Callable[[str, str], bool]:
    """Allowed for these actors on the stores in their scope."""
    return lambda actor, target: actor in actors and target in STORE_SCOPE.get(actor, set())


def from_warehouse(*actors: str) -> Callable[[str, str], bool]:
    """Warehouse work on an order of S1, S2 or S5: these actors, and the Shenzhen operator for S2 (shipped from
    Shenzhen; S1 and S5 are served by Hangzhou)."""
    return lambda actor, target: actor in actors or (actor, target) == ("wh_sz", "S2")


def code_readers(actor: str, target: str) -> bool:
    """A code at (or bound for) a store: HQ readers of that store; a code in a warehouse ("WH"): HQ readers who
    are not limited to a region."""
    if target == "WH":
        return actor in HQ_READERS and actor != "analyst_zj"
    return stores(*HQ_READERS)(actor, target)


HQ = "/api/hq/v1"
MP = "/api/mp/v1"
SCANNERS = ("owner_s1", "clerk_s1", "owner_s2")
STOCK_READERS = STORE_READERS

OBJECT_ROUTES: list[Route] = [
    # --- mini-program orders -----------------------------------------------------------------------------------
    Route("mp place order", "POST", f"{MP}/orders", stores(*ORDER_CREATORS), STORE_TARGETS, body=_order_body, ok=201),
    Route("mp orders of a store", "GET", f"{MP}/orders?store_id={{store}}", stores(*STORE_READERS, *WAREHOUSE_STAFF),
          STORE_TARGETS),
    Route("mp order list", "GET", f"{MP}/orders?page_size=100", hq(*STORE_READERS, *WAREHOUSE_STAFF),
          check=_orders_in_scope),
    Route("mp order", "GET", f"{MP}/orders/{{order_id}}", stores(*UNALLOCATED_READERS), STORE_TARGETS,
          make=order_in("awaiting_payment")),
    Route("mp confirm", "POST", f"{MP}/orders/{{order_id}}/confirm", stores(*OWNERS), STORE_TARGETS,
          body=lambda w, t, v: {}, make=order_in("awaiting_confirmation"), consumes=True),
    Route("mp reject", "POST", f"{MP}/orders/{{order_id}}/reject", stores(*OWNERS), STORE_TARGETS,
          body=lambda w, t, v: {"reason": "不要了"}, make=order_in("awaiting_confirmation"), consumes=True),
    Route("mp cancel", "POST", f"{MP}/orders/{{order_id}}/cancel", stores(*ORDER_CANCELLERS), STORE_TARGETS,
          body=lambda w, t, v: {"reason": "矩阵"}, make=order_in("awaiting_payment"), consumes=True),
    Route("mp pay offline", "POST", f"{MP}/orders/{{order_id}}/payments", stores(*OFFLINE_PAYERS), STORE_TARGETS,
          body=lambda w, t, v: {"method": "offline", "reference": f"M{next(_n)}"},
          make=order_in("awaiting_payment"), consumes=True),
    # No credit line: whoever may pay gets the business refusal (409), everyone else 403.
    Route("mp pay on credit", "POST", f"{MP}/orders/{{order_id}}/payments", stores(*OWNERS, "hq_admin"),
          STORE_TARGETS, body=lambda w, t, v: {"method": "credit"}, ok=409, make=order_in("awaiting_payment")),
    Route("mp check payment", "POST", f"{MP}/orders/{{order_id}}/payments/check",
          stores(*STORE_READERS, *WAREHOUSE_STAFF), STORE_TARGETS, make=order_in("awaiting_payment")),
    Route("mp receive", "POST", f"{MP}/orders/{{order_id}}/receive", stores(*OWNERS, "clerk_s1"), STORE_TARGETS,
          make=order_in("shipped"), consumes=True),
    # --- scans, stock, incentives ------------------------------------------------------------------------------
    Route("mp scan", "POST", f"{MP}/scans", stores(*SCANNERS), STORE_TARGETS, body=_scan_body),
    Route("mp scan batch", "POST", f"{MP}/scans/batch", hq(*SCANNERS), STORE_TARGETS,
          body=lambda w, t, v: {"items": [_scan_body(w, t, v)]}, check=_batch_scoped),
    Route("mp scans of a store", "GET", f"{MP}/scans?store_id={{store}}", stores(*STORE_READERS, *WAREHOUSE_STAFF),
          STORE_TARGETS),
    Route("mp undo scan", "POST", f"{MP}/scans/{{event_id}}/undo",
          lambda actor, target: (actor, target) in {("owner_s1", "S1"), ("owner_s2", "S2")}, ("S1", "S2"),
          denied=(403, 404), make=_scan_event, consumes=True),
    Route("mp stock movements", "GET", f"{MP}/stock/movements?store_id={{store}}", stores(*STOCK_READERS),
          STORE_TARGETS),
    Route("mp stock adjustment", "POST", f"{MP}/stock/adjustments", stores(*OWNERS, "hq_admin"), STORE_TARGETS,
          ok=201, body=lambda w, t, v: {"store_id": w.ids["stores"][t], "sku_id": w.ids["skus"]["BISC"],
                                        "delta": 1, "reason": "矩阵"}),
    Route("mp stock count", "POST", f"{MP}/stock/counts", stores(*OWNERS, "hq_admin"), STORE_TARGETS, ok=201,
          body=lambda w, t, v: {"store_id": w.ids["stores"][t], "lines": [
              {"sku_id": w.ids["skus"]["BISC"], "counted": 40}]}),
    Route("mp incentives", "GET", f"{MP}/incentives?store_id={{store}}", stores(*STORE_READERS), STORE_TARGETS),
    # --- HQ orders and credit ----------------------------------------------------------------------------------
    Route("hq orders of a store", "GET", f"{HQ}/orders?store_id={{store}}", stores(*HQ_READERS), STORE_TARGETS),
    Route("hq order list", "GET", f"{HQ}/orders?page_size=100", hq(*HQ_READERS), check=_orders_in_scope),
    Route("hq order", "GET", f"{HQ}/orders/{{order_id}}", stores(*HQ_UNALLOCATED_READERS), STORE_TARGETS,
          make=order_in("awaiting_payment")),
    # Allocated: the Shenzhen operator reads S2's (shipped from Shenzhen), not S1's or S5's (from Hangzhou).
    Route("hq allocated order", "GET", f"{HQ}/orders/{{order_id}}",
          lambda actor, target: stores(*HQ_UNALLOCATED_READERS)(actor, target) or (actor, target) == ("wh_sz", "S2"),
          STORE_TARGETS, make=order_in("allocated")),
    Route("hq allocate", "POST", f"{HQ}/orders/{{order_id}}/allocate", from_warehouse("hq_admin", "warehouse"),
          STORE_TARGETS,
          body=lambda w, t, v: {}, make=order_in("paid"), consumes=True),
    Route("hq ship", "POST", f"{HQ}/orders/{{order_id}}/ship", from_warehouse("hq_admin", "warehouse"),
          STORE_TARGETS,
          ok=201, body=lambda w, t, v: {"case_codes": []}, make=order_in("allocated"), consumes=True),
    Route("hq refund", "POST", f"{HQ}/orders/{{order_id}}/refund", stores("hq_admin"), STORE_TARGETS,
          body=lambda w, t, v: {"reason": "矩阵"}, make=order_in("paid"), consumes=True),
    Route("hq cancel requests", "GET", f"{HQ}/cancel-requests?page_size=100", hq(*HQ_READERS),
          check=_items_in_scope("store_id")),
    Route("hq approve cancel request", "POST", f"{HQ}/cancel-requests/{{request_id}}/approve", stores("hq_admin"),
          STORE_TARGETS, body=lambda w, t, v: {}, make=_cancel_request, consumes=True),
    Route("hq reject cancel request", "POST", f"{HQ}/cancel-requests/{{request_id}}/reject", stores("hq_admin"),
          STORE_TARGETS, body=lambda w, t, v: {"reason": "矩阵"}, make=_cancel_request, consumes=True),
    Route("hq offline payment", "POST", f"{HQ}/orders/{{order_id}}/offline-payments", stores("hq_admin"),
          STORE_TARGETS, body=lambda w, t, v: {"reference": f"M{next(_n)}", "amount_fen": 18000},
          make=order_in("awaiting_payment"), consumes=True),
    Route("hq credit line", "GET", f"{HQ}/stores/{{store}}/credit", stores(*HQ_READERS), STORE_TARGETS),
    Route("hq set credit line", "PUT", f"{HQ}/stores/{{store}}/credit", stores("hq_admin"), STORE_TARGETS,
          body=lambda w, t, v: {"limit_fen": 10**9}),
    Route("hq credit repayment", "POST", f"{HQ}/stores/{{store}}/credit/repayments", stores("hq_admin"),
          STORE_TARGETS, body=lambda w, t, v: {"amount_fen": 1}, make=_credit_owed),
    Route("hq commission rule", "GET", f"{HQ}/commission-rule", hq(*HQ_READERS)),
    Route("hq set commission rule", "PUT", f"{HQ}/commission-rule", hq("hq_admin"),
          body=lambda w, t, v: {"margin_bp": 1000, "bringer_share_bp": 5000}),
    Route("hq commissions", "GET", f"{HQ}/commissions", hq(*HQ_READERS), check=_commissions_in_scope),
    Route("hq commissions of a partner", "GET", f"{HQ}/commissions?partner_id={{partner}}",
          partners("hq_admin", "hq_analyst"), ("D1", "D2", "D3")),
    # --- consumer orders -----------------------------------------------------------------------------------------
    Route("mp take consumer order", "POST", f"{MP}/consumer-orders", hq(*PARTNER_STAFF, "hq_admin"), ok=201,
          body=lambda w, t, v: {"request_id": f"matrix-{next(_n)}", "address": "矩阵路", "region_code": "510107",
                                "customer": {"name": "矩阵", "phone": "13900000000"}, "needs_service": False,
                                "lines": [{"sku_id": w.ids["skus"]["BISC"], "quantity": 1}]}),
    Route("mp consumer order list", "GET", f"{MP}/consumer-orders?page_size=100", hq(*PARTNER_STAFF, *HQ_ALL),
          check=_consumer_orders_in_scope),
    Route("mp consumer orders served", "GET", f"{MP}/consumer-orders?role=serving&page_size=100",
          hq(*PARTNER_STAFF, *HQ_ALL), check=_consumer_orders_in_scope),
    Route("mp consumer order", "GET", f"{MP}/consumer-orders/{{consumer_order_id}}", consumer_readers,
          CONSUMER_TARGETS, make=consumer_order_in("routed")),
    Route("mp accept consumer order", "POST", f"{MP}/consumer-orders/{{consumer_order_id}}/accept",
          consumer_servers, CONSUMER_TARGETS, make=consumer_order_in("routed"), consumes=True),
    Route("mp decline consumer order", "POST", f"{MP}/consumer-orders/{{consumer_order_id}}/decline",
          consumer_servers, CONSUMER_TARGETS, body=lambda w, t, v: {"reason": "矩阵"},
          make=consumer_order_in("routed"), consumes=True),
    Route("mp complete consumer order", "POST", f"{MP}/consumer-orders/{{consumer_order_id}}/complete",
          consumer_servers, CONSUMER_TARGETS, body=lambda w, t, v: {"confirmation_code": v["code"]},
          make=consumer_order_in("shipped"), consumes=True),
    Route("hq consumer order list", "GET", f"{HQ}/consumer-orders?page_size=100", hq(*HQ_ALL),
          check=_consumer_orders_in_scope),
    Route("hq consumer order", "GET", f"{HQ}/consumer-orders/{{consumer_order_id}}",
          lambda actor, target: actor in HQ_ALL and consumer_readers(actor, target), CONSUMER_TARGETS,
          make=consumer_order_in("routed")),
    Route("hq route consumer order", "POST", f"{HQ}/consumer-orders/{{consumer_order_id}}/route", hq("hq_admin"),
          CONSUMER_TARGETS, body=lambda w, t, v: {"partner_id": w.ids["partners"]["D2"], "reason": "矩阵"},
          make=consumer_order_in("routed"), consumes=True),
    # Hangzhou's order ships from the Hangzhou sub-warehouse, Chengdu's from the central one: never Shenzhen's.
    Route("hq ship consumer order", "POST", f"{HQ}/consumer-orders/{{consumer_order_id}}/ship",
          hq("hq_admin", "warehouse"), CONSUMER_TARGETS, body=lambda w, t, v: {},
          make=consumer_order_in("accepted"), consumes=True),
    Route("hq cancel consumer order", "POST", f"{HQ}/consumer-orders/{{consumer_order_id}}/cancel", hq("hq_admin"),
          CONSUMER_TARGETS, body=lambda w, t, v: {"reason": "矩阵"}, make=consumer_order_in("routed"),
          consumes=True),
    # --- HQ codes ----------------------------------------------------------------------------------------------
    Route("hq new code batch", "POST", f"{HQ}/code-batches", hq("hq_admin"), ok=202,
          body=lambda w, t, v: {"sku_id": w.ids["skus"]["MILK250"], "quantity": 2}),
    Route("hq code batch", "GET", f"{HQ}/code-batches/{{batch_id}}", hq(*HQ_READERS), make=_batch),
    Route("hq labels csv", "GET", f"{HQ}/code-batches/{{batch_id}}/labels.csv", hq(*HQ_READERS), make=_batch),
    Route("hq labels pdf", "GET", f"{HQ}/code-batches/{{batch_id}}/labels.pdf", hq(*HQ_READERS), make=_batch),
    Route("hq put away", "POST", f"{HQ}/code-batches/{{batch_id}}/put-away", hq("hq_admin", "warehouse"),
          body=lambda w, t, v: {"warehouse_id": w.ids["warehouses"]["WH-CENTRAL"]}, make=_batch, consumes=True),
    Route("hq codes of a store", "GET", f"{HQ}/codes?store_id={{store}}&page_size=5", stores(*HQ_READERS),
          ("S1", "S2")),
    Route("hq code list", "GET", f"{HQ}/codes?page_size=200", hq(*HQ_READERS), check=_codes_in_scope),
    Route("hq code trace", "GET", f"{HQ}/codes/{{code}}", code_readers, ("S1", "S2", "WH"),
          make=lambda w, t: {"code": w.ids["codes"][t]}),
    Route("hq code png", "GET", f"{HQ}/codes/{{serial}}.png", code_readers, ("S1", "S2", "WH"),
          make=lambda w, t: {"serial": w.ids["codes"][t]}),
    Route("hq diversion alerts", "GET", f"{HQ}/diversion-alerts", hq(*HQ_READERS), check=_alerts_in_scope),
    Route("hq diversion alerts of a store", "GET", f"{HQ}/diversion-alerts?store_id={{store}}", stores(*HQ_READERS),
          ("S1", "S2")),
    Route("hq diversion alert", "GET", f"{HQ}/diversion-alerts/{{alert_id}}", stores(*HQ_READERS), ("S1", "S2"),
          make=_alert),
    Route("hq handle diversion alert", "POST", f"{HQ}/diversion-alerts/{{alert_id}}/status", stores(*ALERT_HANDLERS),
          ("S1", "S2"), body=lambda w, t, v: {"status": "investigating"}, make=_alert, consumes=True),
    Route("hq note on diversion alert", "POST", f"{HQ}/diversion-alerts/{{alert_id}}/notes", stores(*ALERT_HANDLERS),
          ("S1", "S2"), body=lambda w, t, v: {"text": "已联系门店"}, ok=201, make=_alert),
    Route("hq epcis", "GET", f"{HQ}/events/epcis?{_epcis_period()}", hq(*HQ_READERS), check=_epcis_in_scope),
    Route("hq incentive rules", "GET", f"{HQ}/incentive-rules", hq(*HQ_READERS)),
    Route("hq set incentive rules", "PUT", f"{HQ}/incentive-rules", hq("hq_admin"),
          body=lambda w, t, v: {"rules": [{"sku_id": w.ids["skus"]["MILK250"], "step": "sell", "points": 1}]}),
    Route("hq scan policy", "GET", f"{HQ}/scan-policy", hq(*HQ_READERS)),
    Route("hq set scan policy", "PUT", f"{HQ}/scan-policy", hq("hq_admin"),
          body=lambda w, t, v: {"diversion_policy": "alert"}),
    Route("hq consumer settings", "GET", f"{HQ}/consumer-settings", hq(*HQ_READERS)),
    Route("hq set consumer settings", "PUT", f"{HQ}/consumer-settings", hq("hq_admin"),
          body=lambda w, t, v: {"brand_name": "山泉", "service_contact": "客服热线 400-820-0000"}),
    # --- HQ analytics ------------------------------------------------------------------------------------------
    Route("hq sell-through", "GET", f"{HQ}/sell-through?group_by=store", hq(*HQ_READERS), check=_groups_in_scope),
    # Only a store's owner rates the distributor serving it (once a month, after an order made here for it).
    Route("mp rate the distributor", "POST", f"{MP}/ratings", stores(*OWNERS), ("S1", "S2"), ok=201,
          body=lambda w, t, v: {"request_id": f"m-{next(_n)}", "score": 4, "store_id": w.ids["stores"][t]},
          make=order_in("awaiting_payment")),
    # --- the partner's workspace over the full demo (orders, scans, history) ----------------------------------------
    Route("mp workspace sell-through", "GET", f"{MP}/sell-through?group_by=store", hq(*ACTORS),
          check=_workspace_sales_in_scope),
    Route("mp workspace sell-through by SKU", "GET", f"{MP}/sell-through?group_by=sku", hq(*ACTORS)),
    Route("mp workspace stores (full demo)", "GET", f"{MP}/stores?page_size=200",
          hq(*matrix.CHANNEL_READERS), check=_workspace_stores_in_scope),
    Route("hq sell-through by distributor", "GET", f"{HQ}/sell-through?group_by=distributor", hq(*HQ_READERS),
          check=_distributors_in_scope),
    Route("hq store stock", "GET", f"{HQ}/store-stock", hq(*HQ_READERS), check=_items_in_scope("store_id")),
    Route("hq sell-in", "GET", f"{HQ}/sell-in?group_by=store", hq(*HQ_READERS), check=_groups_in_scope),
    Route("hq slow stores", "GET", f"{HQ}/slow-stores", hq(*HQ_READERS), check=_items_in_scope("store_id")),
    Route("hq distributor ranking", "GET", f"{HQ}/distributor-ranking", hq(*HQ_READERS),
          check=_distributors_in_scope),
    Route("hq overview", "GET", f"{HQ}/overview", hq(*HQ_READERS), check=_provinces_in_scope),
    Route("hq production suggestions", "GET", f"{HQ}/production-suggestions", hq(*HQ_READERS)),
    Route("hq new plan", "POST", f"{HQ}/allocation-plans", hq("hq_admin"), ok=201,
          body=lambda w, t, v: {"target_cover_days": 1}),
    Route("hq plans", "GET", f"{HQ}/allocation-plans", hq(*HQ_READERS)),
    Route("hq plan", "GET", f"{HQ}/allocation-plans/{{plan_id}}", hq(*HQ_READERS), make=_plan),
    Route("hq edit plan line", "PATCH", f"{HQ}/allocation-plans/{{plan_id}}/lines/{{line_id}}", hq("hq_admin"),
          body=lambda w, t, v: {"quantity": 0}, make=_plan),
    Route("hq approve plan", "POST", f"{HQ}/allocation-plans/{{plan_id}}/approve", hq("hq_admin"), make=_plan,
          consumes=True),
    Route("hq transfers", "GET", f"{HQ}/transfers", hq(*HQ_READERS)),
    Route("hq receive transfer", "POST", f"{HQ}/transfers/{{transfer_id}}/receive",
          lambda actor, target: actor in ("hq_admin", "warehouse") or (actor, target) == ("wh_sz", "WH-SZ"),
          ("WH-HZ", "WH-SZ"), make=_transfer, consumes=True),
]


@pytest.fixture(scope="module")
def world(app):
    """The full demo, seeded once for the module, plus a Zhejiang analyst and a diversion alert of S1 and of S2."""
    from app.demo.seed import seed
    from app.scans.models import DiversionAlert

    with app.app_context():
        clear_tables()
        seed()
        warehouses = dict(db.session.execute(sa.select(Warehouse.code, Warehouse.id)).all())
        with transaction():
            create_hq_user(username="analyst_zj", password="admin", role="hq_analyst", region_code="330000")
            create_hq_user(username="warehouse_sz", password="admin", role="warehouse_operator",
                           warehouse_id=warehouses["WH-SZ"])
            # Plenty of biscuits in the sub-warehouses: every S1/S5 order is allocated from Hangzhou, S2's from
            # Shenzhen, however many orders the specs before have taken.
            for code in ("WH-HZ", "WH-SZ"):
                move_stock(location_id=db.session.get(Warehouse, warehouses[code]).location_id,
                           sku_id=db.session.scalar(sa.select(Sku.id).where(Sku.code == "BISC")), on_hand=100_000,
                           kind="seed", reason="矩阵")
        ids = {
            "stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
            "locations": dict(db.session.execute(sa.select(Store.code, Store.location_id)).all()),
            "partners": dict(db.session.execute(sa.select(Partner.code, Partner.id)).all()),
            "skus": dict(db.session.execute(sa.select(Sku.code, Sku.id)).all()),
            "gtins": dict(db.session.execute(sa.select(Sku.code, Sku.gtin)).all()),
            "warehouses": dict(db.session.execute(sa.select(Warehouse.code, Warehouse.id)).all()),
            "users": {"admin": db.session.scalar(sa.select(User.id).where(User.username == "admin"))},
        }
        ids["codes"] = {s: db.session.scalar(sa.select(Code.serial).where(
            Code.store_id == ids["stores"][s], Code.kind == "unit").order_by(Code.id)) for s in ("S1", "S2")}
        ids["codes"]["WH"] = db.session.scalar(sa.select(Code.serial).where(
            Code.state == "in_warehouse", Code.kind == "unit", Code.destination_store_id.is_(None)).order_by(Code.id))
        assert db.session.scalar(sa.select(sa.func.count(CodeBatch.id)))
        with transaction():
            for actual, expected in (("S1", "S2"), ("S2", "S6")):
                code = db.session.scalar(sa.select(Code).where(Code.serial == ids["codes"][actual]))
                db.session.add(DiversionAlert(
                    code_id=code.id, sku_id=code.sku_id, source="sell", expected_store_id=ids["stores"][expected],
                    actual_store_id=ids["stores"][actual], policy="alert"))
        db.session.remove()
    client = app.test_client()
    headers = {name: (mp_login(client, who) if kind == "mp" else hq_login(client, who))
               for name, (kind, who) in ACTORS.items()}
    with app.app_context():
        principals = {name: read_token(h["Authorization"][7:]) for name, h in headers.items()}
    yield World(app, client, ids, headers, principals)
    with app.app_context():
        clear_tables()


def _path(route: Route, w: World, target: str, values: dict) -> str:
    return route.path.format(store=w.ids["stores"].get(target), partner=w.ids["partners"].get(target), **values)


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.name)
def test_object_scope_matrix(world, route):
    w, wrong = world, []
    for target in route.targets:
        values = route.make(w, target) if route.make is not None else {}
        for actor in ACTORS:
            kwargs = {"headers": w.headers[actor]}
            if route.body is not None:
                kwargs["json"] = route.body(w, target, values)
            elif route.method != "GET":
                kwargs["json"] = {}
            resp = w.client.open(_path(route, w, target, values), method=route.method, **kwargs)
            allowed = route.allowed(actor, target)
            if resp.status_code not in ((route.ok,) if allowed else route.denied):
                code = (resp.get_json(silent=True) or {}).get("error", {}).get("code", "")
                wrong.append(f"{actor:>10} → {target:<3} expected {route.ok if allowed else route.denied}, got "
                             f"{resp.status_code} {code}")
            elif not allowed:
                assert set(resp.get_json()["error"]) == {"code", "message", "details"}
            elif route.check is not None:
                try:
                    route.check(w, actor, target, resp.get_json())
                except AssertionError as exc:
                    wrong.append(f"{actor:>10} → {target:<3} answer out of scope: {str(exc)[:300]}")
            if allowed and route.consumes and route.make is not None:
                values = route.make(w, target)
    assert not wrong, f"{route.method} {route.path}:\n" + "\n".join(wrong)


# --- the console's write routes: each HQ actor gets there exactly what the HQ API gives it ----------------------

# Console route → the HQ API route (by name, in OBJECT_ROUTES) doing the same write. Logging in and out are the
# caller themself. The console admits HQ users only: the mini-program actors have no console login.
CONSOLE_WRITES = {
    ("/hq/plans", "hq new plan"): lambda w, t, v: {"target_cover_days": "1"},
    ("/hq/plans/{plan_id}/lines/{line_id}", "hq edit plan line"): lambda w, t, v: {"quantity": "0"},
    ("/hq/plans/{plan_id}/approve", "hq approve plan"): lambda w, t, v: {},
    ("/hq/transfers/{transfer_id}/receive", "hq receive transfer"): lambda w, t, v: {},
    ("/hq/consumer-orders/{consumer_order_id}/route", "hq route consumer order"):
        lambda w, t, v: {"partner_id": str(w.ids["partners"]["D2"]), "reason": "矩阵"},
    ("/hq/consumer-orders/{consumer_order_id}/ship", "hq ship consumer order"): lambda w, t, v: {},
    ("/hq/consumer-orders/{consumer_order_id}/cancel", "hq cancel consumer order"): lambda w, t, v: {"reason": "矩阵"},
    ("/hq/code-batches", "hq new code batch"): lambda w, t, v: {"sku_id": str(w.ids["skus"]["MILK250"]),
                                                                "quantity": "2"},
    ("/hq/code-batches/{batch_id}/put-away", "hq put away"):
        lambda w, t, v: {"warehouse_id": str(w.ids["warehouses"]["WH-CENTRAL"])},
}
# Console writes that answer a refusal on their own page (the message beside the field; 403 for out of scope)
# rather than by a flash and a redirect: console route → (HQ API route by name, the form).
CONSOLE_FORMS = {
    "/hq/alerts/{alert_id}/status": ("hq handle diversion alert", {"status": "investigating", "note": ""}),
    "/hq/alerts/{alert_id}/notes": ("hq note on diversion alert", {"text": "已联系门店"}),
}
CONSOLE_ACTORS = tuple(name for name, (kind, _who) in ACTORS.items() if kind == "hq")


def _console(w: World, actor: str):
    """A console session (its own cookie) of the actor, and its CSRF token."""
    client = w.app.test_client()
    username = ACTORS[actor][1]
    client.get("/hq/login")
    with client.session_transaction() as s:
        csrf = s["csrf"]
    resp = client.post("/hq/login", data={"username": username, "password": "admin", "csrf": csrf})
    assert resp.status_code == 302, (actor, resp.status_code)
    with client.session_transaction() as s:
        csrf = s["csrf"]
    return client, csrf


def _errors_flashed(client) -> list[str]:
    """The error messages the last console write left for the next page (and take them away)."""
    with client.session_transaction() as s:
        flashes = s.pop("_flashes", [])
    return [message for category, message in flashes if category == "error"]


@pytest.mark.parametrize("path", [path for path, _ in CONSOLE_WRITES], ids=lambda p: p)
def test_console_writes_follow_the_api_scope(world, path):
    w, wrong = world, []
    api_name = next(name for p, name in CONSOLE_WRITES if p == path)
    body = CONSOLE_WRITES[(path, api_name)]
    api = next(r for r in OBJECT_ROUTES if r.name == api_name)
    sessions = {actor: _console(w, actor) for actor in CONSOLE_ACTORS}
    for target in api.targets:
        values = api.make(w, target) if api.make is not None else {}
        for actor in CONSOLE_ACTORS:
            client, csrf = sessions[actor]
            resp = client.post(path.format(**values), data={**body(w, target, values), "csrf": csrf})
            errors = _errors_flashed(client)
            allowed = api.allowed(actor, target)
            # A console write is done (a redirect, no error) or refused: by a flashed error and a redirect, or by
            # the form's page again with the message beside the field and a 4xx status (the code pages).
            done = resp.status_code == 302 and not errors
            refused = (resp.status_code == 302 and bool(errors)) or resp.status_code in (403, 404, 409, 422)
            if done != allowed or not (done or refused):
                wrong.append(f"{actor:>10} → {target:<5} the API {'allows' if allowed else 'refuses'}, the console "
                             f"answered {resp.status_code} {errors}")
            if allowed and api.consumes and api.make is not None:
                values = api.make(w, target)
    assert not wrong, f"POST {path}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", list(CONSOLE_FORMS), ids=lambda p: p)
def test_console_forms_follow_the_api_scope(world, path):
    w, wrong = world, []
    api_name, form = CONSOLE_FORMS[path]
    api = next(r for r in OBJECT_ROUTES if r.name == api_name)
    sessions = {actor: _console(w, actor) for actor in CONSOLE_ACTORS}
    for target in api.targets:
        values = api.make(w, target)
        for actor in CONSOLE_ACTORS:
            client, csrf = sessions[actor]
            resp = client.post(path.format(**values), data={**form, "csrf": csrf})
            allowed = api.allowed(actor, target)
            if resp.status_code != (302 if allowed else 403):
                wrong.append(f"{actor:>10} → {target:<5} the API {'allows' if allowed else 'refuses'}, the console "
                             f"answered {resp.status_code}")
            if allowed and api.consumes:
                values = api.make(w, target)
    assert not wrong, f"POST {path}:\n" + "\n".join(wrong)


# --- the console's reads of one object: the same answer as the HQ API route they show -------------------------

# Console page → the HQ API route (by name, in OBJECT_ROUTES) reading the same object; 200 where the API allows.
CONSOLE_READS = {
    ("/hq/codes/trace?code={code}", "hq code trace"),
    ("/hq/code-batches/{batch_id}", "hq code batch"),
}


@pytest.mark.parametrize(("path", "api_name"), sorted(CONSOLE_READS), ids=lambda p: p)
def test_console_reads_follow_the_api_scope(world, path, api_name):
    w, wrong = world, []
    api = next(r for r in OBJECT_ROUTES if r.name == api_name)
    sessions = {actor: _console(w, actor) for actor in CONSOLE_ACTORS}
    for target in api.targets:
        values = api.make(w, target) if api.make is not None else {}
        for actor in CONSOLE_ACTORS:
            client, _csrf = sessions[actor]
            resp = client.get(path.format(**values))
            allowed = api.allowed(actor, target)
            if (resp.status_code == 200) != allowed or resp.status_code not in (200, 403):
                wrong.append(f"{actor:>10} → {target:<5} the API {'allows' if allowed else 'refuses'}, the console "
                             f"answered {resp.status_code}")
    assert not wrong, f"GET {path}:\n" + "\n".join(wrong)
