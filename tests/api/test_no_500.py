"""Inputs that once reached a 500: ids past BIGINT, deep JSON, year-1 dates, ill-typed tokens, English details.

Each answer is the contract's error shape (or, under /hq/, the console's own Chinese error page) with the status
that fits, and nothing is written.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeSerializer

from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.extensions import db
from tests.helpers import assert_db_unchanged, assert_error

BIGINT_MAX = 2**63 - 1
PAST_BIGINT = [2**63, 18446744073709551617, 99999999999999999999]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture()
def ids(app_ctx, demo):
    return {
        "S1": db.session.scalar(sa.select(Store.id).where(Store.code == "S1")),
        "D1": db.session.scalar(sa.select(Partner.id).where(Partner.code == "D1")),
        "sku": db.session.scalar(sa.select(Sku.id).order_by(Sku.id)),
    }


# --- ids past the database's BIGINT range -------------------------------------------------------------------

@pytest.mark.parametrize("big", PAST_BIGINT)
def test_path_ids_past_bigint_are_not_found(client, owner, admin, big):
    assert_error(client.get(f"/api/mp/v1/orders/{big}", headers=owner), 404, "not_found")
    assert_error(client.get(f"/api/hq/v1/partners/{big}", headers=admin), 404, "not_found")
    assert_error(client.get(f"/api/hq/v1/stores/{big}", headers=admin), 404, "not_found")
    assert_error(client.post(f"/api/mp/v1/orders/{big}/cancel", json={}, headers=owner), 404, "not_found")


def test_the_largest_bigint_id_reaches_the_database(client, owner, admin):
    assert_error(client.get(f"/api/mp/v1/orders/{BIGINT_MAX}", headers=owner), 404, "order_not_found")
    assert_error(client.get(f"/api/hq/v1/partners/{BIGINT_MAX}", headers=admin), 404, "partner_not_found")


def _fields(err: dict) -> dict:
    return err["details"].get("fields", {})


@pytest.mark.parametrize("big", [2**63, 18446744073709551617])
def test_body_ids_past_bigint_are_refused(client, owner, ids, big):
    writes = [
        ("/api/mp/v1/orders", {"request_id": "big-1", "store_id": big,
                               "lines": [{"sku_id": ids["sku"], "quantity": 1}]}, "store_id"),
        ("/api/mp/v1/orders", {"request_id": "big-2", "store_id": ids["S1"],
                               "lines": [{"sku_id": big, "quantity": 1}]}, "lines"),
        ("/api/mp/v1/stock/counts", {"store_id": big, "lines": [{"sku_id": ids["sku"], "counted": 1}]}, "store_id"),
        ("/api/mp/v1/stock/counts", {"lines": [{"sku_id": big, "counted": 1}]}, "lines"),
        ("/api/mp/v1/stock/adjustments", {"store_id": big, "sku_id": ids["sku"], "delta": 1, "reason": "x"},
         "store_id"),
        ("/api/mp/v1/stock/adjustments", {"sku_id": big, "delta": 1, "reason": "x"}, "sku_id"),
    ]
    for path, body, field in writes:
        with assert_db_unchanged("stock_levels", "orders"):
            err = assert_error(client.post(path, json=body, headers=owner), 422, "validation_failed")
        assert field in _fields(err), (path, err)


def test_query_ids_past_bigint_are_refused(client, owner, admin):
    err = assert_error(client.get(f"/api/mp/v1/stock?store_id={2**63}", headers=owner), 422, "validation_failed")
    assert "store_id" in _fields(err)
    err = assert_error(client.get(f"/api/hq/v1/sell-through?sku_id={2**63}", headers=admin), 422,
                       "validation_failed")
    assert "sku_id" in _fields(err)


def test_other_integers_past_bigint_are_refused(client, admin, ids):
    """Not only ids: any integer a schema takes stays within what the database and the clock can hold."""
    err = assert_error(client.post("/api/hq/v1/invites", json={"role": "store_clerk", "store_id": ids["S1"],
                                                               "ttl_hours": 2**70}, headers=admin),
                       422, "validation_failed")
    assert "ttl_hours" in _fields(err)


# --- JSON nested deeper than a parser's recursion ------------------------------------------------------------

@pytest.mark.parametrize("depth", [200, 100_000])
def test_deep_json_is_bad_json(client, owner, depth):
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        resp = client.post("/api/mp/v1/stock/adjustments", data=text, content_type="application/json",
                           headers=owner)
        err = assert_error(resp, 400, "bad_json")
        assert CJK.search(err["message"])


def test_reasonable_nesting_still_parses(client, owner, ids):
    # A one-item-one-code SKU is counted by its codes: an empty list of them is a well-formed, shallow body.
    resp = client.post("/api/mp/v1/stock/counts", json={"lines": [{"sku_id": ids["sku"], "serials": []}]},
                       headers=owner)
    assert resp.status_code in (201, 404, 409), resp.get_json()


# --- dates the clock cannot convert ----------------------------------------------------------------------

@pytest.mark.parametrize("query", ["from=0001-01-01&to=0001-01-05", "from=0001-01-01", "to=0001-01-01",
                                   "from=9999-12-25&to=9999-12-31", "to=9999-12-31"])
def test_year_one_and_9999_in_sell_through_are_422(client, admin, query):
    err = assert_error(client.get(f"/api/hq/v1/sell-through?{query}", headers=admin), 422)
    assert CJK.search(err["message"])


@pytest.mark.parametrize("path", ["/api/hq/v1/orders", "/api/hq/v1/commissions", "/api/hq/v1/diversion-alerts"])
@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00%2B08:00", "9999-12-31T23:59:59-08:00"])
def test_instants_past_the_calendar_are_422(client, admin, path, instant):
    assert_error(client.get(f"{path}?from={instant}", headers=admin), 422, "validation_failed")


# --- the console's own error page ----------------------------------------------------------------------------

def _console_login(client):
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    resp = client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": csrf})
    assert resp.status_code == 302
    return csrf


def _assert_console_error(resp, status: int, text: str | None = None) -> str:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "品牌总部控制台" in html, html[:300]  # the console's layout, not werkzeug's page
    assert 'class="card empty error"' in html, html[:500]
    assert "Not Found" not in html and "Internal Server Error" not in html and "Bad Request" not in html
    assert "Traceback" not in html
    if text:
        assert text in html, html[:800]
    return html


@pytest.mark.parametrize("path", [
    "/hq/plans/99999999999999999999", "/hq/plans/18446744073709551617", f"/hq/plans/{2**63}",
    "/hq/nothing/here", "/hq/api/nothing-here", f"/hq/api/orders/{2**63}",
])
def test_console_unknown_urls_are_its_own_404(client, demo, path):
    _console_login(client)
    _assert_console_error(client.get(path), 404, "找不到")


def test_console_unknown_plan_is_its_own_404(client, demo):
    _console_login(client)
    _assert_console_error(client.get(f"/hq/plans/{BIGINT_MAX}"), 404, "找不到")
    _assert_console_error(client.get("/hq/plans/424242"), 404, "找不到")


def test_console_unknown_url_before_login_is_its_own_404(client, demo):
    _assert_console_error(client.get("/hq/nothing/here"), 404, "找不到")


@pytest.mark.parametrize("query", ["from=0001-01-01", "to=9999-12-31", "from=0001-01-01&to=0001-01-05",
                                   "from=not-a-date", "to=2024-13-45", f"sku_id={2**63}", "sku_id=abc",
                                   "region=99"])
@pytest.mark.parametrize("page", ["/hq/", "/hq/sell-through", "/hq/store-stock"])
def test_console_bad_filters_are_its_own_422(client, demo, page, query):
    _console_login(client)
    _assert_console_error(client.get(f"{page}?{query}"), 422, "筛选条件有误")


@pytest.mark.parametrize("page", ["/hq/", "/hq/sell-through"])
def test_console_period_backwards_is_its_own_422(client, demo, page):
    _console_login(client)
    _assert_console_error(client.get(f"{page}?from=2024-05-01&to=2024-01-01"), 422, "开始日期不能晚于结束日期")


def test_console_exports_with_bad_arguments_are_its_own_422(client, demo):
    _console_login(client)
    html = _assert_console_error(client.get("/hq/api/sell-through?from=0001-01-01&format=xlsx"), 422)
    assert "日期要在 2000-01-01 到 2099-12-31 之间" in html


def test_console_empty_filters_are_no_filters(client, demo):
    _console_login(client)
    assert client.get("/hq/sell-through?from=&to=&sku_id=&region=&group_by=city").status_code == 200


def test_console_posts_with_huge_ids(client, demo):
    csrf = _console_login(client)
    for path in (f"/hq/plans/{2**63}/approve", f"/hq/transfers/{2**64}/receive",
                 f"/hq/plans/1/lines/{2**63}"):
        _assert_console_error(client.post(path, data={"csrf": csrf, "quantity": "1"}), 404, "找不到")


def test_console_missing_csrf_is_its_own_400(client, demo):
    _console_login(client)
    _assert_console_error(client.post("/hq/plans", data={"target_cover_days": "21"}), 400)


def test_console_unexpected_error_is_its_own_500(make_app, demo):
    boom_app = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @boom_app.get("/hq/boom")
    def boom():
        raise RuntimeError("secret internals")

    resp = boom_app.test_client().get("/hq/boom")
    html = _assert_console_error(resp, 500, "系统出错了")
    assert "secret internals" not in html


# --- tokens whose fields have the wrong types ---------------------------------------------------------------

FUTURE = 4_102_444_800  # 2100-01-01

BAD_PAYLOADS = [
    [],
    "a string",
    123,
    {"u": "one", "k": "mp", "b": [], "e": FUTURE},
    {"u": None, "k": "mp", "b": [], "e": FUTURE},
    {"u": 1.5, "k": "mp", "b": [], "e": FUTURE},
    {"u": True, "k": "mp", "b": [], "e": FUTURE},
    {"u": 2**70, "k": "mp", "b": [], "e": FUTURE},
    {"u": 1, "k": ["mp"], "b": [], "e": FUTURE},
    {"u": 1, "k": "mp", "b": "store_owner", "e": FUTURE},
    {"u": 1, "k": "mp", "b": {"role": "store_owner"}, "e": FUTURE},
    {"u": 1, "k": "mp", "b": [{"role": "store_owner"}], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [["store_owner", 1, None, None, None, None, "extra"]], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [[["store_owner"], 1]], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [["store_owner", "1"]], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [["distributor_staff", None, 1, 42]], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [["hq_admin", None, None, None, None, 330000]], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [], "e": "tomorrow"},
    {"u": 1, "k": "mp", "b": [], "e": [FUTURE]},
    {"u": 1, "k": "mp", "b": [], "e": 1e300},
    {"u": 1, "k": "mp", "b": [], "e": 2**80},
    {"u": 1, "k": "mp", "b": []},
    {"k": "mp", "b": [], "e": FUTURE},
    {"u": 1, "k": "mp", "b": [], "e": FUTURE, "v": "1"},
    {"u": 1, "k": "mp", "b": [], "e": FUTURE, "v": [1]},
]


def _signed(app, payload) -> str:
    return URLSafeSerializer(app.config["SECRET_KEY"], salt="bearer-token").dumps(payload)


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=lambda p: repr(p)[:60])
def test_signed_tokens_of_the_wrong_shape_are_401(app, client, demo, payload):
    headers = {"Authorization": f"Bearer {_signed(app, payload)}"}
    assert_error(client.get("/api/mp/v1/me", headers=headers), 401)
    assert_error(client.get("/api/mp/v1/stock", headers=headers), 401)
    assert_error(client.get("/api/hq/v1/sell-through", headers=headers), 401)


@pytest.mark.parametrize("payload", BAD_PAYLOADS[3:8], ids=lambda p: repr(p)[:60])
def test_console_session_with_a_token_of_the_wrong_shape_logs_out(app, client, demo, payload):
    with client.session_transaction() as session:
        session["hq_token"] = _signed(app, payload)
    resp = client.get("/hq/")
    assert resp.status_code == 302 and "/hq/login" in resp.headers["Location"]


# --- validation details in Chinese ---------------------------------------------------------------------------

def _messages(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _messages(v)
    elif isinstance(value, list):
        for v in value:
            yield from _messages(v)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/mp/v1/sessions", {}),
    ("POST", "/api/mp/v1/sessions", {"code": 12}),
    ("POST", "/api/mp/v1/sessions", {"code": ""}),
    ("POST", "/api/mp/v1/sessions", {"code": "x" * 500}),
    ("POST", "/api/mp/v1/sessions", {"code": None}),
    ("POST", "/api/mp/v1/sessions", {"code": "demo:x", "extra": 1}),
    ("POST", "/api/mp/v1/sessions", ["demo:x"]),
    ("POST", "/api/mp/v1/orders", {"request_id": "r", "store_id": "1", "lines": "x"}),
    ("POST", "/api/mp/v1/orders", {"request_id": "r", "store_id": 0, "lines": []}),
    ("POST", "/api/mp/v1/orders", {"request_id": "r", "store_id": 1, "lines": [{"sku_id": 1, "quantity": 0}]}),
    ("POST", "/api/mp/v1/orders", {"request_id": "r", "store_id": 1, "lines": [5]}),
    ("POST", "/api/mp/v1/orders/1/payments", {"method": "cash"}),
    ("POST", "/api/mp/v1/stock/adjustments", {"sku_id": 1.5, "delta": True, "reason": "x"}),
    ("POST", "/api/hq/v1/skus", {"product_id": 1, "code": "c", "name": "n", "gtin": "1", "serialized": "yes",
                                  "prices": {}}),
    ("POST", "/api/hq/v1/stores", {"code": "c", "name": "n", "region_code": "abc", "distributor_id": 1,
                                    "price_tier_id": 1, "phone": "123"}),
    ("GET", "/api/hq/v1/sell-through?from=yesterday&group_by=week&page=0", None),
    ("GET", "/api/hq/v1/orders?from=2024-01-01T00:00:00", None),
    ("GET", "/api/hq/v1/orders?from=nonsense&page_size=100000", None),
])
def test_validation_details_are_chinese(client, owner, admin, method, path, body):
    headers = admin if "/hq/" in path else owner
    resp = client.open(path, method=method, json=body, headers=headers)
    err = assert_error(resp, 422, "validation_failed")
    messages = list(_messages(err["details"]))
    assert messages, err
    english = [m for m in messages if not CJK.search(m)]
    assert not english, f"{method} {path}: details not in Chinese: {err['details']}"


def _schema_classes():
    from marshmallow import Schema

    seen, todo = set(), [Schema]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return [c for c in seen if c.__module__.startswith(("app.", "miniprogram_api."))]


def _field_texts(field) -> list[str]:
    from marshmallow import fields, validate

    texts = list(field.error_messages.values())
    for v in field.validators:
        if isinstance(v, (validate.Range, validate.Length)):
            texts += [v.error] if v.error else [v.message_min, v.message_max, v.message_all]
        elif hasattr(v, "error"):
            texts.append(v.error)
    inner = getattr(field, "inner", None) or getattr(field, "value_field", None)
    if isinstance(inner, fields.Field):
        texts += _field_texts(inner)
    return texts


def test_every_schema_of_ours_speaks_chinese(app):
    """Guards the import order: marshmallow's messages were made Chinese before any of our schemas was built."""
    classes = _schema_classes()
    assert len(classes) > 50
    english = {}
    for cls in classes:
        for name, field in cls._declared_fields.items():
            bad = [t for t in _field_texts(field) if isinstance(t, str) and not CJK.search(t)]
            if bad:
                english[f"{cls.__module__}.{cls.__name__}.{name}"] = bad
    assert not english, english


