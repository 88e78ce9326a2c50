"""The order and credit routes through the project's scope matrix (every actor × S1, S2, S5)."""

from __future__ import annotations

import itertools

import pytest

from tests.api.test_scope_matrix import (  # noqa: F401  (world is a fixture)
    ACTORS,
    STORE_READERS,
    Route,
    _fill,
    stores,
    world,
)

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
def test_order_routes_scope(client, world, route):  # noqa: F811
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


def test_order_object_routes_by_store(client, world):  # noqa: F811
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
