"""A stocktake of a one-item-one-code SKU is done by its codes, so the codes' states and the stock agree after it;
every stocktake and adjustment answer carries a sentence for the owner."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import Sku
from app.codes.models import Code, ScanEvent
from app.extensions import db
from app.inventory.models import StockMovement
from app.inventory.services import verify_ledger
from tests.scans.helpers import body, codes_in, on_hand, store

COUNTS = "/api/mp/v1/stock/counts"
ADJUST = "/api/mp/v1/stock/adjustments"


def _plain_sku() -> Sku:
    return db.session.scalar(sa.select(Sku).where(Sku.serialized.is_(False)).order_by(Sku.id))


def _codes(store_code: str, sku_id: int) -> list[sa.Row]:
    """(id, serial) of the store's units of the SKU on the shelf (plain rows: they outlive the session)."""
    db.session.remove()
    return db.session.execute(sa.select(Code.id, Code.serial).where(
        Code.store_id == store(store_code).id, Code.sku_id == sku_id, Code.kind == "unit",
        Code.state.in_(("in_store", "returned"))).order_by(Code.id)).all()


def test_a_bare_count_of_a_serialized_sku_is_refused(client, owner):
    sku_id = codes_in("S1")[0].sku_id
    before = on_hand("S1", sku_id)
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "counted": before - 2}]}, headers=owner)
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "serials_required" and "扫" in err["message"], err
    assert err["details"]["sku_ids"] == [sku_id]
    assert on_hand("S1", sku_id) == before


def test_a_stocktake_by_codes_moves_the_codes_and_the_stock(client, owner):
    sku_id = codes_in("S1")[0].sku_id
    here = _codes("S1", sku_id)
    elsewhere = _codes("S2", sku_id)[0]
    on_the_way = db.session.execute(sa.select(Code.id, Code.serial).where(
        Code.id == codes_in("S1", state="in_transit", sku_id=sku_id)[0].id)).one()
    s2_before = on_hand("S2", sku_id)
    found, lost = here[2:], here[:2]
    scanned = [c.serial for c in found] + [elsewhere.serial, on_the_way.serial, found[0].serial]  # one twice
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "serials": scanned}], "reason": "月底盘点"},
                    headers=owner)
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    line = out["lines"][0]
    assert line["counted"] == len(found) + 2 and line["on_hand"] == len(found) + 2
    assert sorted(line["missing_serials"]) == sorted(c.serial for c in lost)
    assert sorted(line["found_serials"]) == sorted([elsewhere.serial, on_the_way.serial])
    assert out["message"] and "盘点" in out["message"]
    db.session.remove()
    assert on_hand("S1", sku_id) == len(found) + 2
    assert on_hand("S2", sku_id) == s2_before - 1
    states = {c.serial: (c.state, c.store_id) for c in db.session.scalars(sa.select(Code).where(
        Code.serial.in_([*scanned, *(c.serial for c in lost)])))}
    s1 = store("S1").id
    assert all(states[c.serial] == ("missing", s1) for c in lost)
    assert states[elsewhere.serial] == ("in_store", s1) and states[on_the_way.serial] == ("in_store", s1)
    assert all(states[c.serial] == ("in_store", s1) for c in found)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StockMovement).where(
        StockMovement.kind == "stocktake", StockMovement.sku_id == sku_id)) >= 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).where(
        ScanEvent.code_id.in_([c.id for c in lost]), ScanEvent.action == "missing")) == 2
    assert verify_ledger() == []
    # The same stocktake again finds nothing new.
    again = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "serials": scanned}]}, headers=owner).get_json()
    assert again["lines"][0]["found_serials"] == [] and again["lines"][0]["missing_serials"] == []
    assert again["lines"][0]["delta"] == 0


def test_a_unit_marked_missing_can_still_be_sold_where_it_went_missing(client, owner):
    sku_id = codes_in("S1")[0].sku_id
    here = _codes("S1", sku_id)
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "serials": [c.serial for c in here[1:]]}]},
                    headers=owner)
    assert r.status_code == 201
    lost = here[0]
    before = on_hand("S1", sku_id)
    sold = client.post("/api/mp/v1/scans", json=body(lost.serial), headers=owner).get_json()
    assert sold["status"] == "accepted" and sold["stock"]["on_hand"] == before, sold
    db.session.remove()
    assert db.session.get(Code, lost.id).state == "sold"
    assert verify_ledger() == []


