"""Stock stays exact under real concurrency: a multi-process gunicorn, clients in threads and in processes.

Runs on the suite's engine (SQLite by default, PostgreSQL with TEST_DATABASE_URL). Each test takes codes nobody
has touched yet from the module's one seeded database, and checks its own deltas and the whole books.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa

from app.channel.models import Store
from app.codes.models import Code, ScanEvent
from app.extensions import db
from app.inventory.services import get_level
from app.scans.books import verify_stock
from tests.concurrency.clients import Call, fire


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _scan(serial: str, action: str, headers: dict[str, str]) -> Call:
    body = {"request_id": uuid.uuid4().hex, "code": serial, "action": action, "scanned_at": _now()}
    return Call("POST", "/api/mp/v1/scans", body, tuple(headers.items()))


def _store(code: str) -> Store:
    return db.session.scalar(sa.select(Store).where(Store.code == code))


def _codes(store_code: str, *, state: str = "in_store", kind: str = "unit", n: int = 1,
           sku_id: int | None = None) -> list[tuple[str, int]]:
    """(serial, sku_id) of n codes of the store's in that state (in transit: on their way to it)."""
    s = _store(store_code)
    column = Code.destination_store_id if state == "in_transit" else Code.store_id
    stmt = sa.select(Code.serial, Code.sku_id).where(column == s.id, Code.state == state, Code.kind == kind)
    if sku_id is not None:
        stmt = stmt.where(Code.sku_id == sku_id)
    return [tuple(r) for r in db.session.execute(stmt.order_by(Code.id).limit(n))]


def _on_hand(store_code: str, sku_id: int) -> int:
    return get_level(location_id=_store(store_code).location_id, sku_id=sku_id).on_hand


def _events(serial: str, action: str, after: int = 0) -> int:
    """The code's events of that action (those after event id `after`)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).join(
        Code, Code.id == ScanEvent.code_id).where(Code.serial == serial, ScanEvent.action == action,
                                                  ScanEvent.id > after))


def _last_event() -> int:
    return db.session.scalar(sa.select(sa.func.max(ScanEvent.id))) or 0


def _no_server_errors(replies) -> None:
    bad = [(r.status, r.body) for r in replies if r.status >= 500]
    assert not bad, bad


def test_fifty_concurrent_sells_of_one_code_accept_one(live_server):
    owner, clerk = live_server.login("demo_store_owner"), live_server.login("demo_store_clerk")
    with live_server.db():
        [(serial, sku_id)] = _codes("S1")
        before = _on_hand("S1", sku_id)
    calls = [_scan(serial, "sell", owner if i % 2 else clerk) for i in range(50)]
    replies = fire(live_server.base_url, calls, processes=4)
    _no_server_errors(replies)
    answers = Counter(r.answer for r in replies)
    assert answers == {"accepted": 1, "duplicate": 49}, answers
    assert {r.body["reason"] for r in replies if r.answer == "duplicate"} == {"already_sold"}
    with live_server.db():
        assert _on_hand("S1", sku_id) == before - 1
        assert _events(serial, "sell") == 1
        assert verify_stock() == []


def _transit_on_hand(store_code: str, sku_id: int) -> int:
    from app.inventory.models import Location

    loc = db.session.scalar(sa.select(Location.id).where(Location.destination_id == _store(store_code).location_id))
    return get_level(location_id=loc, sku_id=sku_id).on_hand


def test_owner_and_clerk_receiving_one_case_at_once_receive_it_once(live_server):
    owner, clerk = live_server.login("demo_store_owner"), live_server.login("demo_store_clerk")
    with live_server.db():
        [(case, sku_id)] = _codes("S1", state="in_transit", kind="case")
        units = db.session.scalar(sa.select(sa.func.count()).select_from(Code).where(
            Code.case_id == sa.select(Code.id).where(Code.serial == case).scalar_subquery()))
        shelf, transit = _on_hand("S1", sku_id), _transit_on_hand("S1", sku_id)
    calls = [_scan(case, "receive", owner if i % 2 else clerk) for i in range(20)]
    replies = fire(live_server.base_url, calls, processes=3)
    _no_server_errors(replies)
    assert Counter(r.answer for r in replies) == {"accepted": 1, "duplicate": 19}
    assert {r.body["reason"] for r in replies if r.answer == "duplicate"} == {"already_received"}
    [accepted] = [r.body for r in replies if r.answer == "accepted"]
    assert accepted["quantity"] == units and accepted["stock"]["on_hand"] == shelf + units
    with live_server.db():
        assert (_on_hand("S1", sku_id), _transit_on_hand("S1", sku_id)) == (shelf + units, transit - units)
        assert _events(case, "receive") == 1
        assert verify_stock() == []


def test_sells_racing_the_undo_of_the_sale(live_server):
    """Units are sold; then, all at once, each sale's undo (five times) and new sells of the unit (five times).
    The undo goes through once and at most one new sell, after it: no unit is ever sold twice."""
    owner = live_server.login("demo_store_owner")
    with live_server.db():
        units = _codes("S1", n=4)
        before = {sku: _on_hand("S1", sku) for _, sku in units}
    sales = {}
    for serial, _ in units:
        first = live_server.request("POST", "/api/mp/v1/scans", _scan(serial, "sell", owner).body, owner)
        assert first.status == 200 and first.answer == "accepted", first.body
        sales[serial] = first.body["event_id"]
    calls, whose = [], []
    for serial, _ in units:
        for _ in range(5):
            calls += [Call("POST", f"/api/mp/v1/scans/{sales[serial]}/undo", None, tuple(owner.items())),
                      _scan(serial, "sell", owner)]
            whose += [(serial, "undo"), (serial, "sell")]
    replies = fire(live_server.base_url, calls, processes=3)
    _no_server_errors(replies)
    resold: Counter = Counter()
    for serial, _ in units:
        undos = [r for (s, kind), r in zip(whose, replies, strict=True) if s == serial and kind == "undo"]
        sells = [r for (s, kind), r in zip(whose, replies, strict=True) if s == serial and kind == "sell"]
        assert sorted(r.status for r in undos) == [200] + [409] * 4, [(r.status, r.body) for r in undos]
        assert {r.error_code for r in undos if r.status == 409} == {"already_undone"}
        assert all(r.status == 200 and r.answer in ("accepted", "duplicate") for r in sells), [
            (r.status, r.body) for r in sells]
        resold[serial] = sum(r.answer == "accepted" for r in sells)
        assert resold[serial] <= 1
    with live_server.db():
        for serial, _ in units:
            state = db.session.scalar(sa.select(Code.state).where(Code.serial == serial))
            assert state == ("sold" if resold[serial] else "in_store")
            assert (_events(serial, "sell"), _events(serial, "undo")) == (1 + resold[serial], 1)
        for sku, was in before.items():
            # Each unit: sold, the sale undone, maybe sold once more.
            assert _on_hand("S1", sku) == was - sum(resold[s] for s, k in units if k == sku)
        assert verify_stock() == []


def _stock_new_units(store_code: str, sku_id: int, n: int) -> list[str]:
    """n fresh unit codes booked straight into a store's stock (a batch issued, then received by count)."""
    from app.codes.models import CodeBatch
    from app.codes.services import generate_batch
    from app.core.tx import transaction
    from app.inventory.services import move_stock

    with transaction():
        batch = CodeBatch(sku_id=sku_id, quantity=n, status="pending")
        db.session.add(batch)
    generate_batch(batch.id)
    s = _store(store_code)
    with transaction():
        db.session.execute(sa.update(Code).where(Code.batch_id == batch.id).values(
            state="in_store", store_id=s.id, location_id=s.location_id, destination_store_id=s.id,
            destination_distributor_id=s.distributor_id, destination_region=s.city_code))
        move_stock(location_id=s.location_id, sku_id=sku_id, on_hand=n, kind="receive", reason="test")
    return list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id).order_by(Code.id)))


