"""The scan routes as the mini-program uses them, on the demo data."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.codes.models import Code, ScanEvent
from app.extensions import db
from app.inventory.services import verify_ledger
from app.scans.models import DiversionAlert
from tests.conftest import hq_login
from tests.scans.helpers import body, codes_in, on_hand, store


def test_done_when_walkthrough(client, owner, owner2):
    """S1 sells (stock -1), sells again (duplicate), S2 sells an S1 unit (alert), a consumer verifies."""
    code = codes_in("S1")[0]
    serial, sku_id = code.serial, code.sku_id
    before = on_hand("S1", sku_id)
    r = client.post("/api/mp/v1/scans", json=body(serial), headers=owner)
    assert r.status_code == 200, r.get_json()
    a = r.get_json()
    assert a["status"] == "accepted" and a["code_state"] == "sold"
    assert a["stock"] == {"sku_id": sku_id, "on_hand": before - 1}
    assert a["message"].startswith("售出成功") and str(before - 1) in a["message"]
    assert on_hand("S1", sku_id) == before - 1

    r = client.post("/api/mp/v1/scans", json=body(serial), headers=owner)
    d = r.get_json()
    assert d["status"] == "duplicate" and d["reason"] == "already_sold"
    assert "售出" in d["message"] and d["first_sold"]["store_id"] == store("S1").id
    assert on_hand("S1", sku_id) == before - 1

    other = codes_in("S1", sku_id=sku_id)[0]
    r = client.post("/api/mp/v1/scans", json=body(other.serial), headers=owner2)
    e = r.get_json()
    assert e["status"] == "accepted" and e["alerts"] and e["alerts"][0]["kind"] == "diversion"
    assert e["alerts"][0]["expected_store_id"] == store("S1").id
    assert e["alerts"][0]["actual_store_id"] == store("S2").id
    admin = hq_login(client)
    alerts = client.get("/api/hq/v1/diversion-alerts", headers=admin).get_json()
    assert alerts["total"] == 1 and alerts["items"][0]["serial"] == other.serial

    v = client.get(f"/api/public/v1/verify?code={other.serial}").get_json()
    assert v["genuine"] is True and v["times_verified"] == 1 and v["product"]["gtin"] == db.session.get(
        Sku, sku_id).gtin
    client.delete_cookie("vid")  # another phone (the same phone's reload is not another check)
    v = client.get(f"/api/public/v1/verify?code={other.serial}").get_json()
    assert v["times_verified"] == 2
    assert verify_ledger() == []


def test_replay_returns_first_answer_and_changes_nothing(client, owner):
    code = codes_in("S1")[0]
    b = body(code.serial)
    first = client.post("/api/mp/v1/scans", json=b, headers=owner).get_json()
    level = on_hand("S1", code.sku_id)
    again = client.post("/api/mp/v1/scans", json=b, headers=owner).get_json()
    assert again["status"] == "accepted" and again["event_id"] == first["event_id"] and again["replayed"]
    assert on_hand("S1", code.sku_id) == level
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).where(
        ScanEvent.code_id == code.id, ScanEvent.action == "sell")) == 1


def test_receive_case_then_sell_then_undo(client, owner):
    case = codes_in("S1", state="in_transit", kind="case")[0]
    sku_id = case.sku_id
    before = on_hand("S1", sku_id)
    r = client.post("/api/mp/v1/scans", json=body(f"https://q.example.com/01/x/21/{case.serial}".replace(
        "/01/x/", "/01/"+_gtin(sku_id)+"/"), action="receive"), headers=owner).get_json()
    assert r["status"] == "accepted" and r["quantity"] >= 1, r
    n = r["quantity"]
    assert on_hand("S1", sku_id) == before + n
    again = client.post("/api/mp/v1/scans", json=body(case.serial, action="receive"), headers=owner).get_json()
    assert again["status"] == "duplicate"
    unit = db.session.scalar(sa.select(Code).where(Code.case_id == case.id).order_by(Code.id))
    sold = client.post("/api/mp/v1/scans", json=body(unit.serial), headers=owner).get_json()
    assert sold["status"] == "accepted"
    undo = client.post(f"/api/mp/v1/scans/{sold['event_id']}/undo", headers=owner)
    assert undo.status_code == 200, undo.get_json()
    assert undo.get_json()["code_state"] == "in_store"
    assert on_hand("S1", sku_id) == before + n
    twice = client.post(f"/api/mp/v1/scans/{sold['event_id']}/undo", headers=owner)
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "already_undone"
    resold = client.post("/api/mp/v1/scans", json=body(unit.serial), headers=owner).get_json()
    assert resold["status"] == "accepted"
    ret = client.post("/api/mp/v1/scans", json=body(unit.serial, action="return"), headers=owner).get_json()
    assert ret["status"] == "accepted" and ret["code_state"] == "returned"
    listing = client.get("/api/mp/v1/scans", headers=owner).get_json()
    assert listing["total"] >= 5 and any(i["undone"] for i in listing["items"])
    trace = client.get(f"/api/hq/v1/codes/{unit.serial}", headers=hq_login(client)).get_json()
    assert [e["action"] for e in trace["events"]][-5:] == ["receive", "sell", "undo", "sell", "return"]
    assert verify_ledger() == []


def _gtin(sku_id):
    from app.catalog.models import Sku

    return db.session.get(Sku, sku_id).gtin


def test_undo_of_someone_elses_scan_is_not_found(client, owner, owner2):
    code = codes_in("S1")[0]
    sold = client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner).get_json()
    r = client.post(f"/api/mp/v1/scans/{sold['event_id']}/undo", headers=owner2)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "scan_not_found"


def test_unserialized_by_gtin_and_quantity(client, owner):
    from app.catalog.models import Sku

    sku = db.session.scalar(sa.select(Sku).where(Sku.serialized.is_(False)))
    before = on_hand("S1", sku.id)
    r = client.post("/api/mp/v1/scans", json=body(sku.gtin[1:], quantity=3), headers=owner).get_json()
    assert r["status"] == "accepted" and r["stock"]["on_hand"] == before - 3
    too_many = client.post("/api/mp/v1/scans", json=body(sku.gtin, quantity=10_000), headers=owner).get_json()
    assert too_many["status"] == "refused" and too_many["reason"] == "insufficient_stock"
    assert on_hand("S1", sku.id) == before - 3
    serialized = db.session.scalar(sa.select(Sku).where(Sku.serialized.is_(True)))
    r = client.post("/api/mp/v1/scans", json=body(serialized.gtin), headers=owner).get_json()
    assert r["status"] == "refused" and r["reason"] == "serial_required"


def test_bad_codes_are_refused_and_change_nothing(client, owner):
    code = codes_in("S1")[0]
    level = on_hand("S1", code.sku_id)
    forged = code.serial[:-1] + ("0" if code.serial[-1] != "0" else "1")
    for text, reason in [(forged, "bad_check_character"), (code.serial[:8], "serial_too_short"),
                         (code.serial + "ABC", "serial_too_long"), ("https://evil.com/x", "unknown_url")]:
        r = client.post("/api/mp/v1/scans", json=body(text), headers=owner)
        assert r.status_code == 200 and r.get_json()["reason"] == reason, r.get_json()
    r = client.post("/api/mp/v1/scans", json=body("A" * 600), headers=owner)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "validation_failed"
    other = codes_in("S2")[0]
    r = client.post("/api/mp/v1/scans", json=body(other.serial, store_id=store("S2").id), headers=owner)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "out_of_scope"
    r = client.post("/api/mp/v1/scans", json=body(code.serial, store_id=10**9), headers=owner)
    assert r.status_code in (403, 404)
    r = client.post("/api/mp/v1/scans", json={**body(code.serial), "store_id": "1"}, headers=owner)
    assert r.status_code == 422
    r = client.post("/api/mp/v1/scans", json={**body(code.serial), "extra": 1}, headers=owner)
    assert r.status_code == 422
    r = client.post("/api/mp/v1/scans", json={**body(code.serial), "scanned_at": "2026-01-01T00:00:00"},
                    headers=owner)
    assert r.status_code == 422
    r = client.post("/api/mp/v1/scans", json=body(code.serial))
    assert r.status_code == 401
    assert on_hand("S1", code.sku_id) == level
    assert db.session.get(Code, code.id).state == "in_store"


def test_receive_of_code_not_shipped_here_is_refused(client, owner, owner2):
    case = codes_in("S1", state="in_transit", kind="case")[0]
    r = client.post("/api/mp/v1/scans", json=body(case.serial, action="receive"), headers=owner2).get_json()
    assert r["status"] == "refused" and r["reason"] == "not_for_this_store"
    unit = codes_in("S1", state="in_transit")[0]
    r = client.post("/api/mp/v1/scans", json=body(unit.serial), headers=owner).get_json()
    assert r["status"] == "refused" and r["reason"] == "not_received"


def test_refuse_policy(client, owner2, admin):
    r = client.put("/api/hq/v1/scan-policy", json={"diversion_policy": "refuse"}, headers=admin)
    assert r.status_code == 200
    code = codes_in("S1")[0]
    a = client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner2).get_json()
    assert a["status"] == "refused" and a["reason"] == "diverted" and a["alerts"]
    assert db.session.get(Code, code.id).state == "in_store"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DiversionAlert)) == 1


def test_batch_each_item_on_its_own(client, owner):
    units = codes_in("S1", n=5)
    sku_id = units[0].sku_id
    per_sku = {}
    for u in units:
        per_sku[u.sku_id] = per_sku.get(u.sku_id, 0) + 1
    before = {k: on_hand("S1", k) for k in per_sku}
    items = [body(u.serial) for u in units]
    items.insert(2, body(units[0].serial[:-1] + "Z" if units[0].serial[-1] != "Z" else units[0].serial[:-1] + "Y"))
    items.insert(3, {"request_id": "bad", "code": 5, "action": "sell"})
    items.append(body(units[0].serial))  # sold earlier in this same batch
    r = client.post("/api/mp/v1/scans/batch", json={"items": items}, headers=owner)
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    statuses = [i["status"] for i in out["items"]]
    assert statuses == ["accepted", "accepted", "refused", "refused", "accepted", "accepted", "accepted",
                        "duplicate"]
    assert out["items"][3]["reason"] == "validation_failed" and out["items"][3]["message"] == "扫码内容不完整"
    for k, n in per_sku.items():
        assert on_hand("S1", k) == before[k] - n
    again = client.post("/api/mp/v1/scans/batch", json={"items": items}, headers=owner).get_json()
    assert [i["status"] for i in again["items"]] == statuses
    assert all(i.get("replayed") for i in again["items"] if i["reason"] != "validation_failed")
    for k, n in per_sku.items():
        assert on_hand("S1", k) == before[k] - n
    assert sku_id
    assert verify_ledger() == []


def test_oversized_batch_is_refused(client, owner, app):
    code = codes_in("S1")[0]
    items = [body(code.serial) for _ in range(app.config["SCAN_BATCH_MAX"] + 1)]
    r = client.post("/api/mp/v1/scans/batch", json={"items": items}, headers=owner)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "batch_too_large"
    assert db.session.get(Code, code.id).state == "in_store"


def test_incentives_credit_once(client, owner, admin):
    code = codes_in("S1")[0]
    r = client.put("/api/hq/v1/incentive-rules", json={"rules": [
        {"sku_id": code.sku_id, "step": "sell", "points": 5, "amount_fen": 10}]}, headers=admin)
    assert r.status_code == 200, r.get_json()
    sold = client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner).get_json()
    client.post(f"/api/mp/v1/scans/{sold['event_id']}/undo", headers=owner)
    client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner)
    ledger = client.get("/api/mp/v1/incentives", headers=owner).get_json()
    # Credit, its reversal by the undo, the credit of the second sell: paid once in all.
    assert ledger["balance_points"] == 5 and ledger["balance_fen"] == 10 and ledger["total"] == 3
