"""Every change of stock goes through `move_stock`: one guarded atomic update of the level and one ledger row.

Callers own the transaction (one use case, one commit); these helpers only flush (`create_warehouse`, a use case
of its own, takes the caller and owns its transaction). The level row is updated
with a single `UPDATE ... SET on_hand = on_hand + :d WHERE <result stays valid>` (or an upsert when stock only
grows), so concurrent scans of the same SKU at the same store serialize on the row lock and never lose an
update, on PostgreSQL and SQLite alike.

The lock order. Every use case takes its row locks in this one order, so no two of them can wait on each other
in a circle (a deadlock):

1. orders, by id (an order is locked before its codes and its stock: shipping, receiving, confirming receipt,
   allocating, cancelling; a consumer order likewise before the warehouse stock it ships);
2. codes: a case before its units, units in serial order (the order the hot sell path `scan_sell_many` takes);
3. stock levels, by (location_id, sku_id): a use case that changes more than one level locks them all first with
   `lock_levels` (or changes them in that order);
4. then only rows of its own: ledger rows, events, answers.

A scan batch applies each of its items that takes the general path in a transaction of its own, so a batch never
holds one item's rows while it waits for the next's. What still meets a deadlock (a level or a code a use case
makes itself, an order that moved between a look and a lock) is rolled back by PostgreSQL and run again by
`app.core.retry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from app.core import regions
from app.core.clock import now_utc
from app.core.db import on_postgres, pg_row
from app.core.security import Principal, authorize
from app.core.tx import transaction
from app.errors import AppError, Conflict, ValidationFailed
from app.extensions import db
from app.inventory.models import Location, StockLevel, StockMovement, Warehouse, WarehouseCity

MOVEMENT_KINDS = frozenset({
    "receive", "ship", "sell", "return", "adjust", "stocktake", "transfer_out", "transfer_in", "reserve",
    "release", "undo", "deliver", "seed",
})


class InsufficientStock(AppError):
    status, code, message = 409, "insufficient_stock", "库存不足"


@dataclass(frozen=True)
class Level:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


# On PostgreSQL the level change and its ledger row are one statement (the ledger row is written only when the
# guarded change went through); fixed texts, so neither Python nor the server builds them anew per movement.
_PG_LEDGER = (
    " m AS (INSERT INTO stock_movements (location_id, sku_id, delta_on_hand, delta_reserved, kind, ref_type,"
    " ref_id, user_id, reason, created_at)"
    " SELECT :location_id, :sku_id, :on_hand, :reserved, :kind, CAST(:ref_type AS varchar),"
    " CAST(:ref_id AS varchar), CAST(:user_id AS bigint), CAST(:reason AS varchar), :now FROM l)"
    " SELECT on_hand, reserved FROM l")
_PG_CHANGE = sa.text(
    "WITH l AS (UPDATE stock_levels SET on_hand = on_hand + :on_hand, reserved = reserved + :reserved,"
    " updated_at = :now WHERE location_id = :location_id AND sku_id = :sku_id AND on_hand + :on_hand >= 0"
    " AND reserved + :reserved >= 0 AND reserved + :reserved <= on_hand + :on_hand RETURNING on_hand, reserved),"
    + _PG_LEDGER)
_PG_GROW = sa.text(
    "WITH l AS (INSERT INTO stock_levels (location_id, sku_id, on_hand, reserved, updated_at)"
    " VALUES (:location_id, :sku_id, :on_hand, :reserved, :now) ON CONFLICT (location_id, sku_id) DO UPDATE"
    " SET on_hand = stock_levels.on_hand + EXCLUDED.on_hand, reserved = stock_levels.reserved + EXCLUDED.reserved,"
    " updated_at = EXCLUDED.updated_at"
    " WHERE stock_levels.reserved + EXCLUDED.reserved <= stock_levels.on_hand + EXCLUDED.on_hand"
    " RETURNING on_hand, reserved),"
    + _PG_LEDGER)


def move_stock(*, location_id: int, sku_id: int, on_hand: int = 0, reserved: int = 0, kind: str,
               ref_type: str | None = None, ref_id: str | int | None = None, user_id: int | None = None,
               reason: str | None = None) -> Level:
    """Change one stock level by (on_hand, reserved) and append the ledger row; refuse to go negative."""
    if kind not in MOVEMENT_KINDS:
        raise ValueError(f"unknown movement kind {kind!r}")
    if on_hand == 0 and reserved == 0:
        raise ValueError("a stock movement must change something")
    now = now_utc()
    # Growing (or reserving no more than arrives): an upsert can never break an invariant... except reserving
    # beyond what is free, which the WHERE on the conflict branch refuses.
    grows = on_hand >= 0 and reserved >= 0 and reserved <= on_hand
    if on_postgres():
        row = pg_row(_PG_GROW if grows else _PG_CHANGE, {
            "location_id": location_id, "sku_id": sku_id, "on_hand": on_hand, "reserved": reserved, "kind": kind,
            "ref_type": ref_type, "ref_id": None if ref_id is None else str(ref_id), "user_id": user_id,
            "reason": reason, "now": now})
        if row is None:
            _refuse(location_id, sku_id, on_hand, reserved)
        return Level(on_hand=row[0], reserved=row[1])
    table = StockLevel.__table__
    if grows:
        insert = sqlite.insert(table).values(
            location_id=location_id, sku_id=sku_id, on_hand=on_hand, reserved=reserved, updated_at=now)
        stmt = insert.on_conflict_do_update(
            index_elements=[table.c.location_id, table.c.sku_id],
            set_={"on_hand": table.c.on_hand + on_hand, "reserved": table.c.reserved + reserved,
                  "updated_at": now},
            where=(table.c.reserved + reserved) <= (table.c.on_hand + on_hand),
        ).returning(table.c.on_hand, table.c.reserved)
    else:
        stmt = (
            sa.update(table)
            .where(table.c.location_id == location_id, table.c.sku_id == sku_id,
                   table.c.on_hand + on_hand >= 0, table.c.reserved + reserved >= 0,
                   table.c.reserved + reserved <= table.c.on_hand + on_hand)
            .values(on_hand=table.c.on_hand + on_hand, reserved=table.c.reserved + reserved, updated_at=now)
            .returning(table.c.on_hand, table.c.reserved)
        )
    row = db.session.execute(stmt).first()
    if row is None:
        _refuse(location_id, sku_id, on_hand, reserved)
    db.session.execute(sa.insert(StockMovement.__table__).values(
        location_id=location_id, sku_id=sku_id, delta_on_hand=on_hand, delta_reserved=reserved, kind=kind,
        ref_type=ref_type, ref_id=None if ref_id is None else str(ref_id), user_id=user_id, reason=reason,
        created_at=now))
    return Level(on_hand=row[0], reserved=row[1])


def lock_levels(keys: Iterable[tuple[int, int]]) -> None:
    """Lock the stock levels of these (location_id, sku_id) keys that exist, in the lock order (see above), before
    a use case changes several of them; one key needs no lock of its own (its guarded update takes it)."""
    keys = sorted(set(keys))
    if len(keys) < 2 or not on_postgres():
        return  # SQLite locks the whole database for a write: no row order to keep
    table = StockLevel.__table__
    db.session.execute(
        sa.select(table.c.id)
        .where(sa.tuple_(table.c.location_id, table.c.sku_id).in_(keys))
        .order_by(table.c.location_id, table.c.sku_id)
        .with_for_update())


def _refuse(location_id: int, sku_id: int, on_hand: int, reserved: int) -> NoReturn:
    current = get_level(location_id=location_id, sku_id=sku_id)
    raise InsufficientStock(details={"location_id": location_id, "sku_id": sku_id, "on_hand": current.on_hand,
                                     "reserved": current.reserved, "requested_on_hand": on_hand,
                                     "requested_reserved": reserved})


def get_level(*, location_id: int, sku_id: int) -> Level:
    """The current level (zero when the location never held the SKU)."""
    row = db.session.execute(
        sa.select(StockLevel.on_hand, StockLevel.reserved)
        .where(StockLevel.location_id == location_id, StockLevel.sku_id == sku_id)
    ).first()
    return Level(on_hand=row[0], reserved=row[1]) if row else Level(0, 0)


def set_counted(*, location_id: int, sku_id: int, counted: int, user_id: int | None, reason: str) -> Level:
    """Stocktake: bring on hand to what was counted, by an adjustment the ledger explains."""
    if counted < 0:
        raise ValidationFailed("盘点数量不能小于 0", details={"fields": {"counted": ["不能小于 0"]}})
    current = get_level(location_id=location_id, sku_id=sku_id)
    delta = counted - current.on_hand
    if delta == 0:
        return current
    return move_stock(location_id=location_id, sku_id=sku_id, on_hand=delta, kind="stocktake",
                      user_id=user_id, reason=reason)


def verify_ledger() -> list[dict]:
    """Every level that does not equal the sum of its ledger (empty when the books balance)."""
    sums = (
        sa.select(StockMovement.location_id, StockMovement.sku_id,
                  sa.func.sum(StockMovement.delta_on_hand).label("on_hand"),
                  sa.func.sum(StockMovement.delta_reserved).label("reserved"))
        .group_by(StockMovement.location_id, StockMovement.sku_id)
        .subquery()
    )
    lv = StockLevel
    stmt = (
        sa.select(sa.func.coalesce(lv.location_id, sums.c.location_id), sa.func.coalesce(lv.sku_id, sums.c.sku_id),
                  lv.on_hand, lv.reserved, sums.c.on_hand, sums.c.reserved)
        .select_from(sa.join(lv, sums, sa.and_(lv.location_id == sums.c.location_id, lv.sku_id == sums.c.sku_id),
                             full=True))
    )
    problems = []
    for loc, sku, on_hand, reserved, led_on_hand, led_reserved in db.session.execute(stmt):
        if (on_hand or 0) != (led_on_hand or 0) or (reserved or 0) != (led_reserved or 0):
            problems.append({"location_id": loc, "sku_id": sku, "level_on_hand": on_hand or 0,
                             "ledger_on_hand": int(led_on_hand or 0), "level_reserved": reserved or 0,
                             "ledger_reserved": int(led_reserved or 0)})
    return problems


def transit_location_id(destination_location_id: int) -> int:
    """The location holding goods on their way to `destination_location_id` (made on first use)."""
    found = db.session.scalar(sa.select(Location.id).where(Location.destination_id == destination_location_id))
    if found:
        return found
    dest = db.session.get(Location, destination_location_id)
    if dest is None:
        raise ValueError(f"no location {destination_location_id}")
    # Two shipments racing to create it: the unique constraint lets one win; the other reads the winner's row.
    try:
        with db.session.begin_nested():
            loc = Location(kind="transit", name=f"在途→{dest.name}", city_code=dest.city_code,
                           destination_id=destination_location_id)
            db.session.add(loc)
        return loc.id
    except sa.exc.IntegrityError:
        return db.session.scalar(sa.select(Location.id).where(Location.destination_id == destination_location_id))


def create_location(*, kind: str, name: str, city_code: str | None) -> Location:
    loc = Location(kind=kind, name=name, city_code=city_code)
    db.session.add(loc)
    db.session.flush()
    return loc


def create_warehouse(principal: Principal, *, code: str, name: str, kind: str, city_code: str,
                     serves: list[str] | None = None) -> Warehouse:
    """A warehouse with its stock location; a sub-warehouse lists the cities it serves (HQ)."""
    authorize(principal, "hq.write")
    if kind not in ("central", "sub"):
        raise ValidationFailed("仓库类型只能是 central 或 sub")
    serves = list(serves or [])
    for city in [city_code, *serves]:
        if not regions.is_valid(city, "city"):
            raise ValidationFailed("城市代码不对", code="unknown_region", details={"region_code": city})
    with transaction():
        return _create_warehouse(code=code, name=name, kind=kind, city_code=city_code, serves=serves)


def _create_warehouse(*, code: str, name: str, kind: str, city_code: str, serves: list[str]) -> Warehouse:
    if len(set(serves)) != len(serves) or (serves and db.session.scalar(
            sa.select(WarehouseCity.id).where(WarehouseCity.city_code.in_(serves)).limit(1))):
        raise Conflict("有城市已经由别的分仓服务", code="city_already_served")
    if db.session.scalar(sa.select(Warehouse.id).where(Warehouse.code == code)):
        raise Conflict("仓库编号已存在", code="warehouse_code_taken")
    loc = create_location(kind="warehouse", name=name, city_code=city_code)
    wh = Warehouse(code=code, name=name, kind=kind, city_code=city_code, location_id=loc.id)
    for city in serves:
        wh.cities.append(WarehouseCity(city_code=city))
    db.session.add(wh)
    db.session.flush()
    return wh
