"""Every role against every object route: allowed inside its scope, 403 outside.

To add a route, append a `Route` to ROUTES: its path (with `{store}`, `{partner}`, `{invite}`, `{sku}` filled from
the target), the targets to try, and `allowed(actor, target)`. Helpers below express the usual rules:
`stores(...)` for store-owned objects, `partners(...)` for partner-owned ones, `hq(...)` for HQ-only routes.
Routes about orders, credit, scans, stock, codes and analytics need the full demo and objects made per target: they
are in `test_scope_matrix_objects.py` (OBJECT_ROUTES). The guard at the end covers both tables.
The foundation's demo is seeded once for this module; a spec that writes makes its own objects.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from app.accounts.services import create_hq_user
from app.catalog.gtin import make_gtin
from app.catalog.models import PriceTier, Sku
from app.channel.models import Partner, Store
from app.core.tx import transaction
from app.extensions import db
from tests.conftest import hq_login, mp_login
from tests.helpers import clear_tables

# Who each actor is (mini-program openid or HQ username) ...
ACTORS = {
    "owner_s1": ("mp", "demo_store_owner"),
    "clerk_s1": ("mp", "demo_store_clerk"),
    "owner_s2": ("mp", "demo_store_owner_2"),
    "staff_d1": ("mp", "demo_distributor"),
    "staff_d2": ("mp", "demo_distributor_2"),
    "staff_a1": ("mp", "demo_agent"),
    "hq_admin": ("hq", "admin"),
    "hq_analyst": ("hq", "analyst"),
    "warehouse": ("hq", "warehouse"),
    "analyst_zj": ("hq", "analyst_zj"),  # an HQ analyst limited to Zhejiang (330000); made by the fixture
}
HQ_STAFF = {"hq_admin", "hq_analyst", "warehouse", "analyst_zj"}
ALL_STORES = {f"S{i}" for i in range(1, 11)}
ALL_PARTNERS = {"HQ", "A1", "A2", "D1", "D2", "D3", "D4", "D5"}

# ... and what lies in their scope (the demo: D1 serves S1 S3 S4; D3 (S5) is also under A1; D2 serves S2 S6).
STORE_SCOPE = {
    "owner_s1": {"S1"}, "clerk_s1": {"S1"}, "owner_s2": {"S2"},
    "staff_d1": {"S1", "S3", "S4"}, "staff_d2": {"S2", "S6"}, "staff_a1": {"S1", "S3", "S4", "S5"},
    "hq_admin": ALL_STORES, "hq_analyst": ALL_STORES, "warehouse": ALL_STORES,
    "analyst_zj": {"S1", "S3", "S4", "S5"},
}
PARTNER_SCOPE = {
    "staff_d1": {"D1"}, "staff_d2": {"D2"}, "staff_a1": {"A1", "D1", "D3"},
    "hq_admin": ALL_PARTNERS, "hq_analyst": ALL_PARTNERS,
}


def stores(*actors: str) -> Callable[[str, str], bool]:
    """Allowed for these actors on the stores in their scope."""
    return lambda actor, target: actor in actors and target in STORE_SCOPE.get(actor, set())


def partners(*actors: str) -> Callable[[str, str], bool]:
    return lambda actor, target: actor in actors and target in PARTNER_SCOPE.get(actor, set())


def hq(*actors: str) -> Callable[[str, str], bool]:
    return lambda actor, target: actor in actors


STORE_READERS = ("owner_s1", "clerk_s1", "owner_s2", "staff_d1", "staff_d2", "staff_a1", "hq_admin", "hq_analyst",
                 "analyst_zj")
INVITERS = ("owner_s1", "owner_s2", "staff_d1", "staff_d2", "staff_a1", "hq_admin")
STORE_INVITERS = ("staff_d1", "staff_d2", "staff_a1", "hq_admin")  # who may invite a store's owner
CHANNEL_READERS = ("staff_d1", "staff_d2", "staff_a1", "hq_admin", "hq_analyst", "analyst_zj")
_counter = itertools.count()


@dataclass
class Route:
    name: str
    method: str
    path: str
    allowed: Callable[[str, str], bool]
    targets: tuple[str, ...] = ("-",)
    body: Callable[[dict, str], Any] | None = None
    ok: int = 200
    # Optional check of an allowed answer (e.g. a list shows only what is in scope).
    check: Callable[[str, Any], None] | None = None
    # Optional: make the objects the route needs (client, ids, headers by actor) and add their ids to `ids`.
    setup: Callable[[Any, dict, dict], None] | None = None
    # Optional: more path placeholders from (ids, target), e.g. {"order": ids["orders"][target]}.
    fill: Callable[[dict, str], dict] | None = None


# The database is shared by the module's specs, so lists may also hold what "create store" and "create partner"
# made; the checks look at the demo's objects.
def _visible_stores(actor: str, body: Any) -> None:
    assert {s["code"] for s in body["items"]} & ALL_STORES == STORE_SCOPE[actor] & ALL_STORES, actor


def _visible_partners(actor: str, body: Any) -> None:
    assert {p["code"] for p in body["items"]} & ALL_PARTNERS == PARTNER_SCOPE.get(actor, set()), actor


def _visible_targets(actor: str, body: Any) -> None:
    assert {t["partner_code"] for t in body["items"]} & ALL_PARTNERS <= PARTNER_SCOPE.get(actor, set()), actor


def _summary_of_target(actor: str, body: Any) -> None:
    assert body["code"] in STORE_SCOPE[actor] and {"skus", "recent_orders", "recent_scans"} <= set(body), actor


_SCHEME = {"weights": {"attainment": 50, "rating": 30, "training": 20},
           "tiers": [{"name": "铜牌", "min_score": 0, "rebate_bp": 50},
                     {"name": "金牌", "min_score": 80, "rebate_bp": 200}],
           "base": "sell_in"}
_closing = itertools.count(1)


def _scheme_for_close(client, ids: dict, headers: dict) -> None:
    """A fresh past month with a scheme, for the close spec to close."""
    n = next(_closing)
    ids["close_period"] = f"{2010 + n // 12:04d}-{n % 12 + 1:02d}"
    resp = client.put("/api/hq/v1/assessment-scheme", json={"period": ids["close_period"], **_SCHEME},
                      headers=headers["hq_admin"])
    assert resp.status_code == 200, resp.get_json()


def _closed_month(client, ids: dict, headers: dict) -> None:
    """A fresh past month, closed, for the recompute and statement specs."""
    _scheme_for_close(client, ids, headers)
    resp = client.post(f"/api/hq/v1/periods/{ids['close_period']}/close", headers=headers["hq_admin"])
    assert resp.status_code == 201, resp.get_json()


def _fresh_invites(client, ids: dict, headers: dict) -> None:
    """Invites of S1, S2 and S5 only for the revoke spec, so the other specs' invites stay open."""
    ids["revocable"] = {code: client.post("/api/hq/v1/invites", json={
        "role": "store_clerk", "store_id": ids["stores"][code]}, headers=headers["hq_admin"]).get_json()["id"]
        for code in ("S1", "S2", "S5")}


