"""Offline batches racing on PostgreSQL, with real threads: no deadlock a phone can see, every item answered on its
own, and a request's answer kept by the copy that did the work."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.roles import STORE_CLERK, STORE_OWNER
from app.codes.models import Code, CodeBatch
from app.codes.services import generate_batch
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.inventory.services import move_stock, transit_location_id, verify_ledger
from app.scans.models import ScanRequest
from app.scans.services import ScanInput, scan_batch
from tests.scans.helpers import codes_in, on_hand, store

TRIALS = 8


def _principal(store_code: str, openid: str, role: str) -> Principal:
    uid = db.session.scalar(sa.select(User.id).where(User.openid == openid))
    return Principal(user_id=uid, kind="mp", bindings=(Binding(role=role, store_id=store(store_code).id),))


def _fresh_codes(store_code: str, sku_id: int, n: int, state: str) -> list[str]:
    """n new unit codes of the SKU at the store: `sold` there, `in_transit` to it (stock in transit), or
    `in_store` (stock on the shelf)."""
    with transaction():
        batch = CodeBatch(sku_id=sku_id, quantity=n, status="pending")
        db.session.add(batch)
    generate_batch(batch.id)
    s = store(store_code)
    where = {"sold": {"store_id": s.id, "location_id": None, "sold_at": datetime.now(UTC)},
             "in_transit": {"store_id": None, "location_id": None},
             "in_store": {"store_id": s.id, "location_id": s.location_id}}[state]
    with transaction():
        db.session.execute(sa.update(Code).where(Code.batch_id == batch.id).values(
            state=state, destination_store_id=s.id, destination_distributor_id=s.distributor_id,
            destination_region=s.city_code, **where))
        if state == "in_transit":
            move_stock(location_id=transit_location_id(s.location_id), sku_id=sku_id, on_hand=n, kind="ship",
                       reason="test")
        elif state == "in_store":
            move_stock(location_id=s.location_id, sku_id=sku_id, on_hand=n, kind="receive", reason="test")
    serials = list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id).order_by(Code.id)))
    db.session.remove()
    return serials


def _item(serial: str, action: str, request_id: str | None = None) -> ScanInput:
    return ScanInput(request_id=request_id or uuid.uuid4().hex, code=serial, action=action,
                     scanned_at=datetime.now(UTC))


def _send(principal: Principal, serials: list[str], action: str, request_ids: list[str]) -> list[dict]:
    """One upload of a batch (each answer as a plain dict)."""
    items = [_item(s, action, r) for s, r in zip(serials, request_ids, strict=True)]
    return [dict(a) for a in scan_batch(principal, items)]


def _at_once(app, calls):
    """Run the calls at the same moment, each in a thread with its own app context and connection; their results,
    or the exceptions they raised (a 500 at the HTTP edge)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def work(i):
        with app.app_context():
            try:
                barrier.wait()
                results[i] = calls[i]()
            except Exception as exc:  # reported by the test
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _two_skus() -> tuple[int, int]:
    skus = sorted({c.sku_id for c in codes_in("S1", n=100)})
    assert len(skus) >= 2
    return skus[0], skus[1]


def _opposite_batches(postgres, action: str, state: str) -> None:
    """The owner and the clerk of S1 each upload two scans, one of each SKU, in opposite SKU order."""
    sku_a, sku_b = _two_skus()
    owner = _principal("S1", "demo_store_owner", STORE_OWNER)
    clerk = _principal("S1", "demo_store_clerk", STORE_CLERK)
    serials_a = _fresh_codes("S1", sku_a, 2 * TRIALS, state)
    serials_b = _fresh_codes("S1", sku_b, 2 * TRIALS, state)
    before = (on_hand("S1", sku_a), on_hand("S1", sku_b))
    db.session.remove()
    failures = []
    for t in range(TRIALS):
        a1, a2 = serials_a[2 * t:2 * t + 2]
        b1, b2 = serials_b[2 * t:2 * t + 2]
        results = _at_once(postgres, [
            lambda a1=a1, b1=b1: scan_batch(owner, [_item(a1, action), _item(b1, action)]),
            lambda a2=a2, b2=b2: scan_batch(clerk, [_item(b2, action), _item(a2, action)]),
        ])
        for r in results:
            if isinstance(r, Exception):
                failures.append(f"trial {t}: {type(r).__name__}: {str(r).splitlines()[0]}")
            else:
                assert len(r) == 2 and [a["status"] for a in r] == ["accepted", "accepted"], r
    assert not failures, f"{len(failures)} failed calls in {TRIALS} trials: {failures}"
    assert (on_hand("S1", sku_a), on_hand("S1", sku_b)) == (before[0] + 2 * TRIALS, before[1] + 2 * TRIALS)
    expected = "returned" if action == "return" else "in_store"
    assert set(db.session.scalars(sa.select(Code.state).where(Code.serial.in_(serials_a + serials_b)))) == {expected}
    assert verify_ledger() == []


