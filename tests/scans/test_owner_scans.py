"""What a store owner does with scans that must leave the books right: a phone's clock, the owner's undo of a
clerk's scan, incentive credits that follow an undo, and malformed items in an offline batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.analytics.models import DailySales
from app.analytics.rollups import fold
from app.catalog.models import Sku
from app.codes.models import Code, ScanEvent
from app.core.clock import today_business
from app.core.tx import transaction
from app.extensions import db
from app.incentives.models import IncentiveCredit
from app.inventory.services import verify_ledger
from tests.scans.helpers import body, codes_in, on_hand, store

SCANS = "/api/mp/v1/scans"


def _sold_today(store_id: int, sku_id: int) -> int:
    db.session.remove()
    fold()
    units = db.session.scalar(sa.select(DailySales.units).where(
        DailySales.day == today_business(), DailySales.store_id == store_id, DailySales.sku_id == sku_id))
    return int(units or 0)


def _arrived(code_id: int, at: datetime) -> None:
    """Pretend the unit's history (put away, shipped, received here) happened by `at`."""
    with transaction():
        db.session.execute(sa.update(ScanEvent).where(ScanEvent.code_id == code_id).values(event_time=at))


def _event(event_id: int) -> ScanEvent:
    db.session.remove()
    return db.session.get(ScanEvent, event_id)


# --- the phone's clock ----------------------------------------------------------------------------------------


def test_a_sell_dated_1970_is_recorded_when_received_and_counted_today(client, owner):
    code = codes_in("S1")[0]
    s1 = store("S1").id
    before = _sold_today(s1, code.sku_id)
    r = client.post(SCANS, json=body(code.serial, scanned_at="1970-01-01T00:00:00+00:00"), headers=owner)
    assert r.status_code == 200, r.get_json()
    a = r.get_json()
    assert a["status"] == "accepted" and a["time_adjusted"] is True, a
    assert a["message"].startswith("售出成功") and "手机时间" in a["message"]
    ev = _event(a["event_id"])
    assert ev.event_time.year == datetime.now(UTC).year and abs(ev.event_time - ev.recorded_at) < timedelta(seconds=5)
    assert db.session.get(Code, code.id).sold_at.year == datetime.now(UTC).year
    assert _sold_today(s1, code.sku_id) == before + 1
    # A replay answers the same, adjustment included.
    again = client.post(SCANS, json={**body(code.serial), "request_id": a["request_id"],
                                     "scanned_at": "1970-01-01T00:00:00+00:00"}, headers=owner).get_json()
    assert again["event_id"] == a["event_id"] and again["time_adjusted"] is True


def test_year_one_and_far_future_times_do_not_break_and_are_recorded_now(client, owner):
    serials = [u.serial for u in codes_in("S1", n=3)]
    for serial, at in zip(serials, ("0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00-12:00",
                                "9999-12-31T23:59:59-08:00"), strict=True):
        r = client.post(SCANS, json=body(serial, scanned_at=at), headers=owner)
        assert r.status_code == 200, (at, r.get_json())
        a = r.get_json()
        assert a["status"] == "accepted" and a["time_adjusted"] is True, (at, a)
        assert _event(a["event_id"]).event_time.year == datetime.now(UTC).year


def test_a_sane_past_time_stays_as_the_phone_gave_it(client, owner):
    code = codes_in("S1")[0]
    _arrived(code.id, datetime.now(UTC) - timedelta(days=3))
    at = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    a = client.post(SCANS, json=body(code.serial, scanned_at=at.isoformat()), headers=owner).get_json()
    assert a["status"] == "accepted" and not a.get("time_adjusted"), a
    assert _event(a["event_id"]).event_time == at


def test_a_sell_dated_before_the_unit_arrived_is_recorded_when_received(client, owner):
    code = codes_in("S1")[0]
    _arrived(code.id, datetime.now(UTC) - timedelta(days=1))
    at = datetime.now(UTC) - timedelta(days=2)
    a = client.post(SCANS, json=body(code.serial, scanned_at=at.isoformat()), headers=owner).get_json()
    assert a["status"] == "accepted" and a["time_adjusted"] is True, a
    assert _event(a["event_id"]).event_time > datetime.now(UTC) - timedelta(minutes=1)


def test_the_offline_window_is_a_setting(client, owner, app):
    code = codes_in("S1")[0]
    _arrived(code.id, datetime.now(UTC) - timedelta(days=20))
    at = datetime.now(UTC) - timedelta(days=10)
    old = app.config.get("SCAN_OFFLINE_DAYS")
    app.config["SCAN_OFFLINE_DAYS"] = 7
    try:
        a = client.post(SCANS, json=body(code.serial, scanned_at=at.isoformat()), headers=owner).get_json()
    finally:
        app.config["SCAN_OFFLINE_DAYS"] = old
    assert a["status"] == "accepted" and a["time_adjusted"] is True, a