def _fresh_assignment(client, ids: dict, headers: dict) -> None:
    """A shared assignment of Ningbo to D3 (its own industry) for the end spec to end."""
    resp = client.post("/api/hq/v1/territory-assignments", json={
        "partner_id": ids["partners"]["D3"], "region_code": "330200", "kind": "shared",
        "industry": f"m{next(_counter)}"}, headers=headers["hq_admin"])
    assert resp.status_code == 201, resp.get_json()
    ids["assignment"] = resp.get_json()["id"]


def _visible_assignments(actor: str, body: Any) -> None:
    regions = {i["region_code"] for i in body["items"]}
    if actor == "analyst_zj":
        assert regions and all(r.startswith("33") for r in regions), regions
    elif actor == "warehouse":
        assert not regions  # a warehouse operator holds no HQ region role
    else:
        assert {"330100", "440300", "510100"} <= regions, regions


def _shop() -> dict:
    n = next(_counter)
    return {"request_id": f"matrix-{n}", "name": f"矩阵报备店{n}", "phone": f"1370000{n:04d}",
            "region_code": "330203", "industry": "convenience"}  # Ningbo: nobody holds it exclusively


def _template(client, ids: dict, headers: dict) -> None:
    """One template that splits a year evenly but for December (a fresh name: the module shares its database)."""
    resp = client.post("/api/hq/v1/target-templates", headers=headers["hq_admin"],
                       json={"name": f"矩阵模板{next(_counter)}", "shares_bp": [800] * 11 + [1200]})
    assert resp.status_code == 201, resp.get_json()
    ids["template"] = resp.get_json()["id"]


