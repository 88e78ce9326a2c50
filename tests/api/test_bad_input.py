"""Bad input on every write route: the error shape with the right status, and nothing changed in the database.

To cover a new write route, append a `Write` to WRITES with a body that would succeed; the checks below derive
the wrong-typed, missing-field, unknown-field, malformed and oversized variants from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from app.catalog.gtin import make_gtin
from app.catalog.models import PriceTier, Product, Sku
from app.channel.models import Partner, Store
from app.extensions import db
from tests.conftest import hq_login, mp_login
from tests.helpers import assert_db_unchanged, assert_error


@dataclass
class Write:
    name: str
    method: str
    path: str                                   # may use {sku}, {invite}
    actor: str                                  # "admin" | "owner" | "distributor" | "newcomer"
    body: Callable[[dict], dict]                # a body that would succeed
    # (description, change to the body, status, code): unknown ids, other stores'/partners' ids, ...
    bad: list[tuple[str, dict, int, str | None]] = field(default_factory=list)
    required: bool = True                       # whether `{}` must be refused


_SCHEME = {"period": "2031-01", "weights": {"attainment": 50, "rating": 30, "training": 20},
           "tiers": [{"name": "铜牌", "min_score": 0, "rebate_bp": 50},
                     {"name": "金牌", "min_score": 80, "rebate_bp": 200}], "base": "sell_in"}

WRITES: list[Write] = [
    Write("put assessment scheme", "PUT", "/api/hq/v1/assessment-scheme", "admin", lambda ids: dict(_SCHEME),
          bad=[("tiers with a gap", {"tiers": [{"name": "a", "min_score": 5, "rebate_bp": 1}]}, 422, "tiers_gap"),
               ("weights over 100", {"weights": {"attainment": 90, "rating": 30, "training": 0}}, 422,
                "weights_not_100")]),
    Write("mp login", "POST", "/api/mp/v1/sessions", "anonymous", lambda ids: {"code": "demo:someone"},
          bad=[("invalid code", {"code": "nope"}, 400, "wechat_invalid_code")]),
    Write("mp phone", "POST", "/api/mp/v1/me/phone", "owner", lambda ids: {"code": "demo:13800000000"},
          bad=[("invalid code", {"code": "demo:1"}, 400, "wechat_invalid_code")]),
    Write("hq login", "POST", "/api/hq/v1/sessions", "anonymous", lambda ids: {"username": "x", "password": "y"}),
    Write("product", "POST", "/api/hq/v1/products", "admin", lambda ids: {"name": "新品", "brand": "山泉"}),
    Write("tier", "POST", "/api/hq/v1/price-tiers", "admin", lambda ids: {"code": "vip", "name": "VIP"},
          bad=[("taken code", {"code": "retail"}, 409, "price_tier_code_taken")]),
    Write("sku", "POST", "/api/hq/v1/skus", "admin",
          lambda ids: {"product_id": ids["product"], "code": "N1", "name": "新", "gtin": make_gtin("690555000001"),
                       "case_pack": 6, "serialized": False,
                       "prices": [{"price_tier_id": ids["tiers"]["retail"], "price_fen": 100}]},
          bad=[("unknown product", {"product_id": 999999}, 404, "product_not_found"),
               ("minimum not whole cases", {"min_order_quantity": 4}, 422, "min_order_not_whole_cases"),
               ("case named as the unit", {"unit": "箱", "case_unit": "箱"}, 422, "case_unit_same_as_unit"),
               ("unknown tier", {"prices": [{"price_tier_id": 999999, "price_fen": 1}]}, 404,
                "price_tier_not_found"),
               ("taken gtin", {"gtin": "@MILK250"}, 409, "sku_taken")]),
    Write("sku patch", "PATCH", "/api/hq/v1/skus/{sku}", "admin", lambda ids: {"name": "改名", "case_pack": 3},
          required=False,
          bad=[("unknown tier", {"prices": [{"price_tier_id": 999999, "price_fen": 1}]}, 404,
                "price_tier_not_found")]),
    Write("partner", "POST", "/api/hq/v1/partners", "admin",
          lambda ids: {"code": "D9", "name": "新分销", "kind": "distributor", "parent_id": ids["partners"]["A1"],
                       "territories": [{"region_code": "330300"}]},
          bad=[("unknown parent", {"parent_id": 999999}, 404, "partner_not_found"),
               ("unknown region", {"territories": [{"region_code": "990000"}]}, 422, "unknown_region")]),
    Write("store", "POST", "/api/hq/v1/stores", "admin",
          lambda ids: {"code": "S99", "name": "新店", "region_code": "330106",
                       "distributor_id": ids["partners"]["D1"], "price_tier_id": ids["tiers"]["retail"]},
          bad=[("unknown distributor", {"distributor_id": 999999}, 404, "distributor_not_found"),
               ("unknown tier", {"price_tier_id": 999999}, 404, "price_tier_not_found")]),
    Write("warehouse", "POST", "/api/hq/v1/warehouses", "admin",
          lambda ids: {"code": "WH-X", "name": "新仓", "kind": "sub", "city_code": "510100", "serves": ["510100"]},
          bad=[("served city", {"serves": ["330100"]}, 409, "city_already_served")]),
    Write("invite by distributor", "POST", "/api/hq/v1/invites", "distributor",
          lambda ids: {"role": "store_clerk", "store_id": ids["stores"]["S1"]},
          bad=[("unknown store", {"store_id": 999999}, 404, "store_not_found"),
               ("another distributor's store", {"store_id": "@S2"}, 403, "out_of_scope"),
               ("another partner", {"role": "distributor_staff", "store_id": None, "partner_id": "@D2"}, 403,
                "out_of_scope")]),
    Write("invite by owner", "POST", "/api/hq/v1/invites", "owner",
          lambda ids: {"role": "store_clerk", "store_id": ids["stores"]["S1"]},
          bad=[("another store", {"store_id": "@S2"}, 403, "out_of_scope")]),
    Write("revoke", "POST", "/api/hq/v1/invites/{invite}/revoke", "distributor", lambda ids: None, required=False),
    Write("redeem", "POST", "/api/mp/v1/invites/{token}/redeem", "newcomer", lambda ids: {}, required=False),
]


def _resolve(value: Any, ids: dict) -> Any:
    """'@S2' → S2's id, '@MILK250' → that SKU's GTIN, '@D2' → D2's id."""
    if isinstance(value, str) and value.startswith("@"):
        key = value[1:]
        return ids["stores"].get(key) or ids["partners"].get(key) or ids["gtins"][key]
    return value


