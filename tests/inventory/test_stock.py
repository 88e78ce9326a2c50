"""move_stock: the only way stock changes. Never negative, reserved within on hand, every change in the ledger."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import Location, StockLevel, StockMovement
from app.inventory.services import (
    InsufficientStock,
    get_level,
    move_stock,
    set_counted,
    transit_location_id,
    verify_ledger,
)


@pytest.fixture()
def spot(app_ctx, demo):
    """A fresh location and a SKU with nothing there yet."""
    with transaction():
        loc = Location(kind="warehouse", name="测试仓", city_code="330100")
        db.session.add(loc)
        db.session.flush()
        location_id = loc.id
    sku_id = db.session.scalar(sa.select(Sku.id).order_by(Sku.id))
    return location_id, sku_id


def _ledger(location_id, sku_id):
    return db.session.execute(
        sa.select(StockMovement.delta_on_hand, StockMovement.delta_reserved, StockMovement.kind)
        .where(StockMovement.location_id == location_id, StockMovement.sku_id == sku_id)
        .order_by(StockMovement.id)).all()


def test_moves_and_ledger(spot):
    loc, sku = spot
    with transaction():
        assert move_stock(location_id=loc, sku_id=sku, on_hand=10, kind="receive", ref_type="t", ref_id=1).on_hand == 10
        level = move_stock(location_id=loc, sku_id=sku, reserved=4, kind="reserve")
        assert (level.on_hand, level.reserved, level.available) == (10, 4, 6)
        level = move_stock(location_id=loc, sku_id=sku, on_hand=-4, reserved=-4, kind="ship")
        assert (level.on_hand, level.reserved) == (6, 0)
    assert _ledger(loc, sku) == [(10, 0, "receive"), (0, 4, "reserve"), (-4, -4, "ship")]
    assert get_level(location_id=loc, sku_id=sku).on_hand == 6
    assert verify_ledger() == []


def test_never_negative(spot):
    loc, sku = spot
    with transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=3, kind="receive")
    with pytest.raises(InsufficientStock) as info, transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=-4, kind="sell")
    assert info.value.details["on_hand"] == 3
    # Nothing in stock at all (no level row): still refused, not created negative.
    with pytest.raises(InsufficientStock), transaction():
        move_stock(location_id=loc, sku_id=sku + 1, on_hand=-1, kind="sell")
    assert get_level(location_id=loc, sku_id=sku).on_hand == 3
    assert len(_ledger(loc, sku)) == 1 and _ledger(loc, sku + 1) == []


def test_reserved_never_exceeds_on_hand(spot):
    loc, sku = spot
    with transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=5, reserved=2, kind="receive")
    for on_hand, reserved in ((0, 4), (-4, 0), (0, -3), (-1, 3)):
        with pytest.raises(InsufficientStock), transaction():
            move_stock(location_id=loc, sku_id=sku, on_hand=on_hand, reserved=reserved, kind="adjust")
    # Reserving more than arrives in the same movement is refused too (the upsert's guard).
    with pytest.raises(InsufficientStock), transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=1, reserved=5, kind="adjust")
    level = get_level(location_id=loc, sku_id=sku)
    assert (level.on_hand, level.reserved) == (5, 2)
    assert verify_ledger() == []


def test_first_movement_reserving_more_than_it_brings_is_refused(spot):
    loc, sku = spot
    with pytest.raises((InsufficientStock, ValueError)), transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=1, reserved=2, kind="receive")
    assert get_level(location_id=loc, sku_id=sku).on_hand == 0


def test_bad_calls(spot):
    loc, sku = spot
    with pytest.raises(ValueError):
        move_stock(location_id=loc, sku_id=sku, on_hand=1, kind="teleport")
    with pytest.raises(ValueError):
        move_stock(location_id=loc, sku_id=sku, kind="adjust")


def test_set_counted(spot):
    loc, sku = spot
    with transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=10, kind="receive")
        assert set_counted(location_id=loc, sku_id=sku, counted=7, user_id=None, reason="盘点").on_hand == 7
        assert set_counted(location_id=loc, sku_id=sku, counted=7, user_id=None, reason="盘点").on_hand == 7
    assert _ledger(loc, sku)[-1] == (-3, 0, "stocktake") and len(_ledger(loc, sku)) == 2
    from app.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        set_counted(location_id=loc, sku_id=sku, counted=-1, user_id=None, reason="x")


def test_transit_location_is_made_once(app_ctx, demo):
    store_loc = db.session.scalar(sa.select(Store.location_id).where(Store.code == "S1"))
    with transaction():
        first = transit_location_id(store_loc)
    with transaction():
        assert transit_location_id(store_loc) == first
    assert db.session.get(Location, first).kind == "transit"
    with pytest.raises(ValueError):
        transit_location_id(999999)


def test_demo_books_balance(app_ctx, demo):
    assert verify_ledger() == []


def _tamper(location_id, sku_id, delta):
    db.session.execute(sa.update(StockLevel).where(StockLevel.location_id == location_id,
                                                   StockLevel.sku_id == sku_id)
                       .values(on_hand=StockLevel.on_hand + delta))
    db.session.commit()


def test_verify_finds_a_tampered_level(app, spot):
    loc, sku = spot
    with transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=10, kind="receive")
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["stock", "verify"])
    assert ok.exit_code == 0 and "ok" in ok.output
    _tamper(loc, sku, +1)
    problems = verify_ledger()
    assert problems == [{"location_id": loc, "sku_id": sku, "level_on_hand": 11, "ledger_on_hand": 10,
                         "level_reserved": 0, "ledger_reserved": 0}]
    bad = runner.invoke(args=["stock", "verify"])
    assert bad.exit_code == 1 and f"location={loc} sku={sku}" in bad.output


def test_verify_finds_a_level_without_ledger_and_ledger_without_level(app_ctx, spot):
    loc, sku = spot
    db.session.add(StockLevel(location_id=loc, sku_id=sku, on_hand=5, reserved=0))
    db.session.add(StockMovement(location_id=loc, sku_id=sku + 1, delta_on_hand=2, delta_reserved=0, kind="adjust"))
    db.session.commit()
    found = {(p["location_id"], p["sku_id"]) for p in verify_ledger()}
    assert found == {(loc, sku), (loc, sku + 1)}


def test_concurrent_movements_end_exact(postgres, spot):
    app = postgres
    loc, sku = spot
    with transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=1000, kind="receive")
    db.session.remove()
    threads_n, moves = 16, 50
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work(i):
        delta = 1 if i % 2 == 0 else -1
        try:
            with app.app_context():
                barrier.wait()
                for _ in range(moves):
                    with transaction():
                        move_stock(location_id=loc, sku_id=sku, on_hand=delta, kind="adjust")
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert get_level(location_id=loc, sku_id=sku).on_hand == 1000
    assert len(_ledger(loc, sku)) == 1 + threads_n * moves
    assert verify_ledger() == []


def test_concurrent_sells_never_oversell(postgres, spot):
    app = postgres
    loc, sku = spot
    with transaction():
        move_stock(location_id=loc, sku_id=sku, on_hand=100, kind="receive")
    db.session.remove()
    barrier = threading.Barrier(16)
    sold: list[int] = []
    lock = threading.Lock()

    def work():
        ok = 0
        with app.app_context():
            barrier.wait()
            for _ in range(10):
                try:
                    with transaction():
                        move_stock(location_id=loc, sku_id=sku, on_hand=-1, kind="sell")
                    ok += 1
                except InsufficientStock:
                    pass
            db.session.remove()
        with lock:
            sold.append(ok)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sold) == 100
    assert get_level(location_id=loc, sku_id=sku).on_hand == 0
    assert verify_ledger() == []