def _registrations(client, ids: dict, headers: dict) -> None:
    """A factory of fresh registrations held by D1, D2 or A1 (each by its own staff), so a spec that moves one
    (release, reassign) moves its own; extensions are not the limit here."""
    client.put("/api/hq/v1/registration-policy", json={"max_extensions": 10}, headers=headers["hq_admin"])
    by = {"D1": ("staff_d1", "330106"), "D2": ("staff_d2", "440305"), "A1": ("staff_a1", "330203")}

    def new(target: str) -> int:
        actor, region = by[target]
        resp = client.post("/api/mp/v1/registrations", json={**_shop(), "region_code": region},
                           headers=headers[actor])
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["id"]

    ids["new_registration"] = new
    ids["registrations"] = {target: new(target) for target in by}


def _visible_registrations(actor: str, body) -> None:
    partners = {i["partner_name"] for i in body["items"]}
    allowed = {"staff_d1": {"杭州西湖分销"}, "staff_d2": {"深圳南山分销"}}.get(actor)
    if allowed is not None:
        assert partners <= allowed, (actor, partners)


_COURSE_TITLE = "矩阵课程"


def _course(client, ids: dict, headers: dict) -> None:
    """One course for distributor staff in Hangzhou (so D1's staff only), with one document and one question;
    D1's staff has opened the document, so the quiz is open to them."""
    if "course" in ids:
        return
    resp = client.post("/api/hq/v1/courses", json={
        "title": _COURSE_TITLE, "audience_roles": ["distributor_staff"], "audience_regions": ["330100"],
        "lessons": [{"kind": "document", "title": "手册", "url": "https://example.com/m.pdf"}],
        "quiz": [{"text": "题", "kind": "single", "options": [{"text": "对", "correct": True}, {"text": "错"}]}],
        "pass_mark": 100, "max_attempts": 50}, headers=headers["hq_admin"])
    assert resp.status_code == 201, resp.get_json()
    ids["course"], ids["lesson"] = resp.get_json()["id"], resp.get_json()["lessons"][0]["id"]
    resp = client.post(f"/api/mp/v1/courses/{ids['course']}/progress",
                       json={"lesson_id": ids["lesson"], "event": "opened"}, headers=headers["staff_d1"])
    assert resp.status_code == 200, resp.get_json()


def _visible_courses(actor: str, body: Any) -> None:
    titles = {c["title"] for c in body["items"]}
    assert (_COURSE_TITLE in titles) == (actor == "staff_d1"), (actor, titles)


LEARNERS = ("owner_s1", "clerk_s1", "owner_s2", "staff_d1", "staff_d2", "staff_a1")
_COURSE_FILL = {"setup": _course, "fill": lambda ids, t: {"course_id": ids["course"]}}

