"""Reliability on PostgreSQL with real threads: concurrent sells, exact ledgers, no half-applied scans."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.codes.models import Code, ScanEvent
from app.extensions import db
from app.inventory.models import StockMovement
from app.inventory.services import verify_ledger
from app.scans import services as scan_services
from app.scans.models import ScanRequest
from app.scans.services import ScanInput, scan, scan_batch
from tests.scans.helpers import codes_in, on_hand, owner_principal, stock_store_with_codes


def _input(serial: str, action: str = "sell") -> ScanInput:
    return ScanInput(request_id=uuid.uuid4().hex, code=serial, action=action, scanned_at=datetime.now(UTC))


def _run_threads(app, n, target):
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def work(i):
        with app.app_context():
            try:
                barrier.wait()
                results[i] = target(i)
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_fifty_concurrent_sells_of_one_code(postgres, demo):
    code = codes_in("S1")[0]
    serial, sku_id = code.serial, code.sku_id
    principal = owner_principal("S1")
    before = on_hand("S1", sku_id)
    db.session.remove()
    answers = _run_threads(postgres, 50, lambda i: scan(principal, _input(serial)))
    statuses = sorted(a["status"] for a in answers)
    assert statuses.count("accepted") == 1 and statuses.count("duplicate") == 49
    assert on_hand("S1", sku_id) == before - 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).where(
        ScanEvent.action == "sell")) == 1
    assert verify_ledger() == []


def test_concurrent_replays_of_one_request(postgres, demo):
    code = codes_in("S1")[0]
    principal = owner_principal("S1")
    data = _input(code.serial)
    before = on_hand("S1", code.sku_id)
    db.session.remove()
    answers = _run_threads(postgres, 10, lambda i: scan(principal, ScanInput(**vars(data))))
    assert {a["status"] for a in answers} == {"accepted"}
    assert len({a["event_id"] for a in answers}) == 1
    assert on_hand("S1", code.sku_id) == before - 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).where(
        ScanEvent.request_id == data.request_id)) == 1


def test_eight_workers_selling_distinct_codes(postgres, demo):
    sku_id = codes_in("S1")[0].sku_id
    serials = stock_store_with_codes("S1", sku_id, 8 * 500)
    before = on_hand("S1", sku_id)
    moves_before = db.session.scalar(sa.select(sa.func.count()).select_from(StockMovement))
    principal = owner_principal("S1")
    db.session.remove()

    def worker(i):
        mine = serials[i * 500:(i + 1) * 500]
        # Half as single scans, half as one batch: both paths under contention on the same stock row.
        singles = [scan(principal, _input(s))["status"] for s in mine[:20]]
        batch = [a["status"] for a in scan_batch(principal, [_input(s) for s in mine[20:]])]
        return singles + batch

    results = _run_threads(postgres, 8, worker)
    assert all(s == "accepted" for r in results for s in r)
    assert on_hand("S1", sku_id) == before - 4000
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Code).where(
        Code.serial.in_(serials), Code.state == "sold")) == 4000
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StockMovement)) > moves_before
    assert verify_ledger() == []


@pytest.fixture()
def failing_event_writes(postgres):
    """PostgreSQL refuses every new scan event, as a failing disk would: a database error in the middle of a
    scan, after the code and the stock level were already written in its transaction."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = 'XX001'; END$$")
        conn.exec_driver_sql("CREATE TRIGGER test_refuse_event BEFORE INSERT ON scan_events"
                             " FOR EACH ROW EXECUTE FUNCTION test_refuse_event()")
    yield
    db.session.remove()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER test_refuse_event ON scan_events")
        conn.exec_driver_sql("DROP FUNCTION test_refuse_event()")


