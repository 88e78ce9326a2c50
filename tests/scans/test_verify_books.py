"""`flask stock verify` proves more than level = ledger: serialized stock is its unit codes, and no unit is sold
twice. An oversold serial (level and ledger agreeing) used to pass."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.codes.models import BIZ_STEPS, Code, ScanEvent
from app.core.tx import transaction
from app.extensions import db
from app.inventory.services import move_stock, verify_ledger
from app.scans.books import verify_stock
from tests.scans.helpers import body, codes_in, store


def _verify(app):
    return app.test_cli_runner().invoke(args=["stock", "verify"])


def test_the_demo_books_are_right(app, demo):
    assert verify_stock() == []
    result = _verify(app)
    assert result.exit_code == 0 and result.output.startswith("ok"), result.output


def test_a_serial_sold_twice_fails_verify_though_level_and_ledger_agree(app, client, owner):
    """What the SQLite race left behind: the second sale of one unit, with its stock movement and event."""
    code = codes_in("S1")[0]
    serial, sku_id, code_id = code.serial, code.sku_id, code.id
    first = client.post("/api/mp/v1/scans", json=body(serial), headers=owner).get_json()
    assert first["status"] == "accepted"
    s1 = store("S1")
    step, disposition = BIZ_STEPS["sell"]
    with transaction():
        move_stock(location_id=s1.location_id, sku_id=sku_id, on_hand=-1, kind="sell", ref_type="code",
                   ref_id=code_id)
        now = datetime.now(UTC)
        db.session.add(ScanEvent(code_id=code_id, sku_id=sku_id, quantity=1, action="sell", biz_step=step,
                                 disposition=disposition, store_id=s1.id, location_id=s1.location_id,
                                 event_time=now, recorded_at=now, diverted=False))
    assert verify_ledger() == []  # the old check alone saw nothing wrong
    problems = verify_stock()
    assert {p["kind"] for p in problems} == {"sold_twice", "unit_count"}
    assert [p for p in problems if p["kind"] == "sold_twice"] == [
        {"kind": "sold_twice", "code_id": code_id, "serial": serial, "lowest": 1, "highest": 2}]
    [count] = [p for p in problems if p["kind"] == "unit_count"]
    assert (count["location_id"], count["sku_id"], count["on_hand"] + 1) == (s1.location_id, sku_id,
                                                                            count["unit_codes"])
    result = _verify(app)
    assert result.exit_code == 1, result.output
    assert f"SOLD TWICE code={code_id} serial={serial}" in result.output
    assert f"UNIT COUNT location={s1.location_id} sku={sku_id}" in result.output


def test_stock_that_left_without_its_code_fails_verify(app, client, owner):
    """A serialized level changed by count while the codes stayed on the shelf (a count, a direct sale)."""
    code = codes_in("S1")[0]
    with transaction():
        move_stock(location_id=store("S1").location_id, sku_id=code.sku_id, on_hand=-1, kind="adjust",
                   reason="count")
    assert verify_ledger() == []
    assert [p["kind"] for p in verify_stock()] == ["unit_count"]
    assert _verify(app).exit_code == 1


def test_selling_again_after_an_undo_or_a_return_is_right(app, client, owner):
    a, b = (c.serial for c in codes_in("S1", n=2))
    sold = client.post("/api/mp/v1/scans", json=body(a), headers=owner).get_json()
    assert client.post(f"/api/mp/v1/scans/{sold['event_id']}/undo", headers=owner).status_code == 200
    assert client.post("/api/mp/v1/scans", json=body(b), headers=owner).get_json()["status"] == "accepted"
    assert client.post("/api/mp/v1/scans", json=body(b, "return"), headers=owner).get_json()["status"] == "accepted"
    for serial in (a, b):
        assert client.post("/api/mp/v1/scans", json=body(serial), headers=owner).get_json()["status"] == "accepted"
    db.session.remove()
    states = set(db.session.scalars(sa.select(Code.state).where(Code.serial.in_((a, b)))))
    assert states == {"sold"}
    assert verify_stock() == []
    assert _verify(app).exit_code == 0