ROUTES: list[Route] = [
    Route("mp stock", "GET", "/api/mp/v1/stock?store_id={store}", stores(*STORE_READERS), ("S1", "S2", "S5")),
    Route("mp catalog", "GET", "/api/mp/v1/catalog?store_id={store}", stores(*STORE_READERS), ("S1", "S2", "S5")),
    Route("hq store", "GET", "/api/hq/v1/stores/{store}", stores(*STORE_READERS, "warehouse"), ("S1", "S2", "S5")),
    Route("hq store list", "GET", "/api/hq/v1/stores?page_size=200", hq(*STORE_READERS, "warehouse"),
          check=_visible_stores),
    Route("hq partner", "GET", "/api/hq/v1/partners/{partner}",
          partners("staff_d1", "staff_d2", "staff_a1", "hq_admin", "hq_analyst", "analyst_zj"),
          ("A1", "D1", "D2", "D3")),
    Route("hq partner list", "GET", "/api/hq/v1/partners?page_size=200",
          hq("staff_d1", "staff_d2", "staff_a1", "hq_admin", "hq_analyst", "analyst_zj"), check=_visible_partners),
    Route("invite a clerk", "POST", "/api/hq/v1/invites", stores(*INVITERS), ("S1", "S2", "S5"),
          body=lambda ids, t: {"role": "store_clerk", "store_id": ids["stores"][t]}, ok=201),
    Route("invite partner staff", "POST", "/api/hq/v1/invites",
          partners("staff_d1", "staff_d2", "staff_a1", "hq_admin"), ("D1", "D2", "D3"),
          body=lambda ids, t: {"role": "distributor_staff", "partner_id": ids["partners"][t]}, ok=201),
    Route("invite QR", "GET", "/api/hq/v1/invites/{invite}/qr.png", stores(*INVITERS), ("S1", "S2", "S5")),
    Route("revoke invite", "POST", "/api/hq/v1/invites/{invite}/revoke", stores(*INVITERS), ("S1", "S2", "S5"),
          setup=_fresh_invites, fill=lambda ids, t: {"invite": ids["revocable"][t]}),
    Route("store members", "GET", "/api/mp/v1/stores/{store}/members", stores(*INVITERS), ("S1", "S2", "S5")),
    # The partner's workspace: partner staff and HQ list their stores (store users and warehouse staff have no
    # list); a store's summary for whoever may read the store.
    Route("mp workspace stores", "GET", "/api/mp/v1/stores?page_size=200", hq(*CHANNEL_READERS),
          check=_visible_stores),
    Route("mp workspace stores by sales", "GET", "/api/mp/v1/stores?sort=sales&page_size=200",
          hq(*CHANNEL_READERS), check=_visible_stores),
    Route("mp store summary", "GET", "/api/mp/v1/stores/{store}", stores(*STORE_READERS, "warehouse"),
          ("S1", "S2", "S5"), check=_summary_of_target),
    Route("mp invite a clerk", "POST", "/api/mp/v1/stores/{store}/invites", stores(*INVITERS), ("S1", "S2", "S5"),
          body=lambda ids, t: {"role": "clerk"}, ok=201),
    Route("mp invite an owner", "POST", "/api/mp/v1/stores/{store}/invites", stores(*STORE_INVITERS),
          ("S1", "S2", "S5"), body=lambda ids, t: {"role": "owner"}, ok=201),
    Route("mp store invites", "GET", "/api/mp/v1/stores/{store}/invites", stores(*INVITERS), ("S1", "S2", "S5")),
    Route("mp invite QR", "GET", "/api/mp/v1/stores/{store}/invites/{invite}/qr.png", stores(*INVITERS),
          ("S1", "S2", "S5")),
    Route("mp revoke invite", "POST", "/api/mp/v1/stores/{store}/invites/{invite}/revoke", stores(*INVITERS),
          ("S1", "S2", "S5"), setup=_fresh_invites, fill=lambda ids, t: {"invite": ids["revocable"][t]}),
    # Store ratings: a distributor's staff read their subtree's summary (no writer in it); HQ reads every rating.
    Route("mp ratings summary", "GET", "/api/mp/v1/ratings/summary", hq(*CHANNEL_READERS)),
    Route("hq ratings", "GET", "/api/hq/v1/ratings", hq(*HQ_STAFF)),
    Route("hq me", "GET", "/api/hq/v1/me", hq(*HQ_STAFF)),
    Route("warehouses", "GET", "/api/hq/v1/warehouses", hq(*HQ_STAFF)),
    Route("sku list", "GET", "/api/hq/v1/skus", hq(*HQ_STAFF)),
    Route("sku", "GET", "/api/hq/v1/skus/{sku}", hq(*HQ_STAFF), ("MILK250",)),
    Route("products", "GET", "/api/hq/v1/products", hq(*HQ_STAFF)),
    Route("price tiers", "GET", "/api/hq/v1/price-tiers", hq(*HQ_STAFF)),
    Route("create store", "POST", "/api/hq/v1/stores", partners("hq_admin"), ("D1", "D2"), ok=201,
          body=lambda ids, t: {"code": f"M{next(_counter)}", "name": "矩阵店", "region_code": "330106",
                               "distributor_id": ids["partners"][t], "price_tier_id": ids["tiers"]["retail"]}),
    Route("create partner", "POST", "/api/hq/v1/partners", partners("hq_admin"), ("A1", "A2"), ok=201,
          body=lambda ids, t: {"code": f"M{next(_counter)}", "name": "矩阵分销", "kind": "distributor",
                               "parent_id": ids["partners"][t]}),
    Route("patch sku", "PATCH", "/api/hq/v1/skus/{sku}", hq("hq_admin"), ("MILK250",),
          body=lambda ids, t: {"name": "山泉纯牛奶"}),
    Route("create product", "POST", "/api/hq/v1/products", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"name": "矩阵产品"}),
    Route("patch product", "PATCH", "/api/hq/v1/products/{product_id}", hq("hq_admin"),
          fill=lambda ids, t: {"product_id": 1}, body=lambda ids, t: {"brand": "山泉"}),
    Route("create sku", "POST", "/api/hq/v1/skus", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"product_id": 1, "code": f"M{next(_counter)}", "name": "矩阵 SKU",
                               "gtin": make_gtin(f"69088{next(_counter):07d}")}),
    Route("create tier", "POST", "/api/hq/v1/price-tiers", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"code": f"m{next(_counter)}", "name": "矩阵价"}),
    Route("territory list", "GET", "/api/hq/v1/territory-assignments?page_size=200", hq(*HQ_STAFF),
          check=_visible_assignments),
    Route("assign territory", "POST", "/api/hq/v1/territory-assignments", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"partner_id": ids["partners"]["D5"], "region_code": "510104", "kind": "shared",
                               "industry": f"m{next(_counter)}"}),
    Route("end territory", "POST", "/api/hq/v1/territory-assignments/{assignment_id}/end", hq("hq_admin"),
          body=lambda ids, t: {"reason": "矩阵"}, setup=_fresh_assignment,
          fill=lambda ids, t: {"assignment_id": ids["assignment"]}),
    Route("create warehouse", "POST", "/api/hq/v1/warehouses", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"code": f"WH-M{next(_counter)}", "name": "矩阵仓", "kind": "central",
                               "city_code": "510100"}),
    # Registrations: partner staff register for their own partner; HQ reads them all (a region-bound analyst,
    # its region's) and alone reassigns and sets the rules.
    Route("register a shop", "POST", "/api/mp/v1/registrations", hq("staff_d1", "staff_d2", "staff_a1"), ok=201,
          body=lambda ids, t: _shop()),
    Route("my registrations", "GET", "/api/mp/v1/registrations?page_size=200",
          hq("staff_d1", "staff_d2", "staff_a1", "hq_admin"), check=_visible_registrations),
    Route("extend registration", "POST", "/api/mp/v1/registrations/{registration}/extend",
          partners("staff_d1", "staff_d2", "staff_a1", "hq_admin"), ("D1", "D2", "A1"), body=lambda ids, t: {},
          setup=_registrations, fill=lambda ids, t: {"registration": ids["registrations"][t]}),
    Route("release registration", "POST", "/api/mp/v1/registrations/{registration}/release",
          partners("staff_d1", "staff_d2", "staff_a1", "hq_admin"), ("D1", "D2", "A1"), body=lambda ids, t: {},
          setup=_registrations, fill=lambda ids, t: {"registration": ids["new_registration"](t)}),
    Route("hq registrations", "GET", "/api/hq/v1/registrations?page_size=200", hq(*HQ_STAFF)),
    Route("hq registration", "GET", "/api/hq/v1/registrations/{registration}",
          lambda actor, t: actor in ("hq_admin", "hq_analyst", "warehouse") or (actor == "analyst_zj"
                                                                               and t in ("D1", "A1")),
          ("D1", "D2", "A1"), setup=_registrations, fill=lambda ids, t: {"registration": ids["registrations"][t]}),
    Route("hq registration conflicts", "GET", "/api/hq/v1/registration-conflicts", hq(*HQ_STAFF)),
    # Targets: HQ sets them; partner staff read their subtree's (an agent's distributors too), HQ any partner's.
    Route("mp targets", "GET", "/api/mp/v1/targets?period=2026-12", hq(*CHANNEL_READERS), check=_visible_targets),
    Route("hq targets", "GET", "/api/hq/v1/targets?period=2026-12&partner_id={partner}",
          partners("hq_admin", "hq_analyst"), ("D1", "D2", "A1"), check=_visible_targets),
    Route("hq targets xlsx", "GET", "/api/hq/v1/targets?period=2026-12&format=xlsx", hq(*HQ_STAFF)),
    Route("set target", "POST", "/api/hq/v1/targets", partners("hq_admin"), ("D1", "D2", "A1"), ok=201,
          body=lambda ids, t: {"partner_id": ids["partners"][t], "period": "2026-12", "metric": "new_stores",
                               "value": next(_counter)}),
    Route("set yearly target", "POST", "/api/hq/v1/targets/yearly", partners("hq_admin"), ("D1", "D2", "A1"),
          ok=201, setup=_template,
          body=lambda ids, t: {"partner_id": ids["partners"][t], "year": 2027, "metric": "sell_through_units",
                               "value": next(_counter), "template_id": ids["template"]}),
    Route("sku groups", "GET", "/api/hq/v1/sku-groups", hq(*HQ_STAFF)),
    Route("create sku group", "POST", "/api/hq/v1/sku-groups", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"code": f"G{next(_counter)}", "name": "矩阵组",
                               "sku_ids": list(ids["skus"].values())[:1]}),
    Route("target templates", "GET", "/api/hq/v1/target-templates", hq(*HQ_STAFF)),
    Route("create target template", "POST", "/api/hq/v1/target-templates", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"name": f"矩阵{next(_counter)}", "shares_bp": [1000] * 10 + [0, 0]}),
    Route("reassign registration", "POST", "/api/hq/v1/registrations/{registration}/reassign", hq("hq_admin"),
          ("D1", "D2", "A1"), setup=_registrations,
          body=lambda ids, t: {"partner_id": ids["partners"]["D4"], "reason": "矩阵改派"},
          fill=lambda ids, t: {"registration": ids["new_registration"](t)}),
    Route("registration policy", "GET", "/api/hq/v1/registration-policy", hq(*HQ_STAFF)),
    Route("set registration policy", "PUT", "/api/hq/v1/registration-policy", hq("hq_admin"),
          body=lambda ids, t: {"max_extensions": 10}),
    # Training: learners (partner staff, store users) list the courses of their audience; a course, its progress
    # events and its quiz are for its audience only (here D1's staff); HQ admins write courses, HQ staff read
    # their progress.
    Route("mp courses", "GET", "/api/mp/v1/courses", hq(*LEARNERS), setup=_course, check=_visible_courses),
    Route("mp course", "GET", "/api/mp/v1/courses/{course_id}", hq("staff_d1"), **_COURSE_FILL),
    Route("mp course progress", "POST", "/api/mp/v1/courses/{course_id}/progress", hq("staff_d1"),
          body=lambda ids, t: {"lesson_id": ids["lesson"], "event": "opened"}, **_COURSE_FILL),
    Route("mp quiz attempt", "POST", "/api/mp/v1/courses/{course_id}/quiz-attempts", hq("staff_d1"), ok=201,
          body=lambda ids, t: {"answers": [{"question_id": 1, "option_ids": [2]}]}, **_COURSE_FILL),
    Route("hq create course", "POST", "/api/hq/v1/courses", hq("hq_admin"), ok=201,
          body=lambda ids, t: {"title": f"矩阵新课{next(_counter)}", "lessons": [
              {"kind": "document", "title": "d", "url": "https://example.com/d.pdf"}]}),
    Route("hq patch course", "PATCH", "/api/hq/v1/courses/{course_id}", hq("hq_admin"),
          body=lambda ids, t: {"description": f"改 {next(_counter)}"}, **_COURSE_FILL),
    Route("hq course progress", "GET", "/api/hq/v1/courses/{course_id}/progress", hq(*HQ_STAFF), **_COURSE_FILL),
    # Referral rewards: the mini-program's routes are for the consumer role only (no actor here holds it, so all are
    # refused: tests/referrals/ has the consumer's side); HQ staff read the policy and the ledger, the admin writes.
    Route("consumer verification", "POST", "/api/mp/v1/consumer-verifications", hq(),
          body=lambda ids, t: {"code": "x"}),
    Route("referral link", "POST", "/api/mp/v1/referral-links", hq(), ok=201),
    Route("referral bind", "POST", "/api/mp/v1/referrals/{link}/bind", hq(), fill=lambda ids, t: {"link": "x"}),
    Route("my referral rewards", "GET", "/api/mp/v1/referral-rewards", hq()),
    Route("referral policy", "GET", "/api/hq/v1/referral-policy", hq(*HQ_STAFF)),
    Route("set referral policy", "PUT", "/api/hq/v1/referral-policy", hq("hq_admin"),
          body=lambda ids, t: {"binding_days": 30}),
    Route("hq referral rewards", "GET", "/api/hq/v1/referral-rewards", hq(*HQ_STAFF)),
    # The admin gets past authorization to the balance check (nobody has a balance in the demo).
    Route("record referral payout", "POST", "/api/hq/v1/referral-payouts", hq("hq_admin"), ok=409,
          body=lambda ids, t: {"user_id": 1, "amount_fen": 100, "method": "offline", "reference": "m1"}),
    # Assessment (CHANNEL.md §8): HQ admins set schemes, close and recompute; HQ staff read; partner staff read
    # their own partner's assessment and rebates on the mini-program.
    Route("mp assessments", "GET", "/api/mp/v1/assessments?period=2024-03", hq(*CHANNEL_READERS)),
    Route("mp rebates", "GET", "/api/mp/v1/rebates?period=2024-03", hq(*CHANNEL_READERS)),
    Route("put assessment scheme", "PUT", "/api/hq/v1/assessment-scheme", hq("hq_admin"),
          body=lambda ids, t: {"period": "2030-01", **_SCHEME}),
    Route("assessment scheme", "GET", "/api/hq/v1/assessment-scheme?period={period}", hq(*HQ_STAFF),
          setup=_scheme_for_close, fill=lambda ids, t: {"period": ids["close_period"]}),
    Route("close period", "POST", "/api/hq/v1/periods/{period}/close", hq("hq_admin"), ok=201,
          setup=_scheme_for_close, fill=lambda ids, t: {"period": ids["close_period"]}),
    Route("recompute period", "POST", "/api/hq/v1/periods/{period}/recompute", hq("hq_admin"),
          setup=_closed_month, fill=lambda ids, t: {"period": ids["close_period"]},
          body=lambda ids, t: {"reason": "矩阵重算"}),
    Route("hq assessments", "GET", "/api/hq/v1/assessments?period=2024-03", hq(*HQ_STAFF)),
    Route("hq rebate statement", "GET", "/api/hq/v1/rebate-statements?period={period}&partner_id={partner}",
          partners("hq_admin", "hq_analyst"), ("D1", "D2", "A1"), setup=_closed_month,
          fill=lambda ids, t: {"period": ids["close_period"]}),
    Route("hq rebate statements xlsx", "GET", "/api/hq/v1/rebate-statements?period={period}&format=xlsx",
          hq(*HQ_STAFF), setup=_closed_month, fill=lambda ids, t: {"period": ids["close_period"]}),
]