def _owner_of(store_code: str, openid: str) -> None:
    from app.accounts.models import Membership, User
    from app.core.tx import transaction

    with transaction():
        user = User(openid=openid, display_name=openid)
        user.memberships.append(Membership(role="store_owner", store_id=_store(store_code).id))
        db.session.add(user)


def test_mixed_load_of_sells_from_several_stores_ends_exact(live_server):
    """Many sells of distinct units at three stores at once (single scans and offline batches, with duplicates and
    resent requests among them): each store's stock falls by exactly what was accepted there, and the books hold."""
    with live_server.db():
        sku_id = _codes("S1")[0][1]
        _owner_of("S3", "live_owner_s3")
        mine = {"S1": [s for s, _ in _codes("S1", n=24, sku_id=sku_id)],
                "S2": [s for s, _ in _codes("S2", n=18, sku_id=sku_id)],
                "S3": _stock_new_units("S3", sku_id, 30)}
        before = {code: _on_hand(code, sku_id) for code in mine}
        since = _last_event()  # some of these units were sold and the sale undone before
    heads = {"S1": [live_server.login("demo_store_owner"), live_server.login("demo_store_clerk")],
             "S2": [live_server.login("demo_store_owner_2")], "S3": [live_server.login("live_owner_s3")]}
    calls: list[Call] = []
    expected: Counter = Counter()
    for code, serials in mine.items():
        people = heads[code]
        singles, batched = serials[: len(serials) * 2 // 3], serials[len(serials) * 2 // 3:]
        for i, serial in enumerate(singles):
            calls.append(_scan(serial, "sell", people[i % len(people)]))
            if i % 4 == 0:  # someone scans the same unit again
                calls.append(_scan(serial, "sell", people[(i + 1) % len(people)]))
            if i % 5 == 0:  # a phone resends the very same request
                calls.append(calls[-1])
        items = [_scan(serial, "sell", people[0]).body for serial in batched]
        for k in range(0, len(items), 4):
            calls.append(Call("POST", "/api/mp/v1/scans/batch", {"items": items[k:k + 4]},
                              tuple(people[0].items())))
        expected[code] = len(serials)
    replies = fire(live_server.base_url, calls, processes=4)
    _no_server_errors(replies)
    accepted: Counter = Counter()
    for c, r in zip(calls, replies, strict=True):
        assert r.status == 200, (c, r.body)
        answers = r.body["items"] if c.path.endswith("/batch") else [r.body]
        for a in answers:
            assert a["status"] in ("accepted", "duplicate"), a
            if a["status"] == "accepted" and not a.get("replayed"):
                accepted[next(code for code, serials in mine.items() if a["serial"] in serials)] += 1
    assert accepted == expected
    with live_server.db():
        for code, serials in mine.items():
            assert _on_hand(code, sku_id) == before[code] - expected[code]
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Code).where(
                Code.serial.in_(serials), Code.state == "sold")) == len(serials)
            assert sum(_events(s, "sell", after=since) for s in serials) == len(serials)
        assert verify_stock() == []