def test_owner_and_clerk_return_two_skus_in_opposite_order_at_once(postgres, demo):
    _opposite_batches(postgres, "return", "sold")


def test_owner_and_clerk_receive_two_skus_in_opposite_order_at_once(postgres, demo):
    _opposite_batches(postgres, "receive", "in_transit")



def test_six_phones_upload_mixed_batches_at_once(postgres, demo):
    """Owner and clerk phones upload 10-item batches of sells, returns and receives of three SKUs in random order,
    six at a time: every item is answered and applied once, and no batch fails."""
    skus = sorted({c.sku_id for c in codes_in("S1", n=100)})[:3]
    owner = _principal("S1", "demo_store_owner", STORE_OWNER)
    clerk = _principal("S1", "demo_store_clerk", STORE_CLERK)
    pool = []
    for sku in skus:
        for action, state in (("return", "sold"), ("receive", "in_transit"), ("sell", "in_store")):
            pool += [(serial, action) for serial in _fresh_codes("S1", sku, 20, state)]
    random.Random(1).shuffle(pool)
    before = [on_hand("S1", sku) for sku in skus]
    db.session.remove()
    failures = []
    for r in range(len(pool) // 60):
        calls = [lambda part=pool[r * 60 + k * 10:r * 60 + (k + 1) * 10], who=(owner, clerk)[k % 2]:
                 scan_batch(who, [_item(serial, action) for serial, action in part]) for k in range(6)]
        for answers in _at_once(postgres, calls):
            if isinstance(answers, Exception):
                failures.append(f"round {r}: {type(answers).__name__}: {str(answers).splitlines()[0]}")
            else:
                assert [a["status"] for a in answers] == ["accepted"] * 10, [dict(a) for a in answers]
    assert not failures, f"{len(failures)} of {len(pool) // 10} batches failed: {failures}"
    # Per SKU: 20 returned and 20 received in, 20 sold.
    assert [on_hand("S1", sku) for sku in skus] == [b + 20 for b in before]
    assert verify_ledger() == []


def _same_batch_twice(postgres, size: int, trials: int) -> None:
    """A phone resends its batch while the first copy still runs: both copies answer what the one that did the
    work answered (the other marked as a replay), and so does every later replay."""
    sku_id = codes_in("S1")[0].sku_id
    owner = _principal("S1", "demo_store_owner", STORE_OWNER)
    serials = _fresh_codes("S1", sku_id, size * trials, "in_store")
    before = on_hand("S1", sku_id)
    for t in range(trials):
        chunk = serials[size * t:size * (t + 1)]
        request_ids = [uuid.uuid4().hex for _ in chunk]

        def send(chunk=chunk, request_ids=request_ids):
            return _send(owner, chunk, "sell", request_ids)

        first, second = _at_once(postgres, [send, send])
        assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
        for k in range(size):
            a, b = first[k], second[k]
            assert {a.get("replayed", False), b.get("replayed", False)} == {False, True}, (t, k, a, b)
            winner = a if not a.get("replayed") else b
            assert winner["status"] == "accepted", (t, k, a, b)
            strip = {key: v for key, v in winner.items() if key != "replayed"}
            assert {key: v for key, v in a.items() if key != "replayed"} == strip, (t, k, a, b)
            assert {key: v for key, v in b.items() if key != "replayed"} == strip, (t, k, a, b)
        later = _send(owner, chunk, "sell", request_ids)
        assert [(a["status"], a["event_id"], a.get("replayed")) for a in later] == [
            ("accepted", (first[k] if not first[k].get("replayed") else second[k])["event_id"], True)
            for k in range(size)]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanRequest).where(
            ScanRequest.request_id.in_(request_ids))) == 0  # the hot path's sales keep their answers on the events
        db.session.remove()
    assert on_hand("S1", sku_id) == before - size * trials
    assert verify_ledger() == []