@pytest.fixture(scope="module")
def world(app):
    """The foundation's demo, seeded once for the module: ids by demo code, one token per actor, and one invite per
    store (made by HQ). Specs that write make objects of their own (new codes), so no spec depends on another."""
    from app.demo.seed import seed

    client = app.test_client()
    with app.app_context():
        clear_tables()
        seed(extras=False)
        db.session.remove()
        ids = {
            "stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
            "partners": dict(db.session.execute(sa.select(Partner.code, Partner.id)).all()),
            "tiers": dict(db.session.execute(sa.select(PriceTier.code, PriceTier.id)).all()),
            "skus": dict(db.session.execute(sa.select(Sku.code, Sku.id)).all()),
        }
    with app.app_context(), transaction():
        create_hq_user(username="analyst_zj", password="admin", role="hq_analyst", region_code="330000")
    headers = {name: (mp_login(client, who) if kind == "mp" else hq_login(client, who))
               for name, (kind, who) in ACTORS.items()}
    ids["invites"] = {}
    for code in ("S1", "S2", "S5"):
        resp = client.post("/api/hq/v1/invites", json={"role": "store_clerk", "store_id": ids["stores"][code]},
                           headers=headers["hq_admin"])
        ids["invites"][code] = resp.get_json()["id"]
    yield ids, headers
    with app.app_context():
        clear_tables()