# --- the JSON guard on its own ------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "reason"), [
    (b'{"a": "' + b"[" * 100 + b'"}', None),
    (b'{"a": "\\"' + b"[" * 100 + b'"}', None),
    (b'{"a": "\\\\", "b": ' + b"[" * 100 + b"]" * 100 + b"}", "too_deep"),
    (b"[" * 32 + b"]" * 32, None),
    (b"[" * 33 + b"]" * 33, "too_deep"),
    (b"[" * 100_000, "too_deep"),
    (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep"),
    (b"[" + b"[]," * 50_000 + b"[]]", None),
    (b'{"a": ' + b"1" * 5000 + b"}", "number_too_long"),
    (b'{"a": "' + b"1" * 5000 + b'"}', None),
    (b'{"a": ' + b"1" * 4000 + b"}", None),
])
def test_json_guard(body, reason):
    from app.core.jsonguard import problem

    assert problem(body) == reason


def test_a_number_longer_than_python_converts_is_bad_json(client, owner):
    resp = client.post("/api/mp/v1/stock/adjustments", data=b'{"sku_id": ' + b"9" * 5000 + b', "delta": 1}',
                       content_type="application/json", headers=owner)
    assert_error(resp, 400, "bad_json")


def test_console_wrong_method_is_its_own_405_with_allow(client, demo):
    resp = client.get("/hq/logout")
    _assert_console_error(resp, 405, "不支持这种请求方式")
    assert "POST" in resp.headers["Allow"]


