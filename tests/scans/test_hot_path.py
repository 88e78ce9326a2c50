"""The hot sell path (PostgreSQL's SQL functions) does exactly what the general path does, and leaves it the rest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from app.analytics.models import DailySales
from app.analytics.rollups import fold
from app.catalog.models import Sku, SkuPrice
from app.codes.models import Code, ScanEvent
from app.core.clock import today_business
from app.core.tx import transaction
from app.extensions import db
from app.incentives.models import IncentiveCredit, IncentiveRule
from app.inventory.models import StockLevel, StockMovement
from app.inventory.services import verify_ledger
from app.scans import hot, messages
from app.scans import services as scan_services
from app.scans.models import ScanRequest
from app.scans.services import EncodedAnswer, ScanInput, scan, scan_batch
from tests.scans.helpers import codes_in, on_hand, owner_principal, store


@dataclass
class Unit:
    id: int
    serial: str
    order_id: int | None


def _input(serial: str, **extra) -> ScanInput:
    return ScanInput(request_id=uuid.uuid4().hex, code=serial, action="sell",
                     scanned_at=datetime.now(UTC).replace(microsecond=0), **extra)


def _sold_today(store_id: int, sku_id: int) -> tuple[int, int]:
    db.session.remove()
    fold()
    row = db.session.execute(sa.select(DailySales.units, DailySales.amount_fen).where(
        DailySales.day == today_business(), DailySales.store_id == store_id, DailySales.sku_id == sku_id)).first()
    return tuple(row) if row else (0, 0)


def test_the_hot_and_general_paths_sell_alike(postgres, demo, monkeypatch):
    sku_id = codes_in("S1")[0].sku_id
    units = [Unit(c.id, c.serial, c.order_id) for c in codes_in("S1", n=4, sku_id=sku_id)]
    s1 = store("S1")
    # The sell's attribution: S1's distributor (D1) and its parent agent (A1), written by both paths.
    attribution = (s1.distributor_id, s1.distributor.parent_id)
    principal = owner_principal("S1")
    with transaction():
        db.session.add(IncentiveRule(sku_id=sku_id, step="sell", points=3, amount_fen=20, is_active=True))
    sku = db.session.get(Sku, sku_id)
    db.session.expunge(sku)
    s1 = SimpleNamespace(id=s1.id, location_id=s1.location_id, price_tier_id=s1.price_tier_id)
    price = db.session.scalar(sa.select(SkuPrice.price_fen).where(SkuPrice.sku_id == sku_id,
                                                                  SkuPrice.price_tier_id == s1.price_tier_id))
    before, sold_before = on_hand("S1", sku_id), _sold_today(s1.id, sku_id)
    inputs = [_input(u.serial, lat=30.27, lng=120.15) for u in units]

    hot_single = scan(principal, inputs[0])
    with monkeypatch.context() as m:
        m.setattr(scan_services, "_hot_enabled", lambda: False)
        general = scan(principal, inputs[1])
    hot_batch = scan_batch(principal, inputs[2:])
    answers = [hot_single, general, *hot_batch]
    assert [type(a) for a in answers] == [EncodedAnswer, dict, EncodedAnswer, EncodedAnswer]
    answers = [dict(a) for a in answers]

    # The same answer, key for key and in the same order, with the stock counting down one unit at a time.
    assert len({tuple(a) for a in answers}) == 1
    for n, (a, u, it) in enumerate(zip(answers, units, inputs, strict=True), start=1):
        assert a == {"request_id": it.request_id, "status": "accepted", "reason": None,
                     "message": messages.sold(sku.name, 1, sku.unit, before - n), "action": "sell",
                     "serial": u.serial, "code_state": "sold",
                     "sku": {"sku_id": sku_id, "name": sku.name, "unit": sku.unit, "gtin": sku.gtin}, "quantity": 1,
                     "stock": {"sku_id": sku_id, "on_hand": before - n}, "alerts": [],
                     "event_id": a["event_id"], "store_id": s1.id}
    db.session.remove()
    assert on_hand("S1", sku_id) == before - 4

    # The same rows behind each: code, event, ledger, incentive credit, the first answer for replays, the sale
    # for the rollups. The hot path keeps the request on the event, the general path in scan_requests.
    for n, (a, u, it) in enumerate(zip(answers, units, inputs, strict=True)):
        code = db.session.get(Code, u.id)
        assert (code.state, code.location_id, code.store_id, code.sold_at) == ("sold", None, s1.id, it.scanned_at)
        ev = db.session.get(ScanEvent, a["event_id"])
        assert (ev.code_id, ev.sku_id, ev.quantity, ev.action, ev.biz_step, ev.disposition, ev.store_id,
                ev.location_id, ev.event_time, ev.user_id, ev.order_id, ev.lat, ev.lng, ev.diverted) == (
            u.id, sku_id, 1, "sell", "retail_selling", "retail_sold", s1.id, s1.location_id, it.scanned_at,
            principal.user_id, u.order_id, 30.27, 120.15, False)
        assert (ev.partner_id, ev.agent_id) == attribution
        moves = db.session.execute(sa.select(
            StockMovement.location_id, StockMovement.sku_id, StockMovement.delta_on_hand,
            StockMovement.delta_reserved, StockMovement.kind, StockMovement.ref_type, StockMovement.user_id)
            .where(StockMovement.ref_id == str(u.id), StockMovement.kind == "sell")).all()
        assert [tuple(m) for m in moves] == [(s1.location_id, sku_id, -1, 0, "sell", "code", principal.user_id)]
        credit = db.session.execute(sa.select(IncentiveCredit.points, IncentiveCredit.amount_fen,
                                              IncentiveCredit.event_id, IncentiveCredit.store_id)
                                    .where(IncentiveCredit.code_id == u.id, IncentiveCredit.step == "sell")).one()
        assert tuple(credit) == (3, 20, ev.id, s1.id)
        stored = db.session.scalar(sa.select(ScanRequest.answer).where(
            ScanRequest.user_id == principal.user_id, ScanRequest.request_id == it.request_id))
        hot_path = n != 1
        assert (ev.request_id, ev.on_hand_after, stored) == (
            (it.request_id, before - n - 1, None) if hot_path else (None, None, a))
        assert scan_services._stored_answer(principal.user_id, it.request_id) == a
    assert _sold_today(s1.id, sku_id) == (sold_before[0] + 4, sold_before[1] + 4 * price)
    assert verify_ledger() == []

    # A replay is the first answer, marked as a replay: one at a time, or in a batch, however it was first done.
    for n in range(4):
        assert dict(scan(principal, ScanInput(**vars(inputs[n])))) == {**answers[n], "replayed": True}
    again = scan_batch(principal, [ScanInput(**vars(it)) for it in inputs])
    assert [dict(a) for a in again] == [{**a, "replayed": True} for a in answers]
    assert on_hand("S1", sku_id) == before - 4


def _nothing_sold(serial: str, store_code: str, **extra) -> None:
    s = store(store_code)
    code = db.session.execute(sa.select(Code.id, Code.state).where(Code.serial == serial)).first()
    item = hot.HotSell(user_id=owner_principal(store_code).user_id, request_id=uuid.uuid4().hex, serial=serial,
                       gtin=extra.get("gtin"), store_id=s.id, at=datetime.now(UTC))
    events = db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent))
    db.session.remove()
    assert hot.sell_one(item, tz="Asia/Shanghai") is None
    assert hot.sell_many([item], tz="Asia/Shanghai") == {}
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent)) == events
    if code is not None:
        assert db.session.get(Code, code.id).state == code.state


def test_anything_but_a_plain_sell_is_left_to_the_general_path(postgres, demo):
    sold = codes_in("S1")[0]
    assert scan(owner_principal("S1"), _input(sold.serial))["status"] == "accepted"
    _nothing_sold(sold.serial, "S1")  # already sold: a duplicate, answered with when and where
    _nothing_sold(codes_in("S1")[0].serial, "S2")  # another store's unit: diversion
    _nothing_sold(codes_in("S1", state="in_transit")[0].serial, "S1")  # not received yet
    _nothing_sold(codes_in("S1", kind="case")[0].serial if codes_in("S1", kind="case") else sold.serial, "S1")
    _nothing_sold(codes_in("S1")[0].serial, "S1", gtin="06900000000019")  # the printed GTIN is another SKU's
    from app.codes.parse import check_char

    _nothing_sold("ABCDEFGHJKMNP" + check_char("ABCDEFGHJKMNP"), "S1")  # well-formed, but never issued


def test_a_repeat_in_one_call_is_left_for_after_it(postgres, demo):
    code = codes_in("S1")[0]
    principal = owner_principal("S1")
    first, second = _input(code.serial), _input(code.serial)
    answers = scan_batch(principal, [first, second])
    assert [a["status"] for a in answers] == ["accepted", "duplicate"]
    assert answers[1]["reason"] == "already_sold"
    same = _input(codes_in("S1")[0].serial)
    answers = scan_batch(principal, [same, ScanInput(**vars(same))])
    assert [a["status"] for a in answers] == ["accepted", "refused"]
    assert answers[1]["reason"] == "duplicate_request_id"
    assert verify_ledger() == []


def test_a_level_below_the_codes_on_the_shelf_fails_the_call_and_the_general_path_refuses(postgres, demo):
    """Codes say units are on the shelf, a stocktake says none are: neither path lets stock go negative."""
    codes = [(c.id, c.serial) for c in codes_in("S1", n=2)]
    sku_id = codes_in("S1")[0].sku_id
    codes = [(c.id, c.serial) for c in codes_in("S1", n=2, sku_id=sku_id)]
    s1 = store("S1")
    with transaction():
        level = db.session.scalar(sa.select(StockLevel).where(StockLevel.location_id == s1.location_id,
                                                              StockLevel.sku_id == sku_id))
        from app.inventory.services import set_counted

        set_counted(location_id=s1.location_id, sku_id=sku_id, counted=level.reserved, user_id=None,
                    reason="test: counted none")
    principal = owner_principal("S1")
    with pytest.raises(scan_services.InsufficientStock):
        scan(principal, _input(codes[0][1]))
    answers = scan_batch(principal, [_input(serial) for _, serial in codes])
    assert {a["reason"] for a in answers} == {"insufficient_stock"}
    db.session.remove()
    assert {db.session.get(Code, code_id).state for code_id, _ in codes} == {"in_store"}
    assert verify_ledger() == []


def test_no_connection_for_the_hot_path_leaves_the_sell_to_the_general_path(postgres, demo, monkeypatch):
    """The hot path cannot get a connection (the server is full, say): the sell still happens, once."""
    code = codes_in("S1")[0]
    serial, sku_id = code.serial, code.sku_id
    before = on_hand("S1", sku_id)
    db.session.remove()
    db.engine.dispose()  # no kept connections: the hot path must open one

    def refuse(self):
        raise sa.exc.OperationalError("connect", {}, Exception("too many clients already"))

    monkeypatch.setattr(hot._HotConnections, "take", refuse)
    answer = scan(owner_principal("S1"), _input(serial))
    assert type(answer) is dict and answer["status"] == "accepted"  # the general path's answer
    assert on_hand("S1", sku_id) == before - 1
    assert verify_ledger() == []


def test_a_replay_after_an_undo_is_the_first_answer_and_sells_nothing(postgres, demo):
    """The unit is back on the shelf (its sell undone), so the function could sell it again: the request's
    record on the event undoes that call, and the general path answers with the first answer."""
    from app.scans.services import undo_scan

    code = codes_in("S1")[0]
    code_id, sku_id, serial = code.id, code.sku_id, code.serial
    principal = owner_principal("S1")
    first = _input(serial)
    answer = dict(scan(principal, first))
    undo_scan(principal, answer["event_id"])
    db.session.remove()
    level = on_hand("S1", sku_id)
    for again in (scan(principal, ScanInput(**vars(first))), scan_batch(principal, [ScanInput(**vars(first))])[0]):
        assert dict(again) == {**answer, "replayed": True}
    db.session.remove()
    assert db.session.get(Code, code_id).state == "in_store" and on_hand("S1", sku_id) == level
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScanEvent).where(
        ScanEvent.code_id == code_id, ScanEvent.action == "sell")) == 1
    assert verify_ledger() == []