def _fill(route: Route, ids: dict, target: str) -> str:
    values = {"store": ids["stores"].get(target), "partner": ids["partners"].get(target),
              "invite": ids["invites"].get(target), "sku": ids["skus"].get(target)}
    if route.fill is not None:
        values.update(route.fill(ids, target))
    return route.path.format(**values)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_scope_matrix(client, world, route):
    ids, headers = world
    if route.setup is not None:
        route.setup(client, ids, headers)
    wrong = []
    for actor, target in itertools.product(ACTORS, route.targets):
        kwargs = {"headers": headers[actor]}
        if route.body is not None:
            kwargs["json"] = route.body(ids, target)
        resp = client.open(_fill(route, ids, target), method=route.method, **kwargs)
        expected = route.ok if route.allowed(actor, target) else 403
        if resp.status_code != expected:
            wrong.append(f"{actor:>10} → {target:<7} expected {expected}, got {resp.status_code} "
                         f"{(resp.get_json(silent=True) or {}).get('error', {}).get('code', '')}")
        elif expected == 403:
            assert set(resp.get_json()["error"]) == {"code", "message", "details"}
        elif route.check is not None:
            route.check(actor, resp.get_json())
    assert not wrong, f"{route.method} {route.path}:\n" + "\n".join(wrong)