# --- text no database can store (found by schemathesis on PostgreSQL) ---------------------------------------

@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud8d6", "\\udc80x", "\\ud8d6\\u0041", "\\ud83d\\ud83d"])
def test_unstorable_text_in_a_body_is_bad_text(client, admin, text):
    body = '{"code": "T-' + text + '", "name": "辽宁省"}'
    with assert_db_unchanged("price_tiers"):
        resp = client.post("/api/hq/v1/price-tiers", data=body, content_type="application/json", headers=admin)
        assert_error(resp, 400, "bad_text")


def test_escaped_text_that_databases_store_is_fine(client, admin):
    body = '{"code": "T-\\\\u0000-\\ud83d\\ude00-\\u4e2d", "name": "ok"}'  # a backslash, an emoji pair, 中
    resp = client.post("/api/hq/v1/price-tiers", data=body, content_type="application/json", headers=admin)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["code"] == "T-\\u0000-\U0001f600-中"


@pytest.mark.parametrize("path", ["/api/hq/v1/codes/%00", "/api/hq/v1/orders?number=%00",
                                  "/api/hq/v1/codes/ab%00cd"])
def test_nul_in_the_url_is_bad_text(client, admin, path):
    assert_error(client.get(path, headers=admin), 400, "bad_text")


def test_nul_in_a_console_form_is_its_own_400(client, demo):
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    resp = client.post("/hq/login", data={"username": "ad\x00min", "password": "x", "csrf": csrf})
    _assert_console_error(resp, 400, "无法保存的字符")