def _hot_calls(monkeypatch) -> list[list]:
    """The rows each call of a hot-path function returned (none when it sold nothing or failed), recorded."""
    calls: list[list] = []
    real = scan_services.hot._call

    def recorded(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(scan_services.hot, "_call", recorded)
    return calls


def _snapshot(code_id: int, sku_id: int) -> tuple:
    db.session.remove()
    return (db.session.get(Code, code_id).state, on_hand("S1", sku_id),
            db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent)),
            db.session.scalar(sa.select(sa.func.count()).select_from(ScanRequest)),
            db.session.scalar(sa.select(sa.func.count()).select_from(StockMovement)))


def test_failure_after_first_write_leaves_nothing(postgres, demo, monkeypatch, failing_event_writes):
    code = codes_in("S1")[0]
    code_id, sku_id, serial = code.id, code.sku_id, code.serial
    principal = owner_principal("S1")
    before = _snapshot(code_id, sku_id)
    calls = _hot_calls(monkeypatch)
    data = _input(serial)
    with pytest.raises(sa.exc.DBAPIError, match="injected failure"):
        scan(principal, data)
    # The hot path tried and sold nothing; the general path failed the same way, after its first write.
    assert calls == [[]]
    assert _snapshot(code_id, sku_id) == before
    # Once the database is well again, the phone's retry sells the unit exactly once.
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE scan_events DISABLE TRIGGER test_refuse_event")
    answer = scan(principal, ScanInput(**vars(data)))
    assert answer["status"] == "accepted" and calls[-1] and calls[-1][0][0] is not None
    state, stock, events, requests, moves = _snapshot(code_id, sku_id)
    # The hot path keeps the request on the event, not in scan_requests.
    assert (state, stock, events, requests, moves) == ("sold", before[1] - 1, before[2] + 1, before[3],
                                                       before[4] + 1)
    assert db.session.get(ScanEvent, answer["event_id"]).request_id == data.request_id
    assert verify_ledger() == []


def test_http_failure_is_500_without_trace_and_nothing_changes(postgres, client, owner, failing_event_writes):
    from tests.scans.helpers import body

    code = codes_in("S1")[0]
    code_id, sku_id = code.id, code.sku_id
    before = _snapshot(code_id, sku_id)
    r = client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner)
    assert r.status_code == 500 and r.get_json() == {"error": {"code": "internal_error",
                                                               "message": "系统出错了，请稍后再试", "details": {}}}
    assert _snapshot(code_id, sku_id) == before
    r = client.post("/api/mp/v1/scans/batch", json={"items": [body(c.serial) for c in codes_in("S1", n=3)]},
                    headers=owner)
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "internal_error"
    assert _snapshot(code_id, sku_id) == before


def test_batch_with_a_bad_item_in_the_middle(postgres, demo):
    units = [(u.id, u.serial) for u in codes_in("S1", n=6)]
    principal = owner_principal("S1")
    items = [_input(serial) for _, serial in units]
    bad = units[3][1]
    items[3] = _input(bad[:-1] + ("0" if bad[-1] != "0" else "1"))
    answers = scan_batch(principal, items)
    assert [a["status"] for a in answers] == ["accepted"] * 3 + ["refused"] + ["accepted"] * 2
    db.session.remove()
    states = {c.serial: c.state for c in db.session.scalars(sa.select(Code).where(
        Code.id.in_([i for i, _ in units])))}
    assert states[bad] == "in_store"
    assert sum(1 for s in states.values() if s == "sold") == 5
    assert verify_ledger() == []


def test_a_sell_goes_through_after_the_database_dropped_the_pooled_connections(postgres, demo):
    """No pre-ping: the first scan after a restart meets a dead pooled connection and is applied once anyway."""
    code = codes_in("S1")[0]
    serial, sku_id = code.serial, code.sku_id
    principal = owner_principal("S1")
    before = on_hand("S1", sku_id)
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent))
    db.session.remove()
    killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        dropped = conn.exec_driver_sql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar()
    killer.dispose()
    assert dropped >= 1
    answer = scan(principal, _input(serial))
    assert answer["status"] == "accepted" and not answer.get("replayed")
    assert on_hand("S1", sku_id) == before - 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent)) == events_before + 1
    assert verify_ledger() == []
