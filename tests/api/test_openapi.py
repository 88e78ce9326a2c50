"""The OpenAPI document is valid, complete, and readable offline."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate


def _spec(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def test_openapi_is_valid(client):
    spec = _spec(client)
    assert spec["openapi"].startswith("3.")
    bad_refs = sorted({ref for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec))
                       if not re.fullmatch(r"#/components/(schemas|responses|parameters)/[A-Za-z0-9_.-]+", ref)})
    assert not bad_refs, f"schema references that are not schema names (a field where a Schema belongs?): {bad_refs}"
    try:
        validate(spec)
    except Exception as exc:  # the validator's own message is a page long; keep the first lines
        pytest.fail(f"invalid OpenAPI: {str(exc)[:2000]}")


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_api_route_is_documented(app, client):
    documented = {(path, method.upper()) for path, item in _spec(client)["paths"].items()
                  for method in item if method in {"get", "post", "put", "patch", "delete"}}
    undocumented_ok = {"/api/openapi.json", "/api/docs"}
    registered = {(_openapi_path(rule.rule), method) for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/api/") and rule.rule not in undocumented_ok
                  for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert registered, "no API routes registered?"
    missing = registered - documented
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
    extra = {p for p in documented if not p[0].startswith("/api/")}
    assert not extra


def test_every_operation_has_a_summary_and_error_responses_are_described(client):
    spec = _spec(client)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert op.get("summary"), f"{method.upper()} {path} has no summary (one-line docstring)"


def test_docs_page_needs_no_internet(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "/api/mp/v1/sessions" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)""", html, flags=re.I)
    assert not external, external
    assert "@import" not in html and "url(http" not in html


def test_error_answers_are_documented_with_the_error_schema(client):
    """Each operation of the JSON APIs documents the errors shared code answers (app/openapi.py)."""
    spec = _spec(client)
    responses = spec["components"]["responses"]
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["additionalProperties"] is False
    for path, item in spec["paths"].items():
        if not path.startswith(("/api/mp/", "/api/hq/", "/api/public/")):
            continue
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            documented = op["responses"]
            anonymous = path.startswith("/api/public/") or path in ("/api/mp/v1/sessions", "/api/hq/v1/sessions",
                                                                          "/api/mp/v1/consumer-sessions")
            assert anonymous or op.get("security") == [{"bearer": []}], (method, path)
            expected = {"400", "503"}
            if op.get("security"):
                expected |= {"401", "403", "404"}
            if method != "get" or op.get("parameters"):
                expected.add("422")
            assert expected <= set(documented), (method, path, sorted(documented))
            for status, answer in documented.items():
                if status.startswith(("4", "5")):
                    ref = answer["$ref"].rsplit("/", 1)[-1]
                    schema = responses[ref]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
