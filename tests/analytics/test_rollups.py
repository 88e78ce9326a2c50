"""Sells, returns and undos record their units in their own transaction; a fold adds them to the rollups exactly
once; a rebuild from the events agrees."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.analytics.models import DailySales, DailySellIn
from app.analytics.rollups import aggregate, fold, rebuild
from app.channel.models import Store
from app.core.clock import business_day, now_utc, today_business
from app.core.events import units_shipped
from app.core.tx import transaction
from app.extensions import db
from app.scans.inbox import note_sale
from tests.conftest import mp_login


def cells(start, end):
    db.session.remove()
    fold()
    return sorted(tuple(r) for r in db.session.execute(
        sa.select(DailySales.day, DailySales.sku_id, DailySales.store_id, DailySales.units, DailySales.amount_fen)
        .where(DailySales.day >= start, DailySales.day <= end)))


def city_cells(day):
    from app.analytics.models import DailyCitySales

    db.session.remove()
    fold()
    return sorted(tuple(r) for r in db.session.execute(
        sa.select(DailyCitySales.sku_id, DailyCitySales.city_code, DailyCitySales.units, DailyCitySales.amount_fen)
        .where(DailyCitySales.day == day)))


def _store(code):
    return db.session.execute(sa.select(Store.id, Store.distributor_id).where(Store.code == code)).one()


def test_signal_records_in_the_senders_transaction_and_a_fold_adds_it_once(demo):
    s1 = _store("S1")
    s1_id, dist_id = s1.id, s1.distributor_id
    sku_id = 1
    at = datetime(2026, 1, 5, 17, 30, tzinfo=UTC)  # 01:30 on 6 January in Shanghai
    with transaction():
        note_sale(store_id=s1.id, sku_id=sku_id, quantity=2, at=at, amount_fen=9600, event_id=1)
        note_sale(store_id=s1.id, sku_id=sku_id, quantity=-1, at=at, amount_fen=-4800, event_id=2)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DailySales).where(
        DailySales.store_id == s1_id, DailySales.day == business_day(at))) == 0  # not folded yet
    assert fold() == 2
    assert fold() == 0
    row = db.session.execute(sa.select(DailySales).where(DailySales.store_id == s1.id,
                                                          DailySales.sku_id == sku_id)
                             .where(DailySales.day == business_day(at))).scalar_one()
    assert row.day.isoformat() == "2026-01-06"
    assert (row.units, row.amount_fen, row.city_code, row.distributor_id) == (1, 4800, "330100", dist_id)
    # A failing use case takes its rollup change with it.
    with pytest.raises(RuntimeError), transaction():
        note_sale(store_id=s1.id, sku_id=sku_id, quantity=5, at=at, amount_fen=1, event_id=3)
        raise RuntimeError("boom")
    db.session.remove()
    assert fold() == 0
    assert db.session.scalar(sa.select(DailySales.units).where(DailySales.store_id == s1_id,
                                                               DailySales.day == business_day(at))) == 1


def test_units_shipped_feeds_sell_in(demo):
    s2 = _store("S2")
    with transaction():
        units_shipped.send(None, store_id=s2.id, sku_id=2, quantity=16, at=now_utc(), order_id=None, warehouse_id=1)
    assert db.session.scalar(sa.select(DailySellIn.units).where(DailySellIn.store_id == s2.id,
                                                                DailySellIn.sku_id == 2,
                                                                DailySellIn.day == today_business())) >= 16


def test_rebuild_equals_incremental_for_signal_events(demo):
    """Drive the receivers with a stream of events, then rebuild the same range from the same stream."""
    stores = [_store("S1").id, _store("S2").id, _store("S9").id]
    base = datetime(2025, 3, 1, tzinfo=UTC)
    events = []
    for i in range(120):
        qty = -1 if i % 7 == 0 else 1 + i % 3
        events.append({"store_id": stores[i % 3], "sku_id": 1 + i % 4, "quantity": qty,
                       "at": base + timedelta(hours=5 * i), "amount_fen": qty * 100, "event_id": i})
    with transaction():
        for e in events:
            note_sale(**e)
    start, end = business_day(base), business_day(events[-1]["at"])
    incremental = cells(start, end)
    with transaction():
        rebuild(start, end, events=events)
    assert cells(start, end) == incremental
    assert sum(c[3] for c in incremental) == sum(e["quantity"] for e in events)
    assert len(aggregate(events, start, start)) < len(incremental)


def _scan(client, headers, **body):
    body.setdefault("request_id", uuid.uuid4().hex)
    body.setdefault("scanned_at", now_utc().isoformat())
    resp = client.post("/api/mp/v1/scans", json=body, headers=headers)
    assert resp.status_code in (200, 201), resp.get_json()
    return resp.get_json()


def test_rebuild_from_real_scan_events_equals_incremental(client, demo):
    """Sell, return and undo through the scans API; the rebuild from scan_events gives the same rollup."""
    pytest.importorskip("app.scans.services")
    from app.catalog.models import Sku
    from app.codes.models import Code

    owner = mp_login(client, "demo_store_owner")
    s1 = _store("S1")
    serials = list(db.session.scalars(sa.select(Code.serial).where(Code.store_id == s1.id, Code.state == "in_store",
                                                                   Code.kind == "unit").order_by(Code.id).limit(4)))
    assert len(serials) == 4
    yesterday = (now_utc() - timedelta(days=1)).isoformat()
    # The unit sold yesterday (an offline queue) was on the shelf before then: a sale dated before the unit's
    # arrival would be recorded at the server's time.
    from app.codes.models import ScanEvent

    with transaction():
        db.session.execute(sa.update(ScanEvent).where(ScanEvent.code_id == sa.select(Code.id).where(
            Code.serial == serials[3]).scalar_subquery()).values(event_time=now_utc() - timedelta(days=2)))
    sold = [_scan(client, owner, code=s, action="sell", store_id=s1.id) for s in serials[:3]]
    _scan(client, owner, code=serials[3], action="sell", store_id=s1.id, scanned_at=yesterday)
    _scan(client, owner, code=serials[0], action="return", store_id=s1.id)
    undo = client.post(f"/api/mp/v1/scans/{sold[1]['event_id']}/undo", headers=owner)
    assert undo.status_code in (200, 201), undo.get_json()
    bisc = db.session.execute(sa.select(Sku.id, Sku.gtin).where(Sku.serialized.is_(False))).one()
    _scan(client, owner, code=bisc.gtin, action="sell", store_id=s1.id, quantity=3)
    start, end = today_business() - timedelta(days=1), today_business()
    # Yesterday's history rows were written without events: clear the range and replay the scans into it.
    with transaction():
        rebuild(start, end)
    rebuilt = cells(start, end)
    # The incremental path again, from scratch: the same scans through the same receivers.
    from app.analytics.rollups import sell_events

    with transaction():
        db.session.execute(sa.delete(DailySales).where(DailySales.day >= start, DailySales.day <= end))
        for e in sell_events(start, end):
            note_sale(**e)
    assert cells(start, end) == rebuilt
    today = {(c[1], c[2]): c[3] for c in rebuilt if c[0] == today_business()}
    # 3 sold, 1 returned, 1 undone today; 3 biscuits by GTIN.
    sku_of = dict(db.session.execute(sa.select(Code.serial, Code.sku_id).where(Code.serial.in_(serials))).all())
    milk_today = sum(1 for s in serials[:3] if sku_of[s] == sku_of[serials[0]]) - 1 - (
        1 if sku_of[serials[1]] == sku_of[serials[0]] else 0)
    assert today.get((sku_of[serials[0]], s1.id), 0) == milk_today
    assert today[(bisc.id, s1.id)] == 3


def test_incremental_during_scans_matches_rebuild(client, demo):
    """The rows the receivers wrote as the scans happened equal the rows rebuilt from scan_events."""
    pytest.importorskip("app.scans.services")
    from app.catalog.models import Sku
    from app.codes.models import Code

    owner = mp_login(client, "demo_store_owner")
    s1 = _store("S1")
    today = today_business()
    with transaction():  # start today from zero so that the receivers alone fill it
        db.session.execute(sa.delete(DailySales).where(DailySales.day == today))
        from app.analytics.rollups import refresh_city_rollup

        refresh_city_rollup(today, today)
    serials = list(db.session.scalars(sa.select(Code.serial).where(Code.store_id == s1.id, Code.state == "in_store",
                                                                   Code.kind == "unit").order_by(Code.id).limit(3)))
    answers = [_scan(client, owner, code=s, action="sell", store_id=s1.id) for s in serials]
    _scan(client, owner, code=serials[2], action="return", store_id=s1.id)
    client.post(f"/api/mp/v1/scans/{answers[0]['event_id']}/undo", headers=owner)
    bisc = db.session.execute(sa.select(Sku.id, Sku.gtin).where(Sku.serialized.is_(False))).one()
    _scan(client, owner, code=bisc.gtin, action="sell", store_id=s1.id, quantity=2)
    incremental = cells(today, today)
    assert incremental
    city_before = city_cells(today)
    with transaction():
        rebuild(today, today)
    assert cells(today, today) == incremental
    assert city_cells(today) == city_before


def test_city_rollup_is_the_sum_of_the_store_rollup(demo):
    """The demo history, the receivers and a rebuild all keep daily_city_sales = daily_sales summed by city."""
    from app.analytics.models import DailyCitySales

    s2 = _store("S2")
    with transaction():
        note_sale(store_id=s2.id, sku_id=3, quantity=4, at=now_utc(), amount_fen=400, event_id=9)

    def by_city():
        stores = {(d, k, c): int(u) for d, k, c, u in db.session.execute(
            sa.select(DailySales.day, DailySales.sku_id, DailySales.city_code, sa.func.sum(DailySales.units))
            .group_by(DailySales.day, DailySales.sku_id, DailySales.city_code))}
        cities = {(d, k, c): u for d, k, c, u in db.session.execute(
            sa.select(DailyCitySales.day, DailyCitySales.sku_id, DailyCitySales.city_code, DailyCitySales.units))}
        return stores, cities

    fold()
    stores, cities = by_city()
    assert stores and stores == cities
    from app.analytics.models import DailyCityTotal

    per_day: dict = {}
    for (d, _k, c), u in stores.items():
        per_day[(d, c)] = per_day.get((d, c), 0) + u
    totals = {(d, c): u for d, c, u in db.session.execute(
        sa.select(DailyCityTotal.day, DailyCityTotal.city_code, DailyCityTotal.units))}
    assert totals == per_day


def test_rebuild_command(app, demo):
    from app.analytics.cli import register_cli

    if "analytics" not in app.cli.commands:
        register_cli(app)
    day = today_business().isoformat()
    result = app.test_cli_runner().invoke(args=["analytics", "rebuild", "--from", day, "--to", day])
    assert result.exit_code == 0, result.output
    assert "rebuilt daily_sales" in result.output


def test_sales_committed_while_folding_are_counted_exactly_once(postgres, demo):
    """Stores sell (hot path and general path) on several threads while another thread keeps folding: at the end
    the rollups equal a rebuild from the scan events, nothing lost and nothing counted twice."""
    import threading

    from app.codes.models import Code
    from app.scans.services import ScanInput, scan, scan_batch
    from tests.scans.helpers import owner_principal, stock_store_with_codes

    today = today_business()
    with transaction():  # today starts from zero, so the folds alone fill it
        rebuild(today, today, events=[])
    sku_id = db.session.scalar(sa.select(Code.sku_id).where(Code.kind == "unit").order_by(Code.id).limit(1))
    serials = stock_store_with_codes("S1", sku_id, 600)
    principal = owner_principal("S1")
    db.session.remove()
    app = postgres
    done = threading.Event()
    errors: list = []

    def item(serial):
        return ScanInput(request_id=uuid.uuid4().hex, code=serial, action="sell", scanned_at=now_utc())

    def seller(chunk):
        with app.app_context():
            try:
                for s in chunk[:20]:
                    assert scan(principal, item(s))["status"] == "accepted"
                answers = scan_batch(principal, [item(s) for s in chunk[20:]])
                assert all(a["status"] == "accepted" for a in answers)
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    def folder():
        with app.app_context():
            try:
                while not done.is_set():
                    fold(batch=7)
            except Exception as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    folding = threading.Thread(target=folder)
    folding.start()
    sellers = [threading.Thread(target=seller, args=(serials[i::4],)) for i in range(4)]
    for t in sellers:
        t.start()
    for t in sellers:
        t.join()
    done.set()
    folding.join()
    assert not errors, errors
    incremental = cells(today, today)
    assert sum(c[3] for c in incremental if c[1] == sku_id and c[2] == _store("S1").id) == 600
    with transaction():
        rebuild(today, today)
    assert cells(today, today) == incremental