def test_a_one_item_batch_sent_twice_at_once(postgres, demo):
    _same_batch_twice(postgres, size=1, trials=10)


def test_a_fifty_item_batch_sent_twice_at_once(postgres, demo):
    _same_batch_twice(postgres, size=50, trials=3)


def test_a_general_path_batch_sent_twice_at_once(postgres, demo):
    """Returns take the general path only: the copy that loses the race replays the winner's stored answers."""
    sku_id = codes_in("S1")[0].sku_id
    owner = _principal("S1", "demo_store_owner", STORE_OWNER)
    serials = _fresh_codes("S1", sku_id, 20, "sold")
    before = on_hand("S1", sku_id)
    for t in range(4):
        chunk = serials[5 * t:5 * (t + 1)]
        request_ids = [uuid.uuid4().hex for _ in chunk]

        def send(chunk=chunk, request_ids=request_ids):
            return _send(owner, chunk, "return", request_ids)

        first, second = _at_once(postgres, [send, send])
        assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
        for a, b in zip(first, second, strict=True):
            assert {key: v for key, v in a.items() if key != "replayed"} == \
                {key: v for key, v in b.items() if key != "replayed"}, (a, b)
            assert {a.get("replayed", False), b.get("replayed", False)} == {False, True}, (a, b)
            assert a["status"] == "accepted", (a, b)
        db.session.remove()
    assert on_hand("S1", sku_id) == before + 20
    assert verify_ledger() == []


def test_an_item_still_deadlocked_after_the_retries_is_answered_busy_and_the_rest_go_on(demo, monkeypatch):
    """Every attempt at one item meets a deadlock: that item is answered "try again" and keeps nothing, the others
    are applied; the phone's resend then does the item and replays the rest."""
    from app.core import retry
    from app.scans import services as scan_services

    serials = [c.serial for c in codes_in("S1", state="in_transit", kind="case", n=3)]
    owner = _principal("S1", "demo_store_owner", STORE_OWNER)
    real_apply = scan_services._apply
    attempts = []

    def deadlocked(user_id, data):
        if data.code == serials[1]:
            attempts.append(1)
            raise sa.exc.OperationalError("UPDATE ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))
        return real_apply(user_id, data)

    monkeypatch.setattr(scan_services, "_apply", deadlocked)
    monkeypatch.setattr(retry, "_PAUSE", 0.0)
    request_ids = [uuid.uuid4().hex for _ in serials]
    answers = _send(owner, serials, "receive", request_ids)
    assert [(a["status"], a["reason"]) for a in answers] == [("accepted", None), ("refused", "busy"),
                                                             ("accepted", None)]
    assert answers[1]["message"] == "系统正忙，这一条没有处理，请再扫一次" and len(attempts) == retry.ATTEMPTS
    db.session.remove()
    assert db.session.scalar(sa.select(Code.state).where(Code.serial == serials[1])) == "in_transit"
    assert set(db.session.scalars(sa.select(ScanRequest.request_id).where(
        ScanRequest.request_id.in_(request_ids)))) == {request_ids[0], request_ids[2]}
    monkeypatch.setattr(scan_services, "_apply", real_apply)
    again = _send(owner, serials, "receive", request_ids)
    assert [(a["status"], a.get("replayed", False)) for a in again] == [("accepted", True), ("accepted", False),
                                                                       ("accepted", True)]
    assert [a["event_id"] for a in again[::2]] == [a["event_id"] for a in answers[::2]]
    assert verify_ledger() == []
