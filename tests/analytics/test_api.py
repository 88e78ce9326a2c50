"""The HQ analytics API: dashboards, exports, scope, allocation plans through approval and receipt."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from openpyxl import load_workbook

from app.accounts.roles import HQ_ANALYST
from app.analytics.models import TransferOrder
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import StockLevel, Warehouse
from app.inventory.services import verify_ledger
from tests.conftest import hq_login

API = "/api/hq/v1"


def test_sell_through_by_city_has_names_and_previous_period(client, admin):
    resp = client.get(f"{API}/sell-through?group_by=city", headers=admin)
    assert resp.status_code == 200
    body = resp.get_json()
    labels = [r["label"] for r in body["items"]]
    assert "深圳市" in labels and "杭州市" in labels
    assert all(r["units"] >= 0 and "previous_units" in r for r in body["items"])
    assert body["period"]["previous_to"] < body["period"]["from"]
    assert body["total"] == len(body["items"])


def test_every_grouping_and_filters(client, admin):
    for group in ("day", "sku", "province", "city", "distributor", "store"):
        resp = client.get(f"{API}/sell-through?group_by={group}&sku_id=1&region=440000", headers=admin)
        assert resp.status_code == 200, resp.get_json()
        if group == "city":
            assert {r["key"][:2] for r in resp.get_json()["items"]} <= {"44"}
    days = client.get(f"{API}/sell-through?group_by=day&from=2026-01-01&to=2026-01-07", headers=admin).get_json()
    assert next(r["key"] for r in days["items"]) == "2026-01-01" and days["total"] == 7


def test_bad_input_gets_the_error_shape(client, admin):
    for url in ("/sell-through?group_by=planet", "/sell-through?from=2026-02-01&to=2026-01-01",
                "/sell-through?region=abc", "/sell-through?format=pdf", "/sell-through?from=yesterday"):
        resp = client.get(API + url, headers=admin)
        assert resp.status_code == 422, (url, resp.get_json())
        assert resp.get_json()["error"]["code"] in ("validation_failed", "bad_period")
    assert client.get(f"{API}/sell-through").status_code == 401


def test_store_users_cannot_read_dashboards(client, owner):
    resp = client.get(f"{API}/sell-through", headers=owner)
    assert resp.status_code == 403


def test_exports_xlsx_and_csv(client, admin):
    resp = client.get(f"{API}/sell-through?group_by=city&format=xlsx", headers=admin)
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(resp.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "分组" and any(r[0] == "深圳市" for r in rows[1:])
    for path in ("store-stock", "sell-in", "slow-stores", "distributor-ranking", "production-suggestions"):
        resp = client.get(f"{API}/{path}?format=csv", headers=admin)
        assert resp.status_code == 200, path
        text = resp.data.decode("utf-8-sig")
        assert len(list(csv.reader(io.StringIO(text)))) >= 2, path


def test_other_tables(client, admin):
    for path in ("store-stock", "sell-in", "slow-stores", "distributor-ranking", "overview",
                 "production-suggestions", "allocation-plans", "transfers"):
        resp = client.get(f"{API}/{path}", headers=admin)
        assert resp.status_code == 200, (path, resp.get_json())
    overview = client.get(f"{API}/overview", headers=admin).get_json()
    assert overview["totals"]["units"] > 0 and len(overview["trend"]) == 28
    stock = client.get(f"{API}/store-stock", headers=admin).get_json()["items"]
    assert any(r["days_of_cover"] is not None for r in stock)
    prod = client.get(f"{API}/production-suggestions", headers=admin).get_json()["items"]
    assert all(p["explanation"] for p in prod)


def test_region_bound_analyst_sees_only_their_region(client, demo):
    from app.accounts.models import Membership
    from app.accounts.services import create_hq_user

    with transaction():
        user = create_hq_user(username="gd", password="pw-gd-12345", role=HQ_ANALYST, display_name="广东分析员")
        db.session.flush()
        m = db.session.scalar(sa.select(Membership).where(Membership.user_id == user.id))
        m.region_code = "440000"
    headers = hq_login(client, "gd", "pw-gd-12345")
    rows = client.get(f"{API}/sell-through?group_by=city", headers=headers).get_json()["items"]
    assert rows and {r["key"][:2] for r in rows} == {"44"}
    stores = client.get(f"{API}/store-stock", headers=headers).get_json()["items"]
    assert all(r["city_code"].startswith("44") for r in stores)
    assert client.post(f"{API}/allocation-plans", json={"target_cover_days": 14}, headers=headers).status_code == 403


def _sub_stock(code):
    db.session.remove()
    wh = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == code))
    return dict(db.session.execute(
        sa.select(StockLevel.sku_id, StockLevel.on_hand).where(StockLevel.location_id == wh.location_id)).all())


def test_plan_create_edit_approve_receive(client, admin):
    resp = client.post(f"{API}/allocation-plans", json={"target_cover_days": 21}, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    plan = resp.get_json()
    assert plan["status"] == "draft" and plan["lines"]
    # Shenzhen sells fastest and holds least: it gets the most.
    by_wh = {}
    for ln in plan["lines"]:
        by_wh[ln["warehouse_name"]] = by_wh.get(ln["warehouse_name"], 0) + ln["quantity"]
        assert ln["quantity"] % ln["case_pack"] == 0
    assert by_wh["深圳分仓"] > by_wh.get("杭州分仓", 0)
    line = next(ln for ln in plan["lines"] if ln["quantity"] > 0)
    bad = client.patch(f"{API}/allocation-plans/{plan['id']}/lines/{line['id']}",
                       json={"quantity": line["case_pack"] + 1}, headers=admin)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "not_whole_cases"
    assert client.patch(f"{API}/allocation-plans/{plan['id']}/lines/{line['id']}", json={"quantity": "6"},
                        headers=admin).status_code == 422
    assert client.patch(f"{API}/allocation-plans/{plan['id']}/lines/999999", json={"quantity": 0},
                        headers=admin).status_code == 404
    edited = client.patch(f"{API}/allocation-plans/{plan['id']}/lines/{line['id']}",
                          json={"quantity": line["quantity"] + line["case_pack"]}, headers=admin)
    assert edited.status_code == 200
    total = edited.get_json()["total_units"]
    sz_before = _sub_stock("WH-SZ")
    approved = client.post(f"{API}/allocation-plans/{plan['id']}/approve", headers=admin)
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["status"] == "approved" and sum(t["total_units"] for t in body["transfers"]) == total
    assert client.post(f"{API}/allocation-plans/{plan['id']}/approve", headers=admin).status_code == 409
    assert client.patch(f"{API}/allocation-plans/{plan['id']}/lines/{line['id']}", json={"quantity": 0},
                        headers=admin).status_code == 409
    assert _sub_stock("WH-SZ") == sz_before  # in transit, not yet received
    sz = next(t for t in body["transfers"] if t["to_warehouse_name"] == "深圳分仓")
    received = client.post(f"{API}/transfers/{sz['id']}/receive", headers=admin)
    assert received.status_code == 200 and received.get_json()["status"] == "received"
    after = _sub_stock("WH-SZ")
    for ln in sz["lines"]:
        assert after[ln["sku_id"]] == sz_before.get(ln["sku_id"], 0) + ln["quantity"]
    assert client.post(f"{API}/transfers/{sz['id']}/receive", headers=admin).status_code == 409
    assert client.post(f"{API}/transfers/999999/receive", headers=admin).status_code == 404
    assert verify_ledger() == []
    assert db.session.scalar(sa.select(sa.func.count(TransferOrder.id))) == len(body["transfers"])


def test_plan_body_is_strict(client, admin):
    for body in ({}, {"target_cover_days": 0}, {"target_cover_days": "21"}, {"target_cover_days": 21, "x": 1}):
        resp = client.post(f"{API}/allocation-plans", json=body, headers=admin)
        assert resp.status_code == 422, body
    assert client.get(f"{API}/allocation-plans/12345", headers=admin).status_code == 404


def test_approval_fails_whole_when_central_ran_short(client, admin):
    from app.inventory.services import move_stock

    plan = client.post(f"{API}/allocation-plans", json={"target_cover_days": 60}, headers=admin).get_json()
    central = db.session.scalar(sa.select(Warehouse).where(Warehouse.kind == "central"))
    line = next(ln for ln in plan["lines"] if ln["quantity"] > 0)
    with transaction():
        on = db.session.scalar(sa.select(StockLevel.on_hand).where(StockLevel.location_id == central.location_id,
                                                                    StockLevel.sku_id == line["sku_id"]))
        move_stock(location_id=central.location_id, sku_id=line["sku_id"], on_hand=-on, kind="adjust", reason="t")
    resp = client.post(f"{API}/allocation-plans/{plan['id']}/approve", headers=admin)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "insufficient_stock"
    assert client.get(f"{API}/allocation-plans/{plan['id']}", headers=admin).get_json()["status"] == "draft"
    assert db.session.scalar(sa.select(sa.func.count(TransferOrder.id))) == 0
