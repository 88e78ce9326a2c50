"""The code-state change is itself the guard: a scan that decided on an out-of-date read of the code (as it would
without a lock) changes nothing and answers a clean 409, on either engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.codes.models import Code, ScanEvent
from app.core.tx import transaction
from app.extensions import db
from app.inventory.services import get_level, transit_location_id
from app.scans import services
from app.scans.books import verify_stock
from tests.scans.helpers import body, codes_in, on_hand, store


@pytest.fixture()
def stale_reads(monkeypatch):
    """`stale(serial)`: from now on the scans read that code as it is now, whatever happens to it after."""
    rows: dict[str, object] = {}
    real = services._lock_code

    def stale(serial: str, store_code: str = "S1") -> None:
        ctx = services._Ctx(user_id=0, store_id=store(store_code).id, now=datetime.now(UTC),
                            scan=services.ScanInput(request_id="-", code=serial, action="sell",
                                                    scanned_at=datetime.now(UTC)))
        with transaction():
            rows[serial] = real(ctx, serial)

    monkeypatch.setattr(services, "_lock_code", lambda ctx, serial: rows.get(serial) or real(ctx, serial))
    return stale


def _count(serial: str, action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).join(
        Code, Code.id == ScanEvent.code_id).where(Code.serial == serial, ScanEvent.action == action))


def _refused_as_moved(r) -> None:
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["error"]["code"] == "code_changed"


def test_a_sell_on_a_stale_read_sells_nothing(client, owner, stale_reads):
    code = codes_in("S1")[0]
    serial, sku_id = code.serial, code.sku_id
    stale_reads(serial)
    first = client.post("/api/mp/v1/scans", json=body(serial), headers=owner)
    assert first.status_code == 200 and first.get_json()["status"] == "accepted"
    before = on_hand("S1", sku_id)
    _refused_as_moved(client.post("/api/mp/v1/scans", json=body(serial), headers=owner))
    db.session.remove()
    assert on_hand("S1", sku_id) == before
    assert _count(serial, "sell") == 1
    assert verify_stock() == []


def test_a_return_on_a_stale_read_returns_nothing(client, owner, stale_reads):
    code = codes_in("S1")[0]
    serial, sku_id = code.serial, code.sku_id
    assert client.post("/api/mp/v1/scans", json=body(serial), headers=owner).get_json()["status"] == "accepted"
    stale_reads(serial)
    first = client.post("/api/mp/v1/scans", json=body(serial, "return"), headers=owner)
    assert first.status_code == 200 and first.get_json()["status"] == "accepted"
    before = on_hand("S1", sku_id)
    _refused_as_moved(client.post("/api/mp/v1/scans", json=body(serial, "return"), headers=owner))
    db.session.remove()
    assert on_hand("S1", sku_id) == before
    assert _count(serial, "return") == 1
    assert verify_stock() == []


def test_a_receive_on_a_stale_read_receives_nothing(client, owner, stale_reads):
    unit = codes_in("S1", state="in_transit")[0]
    serial, sku_id = unit.serial, unit.sku_id
    transit = transit_location_id(store("S1").location_id)
    stale_reads(serial)
    first = client.post("/api/mp/v1/scans", json=body(serial, "receive"), headers=owner)
    assert first.status_code == 200 and first.get_json()["status"] == "accepted"
    before = (on_hand("S1", sku_id), get_level(location_id=transit, sku_id=sku_id).on_hand)
    _refused_as_moved(client.post("/api/mp/v1/scans", json=body(serial, "receive"), headers=owner))
    db.session.remove()
    assert (on_hand("S1", sku_id), get_level(location_id=transit, sku_id=sku_id).on_hand) == before
    assert _count(serial, "receive") == 1
    assert verify_stock() == []