def test_bad_codes_refuse_the_whole_stocktake(client, owner):
    sku_id = codes_in("S1")[0].sku_id
    here = _codes("S1", sku_id)
    other_sku = db.session.execute(sa.select(Code.id, Code.serial).where(
        Code.sku_id != sku_id, Code.kind == "unit", Code.store_id == store("S1").id)).first()
    forged = here[0].serial[:-1] + ("0" if here[0].serial[-1] != "0" else "1")
    before = on_hand("S1", sku_id)
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "serials": [here[1].serial, forged,
                                                                           other_sku.serial]}]}, headers=owner)
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "bad_codes"
    assert {c["code"] for c in err["details"]["codes"]} == {forged, other_sku.serial}
    assert on_hand("S1", sku_id) == before
    db.session.remove()
    assert db.session.get(Code, here[0].id).state == "in_store"


def test_counts_and_adjustments_of_plain_skus_say_what_happened(client, owner):
    sku = _plain_sku()
    before = on_hand("S1", sku.id)
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku.id, "counted": before + 3}]}, headers=owner)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["message"] and "盘点" in r.get_json()["message"]
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku.id, "serials": ["X"]}]}, headers=owner)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "serials_not_used"
    r = client.post(ADJUST, json={"sku_id": sku.id, "delta": -1, "reason": "破损"}, headers=owner)
    assert r.status_code == 201, r.get_json()
    msg = r.get_json()["message"]
    assert sku.name in msg and str(before + 2) in msg, msg


def test_an_adjustment_of_a_serialized_sku_asks_for_a_stocktake_by_codes(client, owner):
    sku_id = codes_in("S1")[0].sku_id
    before = on_hand("S1", sku_id)
    r = client.post(ADJUST, json={"sku_id": sku_id, "delta": -1, "reason": "破损"}, headers=owner)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "serials_required", r.get_json()
    assert on_hand("S1", sku_id) == before


def test_a_stocktake_by_codes_also_corrects_an_old_count_by_number(client, owner):
    """Books left wrong by a count by number (before counts by codes): the codes put the stock right."""
    from app.core.tx import transaction
    from app.inventory.services import move_stock

    sku_id = codes_in("S1")[0].sku_id
    here = _codes("S1", sku_id)
    with transaction():
        move_stock(location_id=store("S1").location_id, sku_id=sku_id, on_hand=-3, kind="stocktake", reason="旧盘点")
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "serials": [c.serial for c in here]}]}, headers=owner)
    assert r.status_code == 201, r.get_json()
    line = r.get_json()["lines"][0]
    assert (line["before"], line["on_hand"], line["delta"]) == (len(here) - 3, len(here), 3)
    assert line["missing_serials"] == [] and line["found_serials"] == []
    assert on_hand("S1", sku_id) == len(here)
    assert verify_ledger() == []



def test_a_receive_that_commits_during_a_stocktake_is_kept(postgres, client, owner, clerk, monkeypatch):
    """A case scanned in while the stocktake runs (committed between its reads and its correction): the stock
    still equals the codes on the shelf."""
    import threading
    import uuid
    from datetime import UTC, datetime

    from app.scans import stocktake

    app = postgres
    sku_id = codes_in("S1")[0].sku_id
    case = codes_in("S1", state="in_transit", kind="case", sku_id=sku_id)[0].serial
    here = [c.serial for c in _codes("S1", sku_id)]
    answers: list = []

    def receive():
        answers.append(app.test_client().post("/api/mp/v1/scans", json={
            "request_id": uuid.uuid4().hex, "code": case, "action": "receive",
            "scanned_at": datetime.now(UTC).isoformat()}, headers=clerk).get_json())

    real = stocktake._mark_missing

    def missing_then_a_scan_elsewhere(*args, **kwargs):
        real(*args, **kwargs)
        other = threading.Thread(target=receive)
        other.start()
        other.join(timeout=60)

    monkeypatch.setattr(stocktake, "_mark_missing", missing_then_a_scan_elsewhere)
    r = client.post(COUNTS, json={"lines": [{"sku_id": sku_id, "serials": here}]}, headers=owner)
    assert r.status_code == 201, r.get_json()
    assert answers and answers[0]["status"] == "accepted", answers
    assert on_hand("S1", sku_id) == len(_codes("S1", sku_id)) == len(here) + answers[0]["quantity"]
    assert verify_ledger() == []