def test_an_offline_batch_with_a_reset_clock_lands_today(client, owner):
    units = codes_in("S1", n=3)
    s1 = store("S1").id
    per_sku: dict[int, int] = {}
    for u in units:
        per_sku[u.sku_id] = per_sku.get(u.sku_id, 0) + 1
    before = {k: _sold_today(s1, k) for k in per_sku}
    items = [body(u.serial, scanned_at="1970-01-01T08:00:00+08:00") for u in units]
    r = client.post(f"{SCANS}/batch", json={"items": items}, headers=owner)
    assert r.status_code == 200, r.get_json()
    out = r.get_json()["items"]
    assert [i["status"] for i in out] == ["accepted"] * 3
    assert all(i["time_adjusted"] for i in out)
    for k, n in per_sku.items():
        assert _sold_today(s1, k) == before[k] + n


def test_receives_and_counted_scans_follow_the_same_rule(client, owner):
    case = codes_in("S1", state="in_transit", kind="case")[0]
    r = client.post(SCANS, json=body(case.serial, action="receive", scanned_at="1970-01-01T00:00:00Z"),
                    headers=owner).get_json()
    assert r["status"] == "accepted" and r["time_adjusted"] is True, r
    assert _event(r["event_id"]).event_time.year == datetime.now(UTC).year
    sku = db.session.scalar(sa.select(Sku).where(Sku.serialized.is_(False)))
    r = client.post(SCANS, json=body(sku.gtin, quantity=1, scanned_at="1970-01-01T00:00:00Z"),
                    headers=owner).get_json()
    assert r["status"] == "accepted" and r["time_adjusted"] is True, r


# --- undo -----------------------------------------------------------------------------------------------------


def test_the_owner_undoes_the_clerks_mis_scan(client, owner, clerk):
    code = codes_in("S1")[0]
    before = on_hand("S1", code.sku_id)
    sold = client.post(SCANS, json=body(code.serial), headers=clerk).get_json()
    assert sold["status"] == "accepted"
    r = client.post(f"{SCANS}/{sold['event_id']}/undo", headers=owner)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["code_state"] == "in_store" and on_hand("S1", code.sku_id) == before
    # A clerk undoes only their own scans.
    again = client.post(SCANS, json=body(code.serial), headers=owner).get_json()
    r = client.post(f"{SCANS}/{again['event_id']}/undo", headers=clerk)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "scan_not_found"
    assert verify_ledger() == []


def test_another_stores_owner_still_cannot_undo(client, clerk, owner2):
    code = codes_in("S1")[0]
    sold = client.post(SCANS, json=body(code.serial), headers=clerk).get_json()
    r = client.post(f"{SCANS}/{sold['event_id']}/undo", headers=owner2)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "scan_not_found"


# --- incentives -----------------------------------------------------------------------------------------------


def test_an_undone_sell_gives_its_credit_back_and_a_resell_earns_it_once(client, owner, admin):
    code = codes_in("S1")[0]
    r = client.put("/api/hq/v1/incentive-rules", json={"rules": [
        {"sku_id": code.sku_id, "step": "sell", "points": 5, "amount_fen": 10}]}, headers=admin)
    assert r.status_code == 200, r.get_json()
    sold = client.post(SCANS, json=body(code.serial), headers=owner).get_json()
    assert client.get("/api/mp/v1/incentives", headers=owner).get_json()["balance_points"] == 5
    assert client.post(f"{SCANS}/{sold['event_id']}/undo", headers=owner).status_code == 200
    ledger = client.get("/api/mp/v1/incentives", headers=owner).get_json()
    assert (ledger["balance_points"], ledger["balance_fen"], ledger["total"]) == (0, 0, 2), ledger
    assert ledger["items"][0]["kind"] == "reversal" and ledger["items"][0]["points"] == -5
    assert ledger["items"][0]["serial"] == code.serial
    resold = client.post(SCANS, json=body(code.serial), headers=owner).get_json()
    assert resold["status"] == "accepted"
    ledger = client.get("/api/mp/v1/incentives", headers=owner).get_json()
    assert (ledger["balance_points"], ledger["balance_fen"], ledger["total"]) == (5, 10, 3), ledger
    # Nothing was deleted: the first credit is still there, reversed.
    db.session.remove()
    rows = db.session.execute(sa.select(IncentiveCredit.points).where(
        IncentiveCredit.store_id == store("S1").id).order_by(IncentiveCredit.id)).scalars().all()
    assert rows == [5, -5, 5]


