"""The order and credit routes through the project's scope matrix (every actor × S1, S2, S5)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from app.accounts.services import create_hq_user
from app.catalog.models import Sku
from app.channel.models import Store
from app.core.tx import transaction
from app.extensions import db
from tests.conftest import hq_login, mp_login

# The same actors and scopes as tests/api/test_scope_matrix.py, kept here so this file stands on its own.
ACTORS = {
    "owner_s1": ("mp", "demo_store_owner"), "clerk_s1": ("mp", "demo_store_clerk"),
    "owner_s2": ("mp", "demo_store_owner_2"), "staff_d1": ("mp", "demo_distributor"),
    "staff_d2": ("mp", "demo_distributor_2"), "staff_a1": ("mp", "demo_agent"), "hq_admin": ("hq", "admin"),
    "hq_analyst": ("hq", "analyst"), "warehouse": ("hq", "warehouse"), "analyst_zj": ("hq", "analyst_zj"),
}
ALL = {"S1", "S2", "S5"}
STORE_SCOPE = {
    "owner_s1": {"S1"}, "clerk_s1": {"S1"}, "owner_s2": {"S2"}, "staff_d1": {"S1"}, "staff_d2": {"S2"},
    "staff_a1": {"S1", "S5"}, "hq_admin": ALL, "hq_analyst": ALL, "warehouse": ALL, "analyst_zj": {"S1", "S5"},
}
STORE_READERS = ("owner_s1", "clerk_s1", "owner_s2", "staff_d1", "staff_d2", "staff_a1", "hq_admin", "hq_analyst",
                 "analyst_zj")


@dataclass
class Route:
    name: str
    method: str
    path: str
    allowed: Callable[[str, str], bool]
    targets: tuple[str, ...]
    body: Callable[[dict, str], Any] | None = None
    ok: int = 200


def stores(*actors: str) -> Callable[[str, str], bool]:
    return lambda actor, target: actor in actors and target in STORE_SCOPE.get(actor, set())


@pytest.fixture()
def world(app, client, demo):
    with app.app_context():
        ids = {"stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
               "skus": dict(db.session.execute(sa.select(Sku.code, Sku.id)).all())}
        with transaction():
            create_hq_user(username="analyst_zj", password="admin", role="hq_analyst", region_code="330000")
        db.session.remove()
    headers = {name: (mp_login(client, who) if kind == "mp" else hq_login(client, who))
               for name, (kind, who) in ACTORS.items()}
    return ids, headers


def _fill(path: str, ids: dict, target: str) -> str:
    return path.format(store=ids["stores"].get(target))


_n = itertools.count()
TARGETS = ("S1", "S2", "S5")


def _order_body(ids, target):
    return {"request_id": f"matrix-{next(_n)}", "store_id": ids["stores"][target],
            "lines": [{"sku_id": ids["skus"]["MILK250"], "quantity": 6}]}


ORDER_ROUTES = [
    Route("mp orders of a store", "GET", "/api/mp/v1/orders?store_id={store}", stores(*STORE_READERS, "warehouse"),
          TARGETS),
    Route("place an order", "POST", "/api/mp/v1/orders",
          stores("owner_s1", "owner_s2", "staff_d1", "staff_d2", "staff_a1", "hq_admin"), TARGETS, body=_order_body,
          ok=201),
    Route("hq orders of a store", "GET", "/api/hq/v1/orders?store_id={store}",
          stores("hq_admin", "hq_analyst", "analyst_zj", "warehouse"), TARGETS),
    Route("credit line", "GET", "/api/hq/v1/stores/{store}/credit",
          stores("hq_admin", "hq_analyst", "analyst_zj", "warehouse"), TARGETS),
    Route("set credit line", "PUT", "/api/hq/v1/stores/{store}/credit", stores("hq_admin"), TARGETS,
          body=lambda ids, t: {"limit_fen": 100_000}),
    # Nothing is owed, so the allowed caller gets the business refusal (409), everyone else 403.
    Route("credit repayment", "POST", "/api/hq/v1/stores/{store}/credit/repayments", stores("hq_admin"), TARGETS,
          body=lambda ids, t: {"amount_fen": 1}, ok=409),
]


@pytest.mark.parametrize("route", ORDER_ROUTES, ids=lambda r: r.name)
def test_order_routes_scope(client, world, route):
    ids, headers = world
    wrong = []
    for actor, target in itertools.product(ACTORS, route.targets):
        kwargs = {"headers": headers[actor]}
        if route.body is not None:
            kwargs["json"] = route.body(ids, target)
        resp = client.open(_fill(route.path, ids, target), method=route.method, **kwargs)
        expected = route.ok if route.allowed(actor, target) else 403
        if resp.status_code != expected:
            wrong.append(f"{actor:>10} → {target:<7} expected {expected}, got {resp.status_code} "
                         f"{(resp.get_json(silent=True) or {}).get('error', {}).get('code', '')}")
    assert not wrong, f"{route.method} {route.path}:\n" + "\n".join(wrong)


def test_order_object_routes_by_store(client, world):
    """An order of S1 (placed by its owner): who may read it, confirm it, cancel it, allocate it."""
    ids, headers = world
    order = client.post("/api/mp/v1/orders", json=_order_body(ids, "S1"), headers=headers["owner_s1"]).get_json()
    readers = {"owner_s1", "clerk_s1", "staff_d1", "staff_a1", "hq_admin", "hq_analyst", "warehouse", "analyst_zj"}
    for actor in ACTORS:
        resp = client.get(f"/api/mp/v1/orders/{order['id']}", headers=headers[actor])
        assert resp.status_code == (200 if actor in readers else 403), actor
    for actor in ("owner_s2", "clerk_s1", "staff_d2", "hq_analyst", "analyst_zj", "warehouse"):
        resp = client.post(f"/api/mp/v1/orders/{order['id']}/cancel", json={}, headers=headers[actor])
        assert resp.status_code == 403, actor
    for actor in ("owner_s1", "clerk_s1", "owner_s2", "staff_d1", "staff_d2", "hq_analyst"):
        resp = client.post(f"/api/hq/v1/orders/{order['id']}/allocate", json={}, headers=headers[actor])
        assert resp.status_code == 403, actor