# Blueprints whose every route must appear in ROUTES, in OBJECT_ROUTES (test_scope_matrix_objects.py: orders,
# credit, scans, stock, incentives, codes, analytics) or in NOT_OBJECT_ROUTES.
CHECKED_BLUEPRINTS = {"mp_sessions", "mp_invites", "mp_catalog", "mp_stock", "mp_orders", "mp_scans", "mp_incentives",
                      "hq_sessions", "hq_catalog", "hq_channel", "hq_territories", "hq_warehouses", "hq_orders",
                      "hq_codes", "hq_analytics", "public_verify", "wechat_pay_callbacks", "api-docs", "api_docs",
                      "mp_registrations", "hq_registrations", "mp_workspace", "mp_ratings", "mp_training",
                      "hq_training", "mp_referrals", "hq_referrals", "hq_assessment", "mp_assessment"}
NOT_OBJECT_ROUTES = {
    ("POST", "/api/mp/v1/sessions"), ("POST", "/api/hq/v1/sessions"),  # login
    ("POST", "/api/mp/v1/consumer-sessions"),                          # a shopper's login
    ("DELETE", "/api/mp/v1/sessions"), ("DELETE", "/api/hq/v1/sessions"),  # logout: the caller themself
    ("GET", "/api/mp/v1/me"), ("POST", "/api/mp/v1/me/phone"),        # the caller themself
    ("POST", "/api/mp/v1/invites/{token}/redeem"),                     # anyone holding the invite
    ("GET", "/api/hq/v1/regions"),                                     # public reference data
    ("GET", "/api/public/v1/verify"),                                  # consumers, no login
    ("POST", "/api/wechat/pay/notify"), ("POST", "/api/wechat/pay/refund-notify"),  # signed by WeChat Pay
    ("GET", "/api/openapi.json"), ("GET", "/api/docs"),                # the contract itself
}


def _registered(app) -> set[tuple[str, str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        path = (path.replace("{store_id}", "{store}").replace("{partner_id}", "{partner}")
                .replace("{invite_id}", "{invite}").replace("{sku_id}", "{sku}")
                .replace("{registration_id}", "{registration}"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((rule.endpoint.split(".")[0], method, path))
    return out


def test_every_object_route_is_in_the_matrix(app):
    """A new route in a checked blueprint must be added to ROUTES (or to NOT_OBJECT_ROUTES with the reason)."""
    from tests.api.test_scope_matrix_objects import OBJECT_ROUTES

    covered = {(r.method, r.path.split("?")[0]) for r in [*ROUTES, *OBJECT_ROUTES]} | NOT_OBJECT_ROUTES
    checked = {(m, p) for bp, m, p in _registered(app) if bp in CHECKED_BLUEPRINTS}
    missing = checked - covered
    assert not missing, f"add these routes to ROUTES: {sorted(missing)}"
