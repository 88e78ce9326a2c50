"""HQ code routes: batches (job and progress), labels, PNG, finding and tracing, EPCIS, contracts for orders."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.catalog.models import Sku
from app.codes.models import Code
from app.codes.services import ship_codes, warehouse_codes_available
from app.core.tx import transaction
from app.errors import Conflict
from app.extensions import db
from app.inventory.models import Warehouse
from tests.scans.helpers import store


def _sku(serialized=True):
    return db.session.scalar(sa.select(Sku).where(Sku.serialized.is_(serialized)).order_by(Sku.id))


def test_batch_job_progress_and_exports(client, admin):
    sku = _sku()
    r = client.post("/api/hq/v1/code-batches", json={"sku_id": sku.id, "quantity": 24, "case_size": 6},
                    headers=admin)
    assert r.status_code == 202, r.get_json()
    batch_id = r.get_json()["id"]
    got = client.get(f"/api/hq/v1/code-batches/{batch_id}", headers=admin).get_json()
    assert got["status"] == "done" and got["units_made"] == 24 and got["cases_made"] == 4 and got["progress"] == 1
    pdf = client.get(f"/api/hq/v1/code-batches/{batch_id}/labels.pdf?columns=3&rows=5", headers=admin)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    csv_resp = client.get(f"/api/hq/v1/code-batches/{batch_id}/labels.csv", headers=admin)
    rows = list(csv.DictReader(io.StringIO(csv_resp.data.decode("utf-8-sig"))))
    assert len(rows) == 28 and sum(1 for r in rows if r["kind"] == "case") == 4
    unit = next(r for r in rows if r["kind"] == "unit")
    assert unit["url"] == f"https://q.example.com/01/{sku.gtin}/21/{unit['serial']}" and unit["case_serial"]
    png = client.get(f"/api/hq/v1/codes/{unit['serial']}.png", headers=admin)
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    listing = client.get(f"/api/hq/v1/codes?batch_id={batch_id}&state=packed", headers=admin).get_json()
    assert listing["total"] == 24 and {"serial", "url", "sku_id", "state", "store_id"} <= set(listing["items"][0])


def test_batch_refusals(client, admin, owner):
    r = client.post("/api/hq/v1/code-batches", json={"sku_id": _sku(False).id, "quantity": 5}, headers=admin)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "sku_not_serialized"
    r = client.post("/api/hq/v1/code-batches", json={"sku_id": _sku().id, "quantity": 10, "case_size": 3},
                    headers=admin)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "bad_case_size"
    r = client.post("/api/hq/v1/code-batches", json={"sku_id": 999999, "quantity": 5}, headers=admin)
    assert r.status_code == 404
    r = client.post("/api/hq/v1/code-batches", json={"sku_id": _sku().id, "quantity": 5}, headers=owner)
    assert r.status_code == 403
    r = client.get("/api/hq/v1/codes/NOTACODE", headers=admin)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "code_not_found"


def test_trace_and_epcis(client, admin, owner):
    from tests.scans.helpers import body, codes_in

    code = codes_in("S1")[0]
    sold = client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner).get_json()
    client.post(f"/api/mp/v1/scans/{sold['event_id']}/undo", headers=owner)
    trace = client.get(f"/api/hq/v1/codes/{code.serial}", headers=admin).get_json()
    assert trace["state"] == "in_store" and trace["case_serial"]
    steps = [e["biz_step"] for e in trace["events"]]
    assert steps[:3] == ["storing", "shipping", "receiving"] and "retail_selling" in steps
    sell = next(e for e in trace["events"] if e["action"] == "sell")
    assert sell["undone_by_event_id"] and sell["event_time"] and sell["recorded_at"] and sell["user_id"]
    now = datetime.now(UTC)
    doc = client.get("/api/hq/v1/events/epcis", query_string={
        "from": (now - timedelta(days=3)).isoformat(), "to": (now + timedelta(minutes=1)).isoformat()},
        headers=admin)
    assert doc.status_code == 200 and doc.mimetype == "application/ld+json"
    data = doc.get_json(force=True)
    assert data["type"] == "EPCISDocument" and data["schemaVersion"] == "2.0"
    events = data["epcisBody"]["eventList"]
    sold_ev = [e for e in events if e["bizStep"] == "retail_selling"]
    assert sold_ev and "errorDeclaration" in sold_ev[-1]
    assert sold_ev[-1]["epcList"][0].endswith(code.serial)


def test_ship_codes_contract(app_ctx, demo):
    wh = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == "WH-HZ"))
    sku = _sku()
    picked = warehouse_codes_available(wh.location_id, sku.id, 3)
    assert picked  # the demo leaves two cases per SKU in the Hangzhou warehouse
    s3 = store("S3")
    with transaction():
        per_sku = ship_codes(serials=picked, from_location_id=wh.location_id, to_store_id=s3.id, order_id=42,
                             user_id=None)
    assert sum(per_sku.values()) >= 1
    shipped = db.session.scalars(sa.select(Code).where(Code.order_id == 42, Code.kind == "unit")).all()
    assert all(c.state == "in_transit" and c.destination_store_id == s3.id and c.destination_region == s3.city_code
               for c in shipped)
    with pytest.raises(Conflict) as err, transaction():
        ship_codes(serials=picked, from_location_id=wh.location_id, to_store_id=s3.id, order_id=43, user_id=None)
    assert err.value.status == 409 and err.value.details["codes"]