@pytest.fixture()
def ctx(app, client, demo):
    with app.app_context():
        ids = {
            "stores": dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
            "partners": dict(db.session.execute(sa.select(Partner.code, Partner.id)).all()),
            "tiers": dict(db.session.execute(sa.select(PriceTier.code, PriceTier.id)).all()),
            "product": db.session.scalar(sa.select(Product.id).order_by(Product.id)),
            "sku": db.session.scalar(sa.select(Sku.id).order_by(Sku.id)),
            "gtins": dict(db.session.execute(sa.select(Sku.code, Sku.gtin)).all()),
        }
    headers = {"anonymous": {}, "owner": mp_login(client, "demo_store_owner"),
               "distributor": mp_login(client, "demo_distributor"), "admin": hq_login(client),
               "newcomer": mp_login(client, "newcomer")}
    invite = client.post("/api/hq/v1/invites", json={"role": "store_clerk", "store_id": ids["stores"]["S1"]},
                         headers=headers["admin"]).get_json()
    ids["invite"], ids["token"] = invite["id"], invite["token"]
    return ids, headers


def _send(client, write: Write, ids, headers, **kwargs):
    path = write.path.format(sku=ids["sku"], invite=ids["invite"], token=ids["token"])
    return client.open(path, method=write.method, headers={**headers[write.actor], **kwargs.pop("headers", {})},
                       **kwargs)


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "not-a-list"
    return [value]


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_bad_input_changes_nothing(app, client, ctx, write):
    ids, headers = ctx
    body = write.body(ids)
    cases: list[tuple[str, dict, int, str | None]] = []
    if body:
        cases += [(f"{key} wrong type", {"json": {**body, key: _wrong_type(value)}}, 422, "validation_failed")
                  for key, value in body.items()]
    if write.required:
        cases.append(("empty body", {"json": {}}, 422, "validation_failed"))
    cases += [
        ("unknown field", {"json": {**(body or {}), "is_admin": True}}, 422, "validation_failed"),
        ("list body", {"json": [body]}, 422, "validation_failed"),
        ("malformed", {"data": "{", "content_type": "application/json"}, 400, "malformed_json"),
        ("oversized", {"data": json.dumps({"x": "y" * app.config["MAX_CONTENT_LENGTH"]}),
                       "content_type": "application/json"}, 413, "payload_too_large"),
    ]
    for description, change, status, code in write.bad:
        resolved = {k: _resolve(v, ids) for k, v in change.items()}
        cases.append((description, {"json": {**body, **resolved}}, status, code))
    for description, kwargs, status, code in cases:
        with assert_db_unchanged("users", "skus", "sku_prices", "invites", "partners", "stores"):
            resp = _send(client, write, ids, headers, **kwargs)
            try:
                assert_error(resp, status, code)
            except AssertionError as exc:
                raise AssertionError(f"{write.name}: {description}: {exc}") from None


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_the_good_body_works(client, ctx, write):
    """The bodies above are valid, so the refusals are about what each case changed."""
    ids, headers = ctx
    body = write.body(ids)
    resp = _send(client, write, ids, headers, **({"json": body} if body is not None else {}))
    assert resp.status_code in (200, 201, 401), resp.get_json()  # hq login with an unknown user is a 401