def test_an_undone_case_receive_gives_its_credits_back(client, owner, admin):
    case = codes_in("S1", state="in_transit", kind="case")[0]
    client.put("/api/hq/v1/incentive-rules", json={"rules": [
        {"sku_id": case.sku_id, "step": "receive", "points": 1, "amount_fen": 0}]}, headers=admin)
    r = client.post(SCANS, json=body(case.serial, action="receive"), headers=owner).get_json()
    n = r["quantity"]
    assert client.get("/api/mp/v1/incentives", headers=owner).get_json()["balance_points"] == n
    assert client.post(f"{SCANS}/{r['event_id']}/undo", headers=owner).status_code == 200
    assert client.get("/api/mp/v1/incentives", headers=owner).get_json()["balance_points"] == 0
    again = client.post(SCANS, json=body(case.serial, action="receive"), headers=owner).get_json()
    assert again["status"] == "accepted"
    assert client.get("/api/mp/v1/incentives", headers=owner).get_json()["balance_points"] == n


# --- malformed input --------------------------------------------------------------------------------------------


def test_one_malformed_item_is_refused_on_its_own(client, owner):
    units = codes_in("S1", n=2)
    items = [body(units[0].serial), "not a scan", None, {**body(units[1].serial), "action": {}},
             {**body(units[1].serial), "store_id": 2**63}, {"request_id": "x", "code": 5, "action": "sell"},
             body(units[1].serial)]
    r = client.post(f"{SCANS}/batch", json={"items": items}, headers=owner)
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert [i["status"] for i in out["items"]] == ["accepted", "refused", "refused", "refused", "refused",
                                                   "refused", "accepted"]
    for bad in out["items"][1:6]:
        assert bad["reason"] == "validation_failed", bad
        assert bad["message"] and all(ord(ch) > 127 or not ch.isalpha() for ch in bad["message"]), bad
        assert bad["details"]["fields"], bad
    assert "action" in out["items"][3]["details"]["fields"]
    assert "store_id" in out["items"][4]["details"]["fields"]
    assert set(out["items"][5]["details"]["fields"]) >= {"code", "scanned_at"}
    assert out["items"][3]["request_id"] == items[3]["request_id"]
    assert (out["accepted"], out["refused"]) == (2, 5)
    assert verify_ledger() == []


def test_wrong_types_on_the_single_scan_route_are_a_clean_422(client, owner):
    code = codes_in("S1")[0]
    level = on_hand("S1", code.sku_id)
    cases = [{"action": {}}, {"action": []}, {"code": {}}, {"code": ["x"]}, {"request_id": {}},
             {"store_id": 2**63}, {"store_id": 18446744073709551617},
             {"store_id": -1}, {"store_id": True}, {"quantity": True}, {"scanned_at": {}}, {"scanned_at": 5},
             {"lat": "x"}, {"lng": []}]
    for change in cases:
        r = client.post(SCANS, json={**body(code.serial), **change}, headers=owner)
        assert r.status_code == 422, (change, r.status_code, r.get_data(as_text=True)[:300])
        err = r.get_json()["error"]
        assert err["code"] == "validation_failed" and err["details"]["fields"], (change, err)
    for raw in ('{"request_id": "n1", "code": "x", "action": "sell", "scanned_at": "2026-01-01T00:00:00Z",'
                ' "lat": NaN}', "[1, 2]", "null", '"text"'):
        r = client.post(SCANS, data=raw, headers={**owner, "Content-Type": "application/json"})
        assert r.status_code in (400, 422), (raw, r.status_code, r.get_data(as_text=True)[:300])
        assert r.get_json()["error"]["code"] in ("validation_failed", "malformed_json")
    # Text that cannot be stored is refused before any schema, for every route (app/core/jsonguard.py).
    r = client.post(SCANS, json={**body(code.serial), "request_id": "a\u0000b"}, headers=owner)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_text", r.get_data(as_text=True)[:300]
    assert on_hand("S1", code.sku_id) == level


def test_ids_beyond_bigint_on_the_other_scan_routes(client, owner):
    r = client.post(f"{SCANS}/{2**63}/undo", headers=owner)  # no id that large exists: the route's own 404
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    r = client.get(f"{SCANS}?store_id={2**63}", headers=owner)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]


def test_wrong_types_in_the_batch_body_itself_are_a_clean_422(client, owner):
    for raw in ({"items": "x"}, {"items": {}}, {"items": []}, {"items": [], "more": 1}, [1]):
        r = client.post(f"{SCANS}/batch", data=json.dumps(raw), headers={**owner, "Content-Type": "application/json"})
        assert r.status_code == 422, (raw, r.status_code)

