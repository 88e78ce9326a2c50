"""Stocktake, adjustments and the movement ledger from the mini-program."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.extensions import db
from app.inventory.services import verify_ledger
from tests.scans.helpers import on_hand, store


def test_count_adjust_and_ledger(client, owner, owner2):
    # A SKU sold without serials: counted and adjusted by number (one with codes is counted by its codes).
    sku_id = db.session.scalar(sa.select(Sku.id).where(Sku.serialized.is_(False)).order_by(Sku.id))
    before = on_hand("S1", sku_id)
    r = client.post("/api/mp/v1/stock/counts", json={"lines": [{"sku_id": sku_id, "counted": before - 2}],
                                                    "reason": "月底盘点"}, headers=owner)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["lines"][0]["delta"] == -2 and on_hand("S1", sku_id) == before - 2
    r = client.post("/api/mp/v1/stock/adjustments", json={"sku_id": sku_id, "delta": 1, "reason": "找到一件"},
                    headers=owner)
    assert r.status_code == 201 and r.get_json()["on_hand"] == before - 1
    r = client.post("/api/mp/v1/stock/adjustments", json={"sku_id": sku_id, "delta": -10_000, "reason": "x"},
                    headers=owner)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "insufficient_stock"
    r = client.post("/api/mp/v1/stock/adjustments", json={"sku_id": sku_id, "delta": 1, "reason": "x",
                                                          "store_id": store("S1").id}, headers=owner2)
    assert r.status_code == 403
    r = client.post("/api/mp/v1/stock/adjustments", json={"sku_id": sku_id, "delta": 1}, headers=owner)
    assert r.status_code == 422
    moves = client.get(f"/api/mp/v1/stock/movements?sku_id={sku_id}", headers=owner).get_json()
    assert moves["items"][0]["kind"] == "adjust" and moves["items"][1]["kind"] == "stocktake"
    assert client.get("/api/mp/v1/stock", headers=owner).status_code == 200
    assert on_hand("S1", sku_id) == before - 1
    assert verify_ledger() == []
