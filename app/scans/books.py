"""The books as a whole: `flask stock verify`. Every stock level equals its ledger (`app.inventory`), and for
one-item-one-code SKUs the stock equals the unit codes where it is (a store's shelf, on its way to a store, a
warehouse's shelf) and no unit was sold twice (codes and scans):
it reads all three, so it lives above them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.extensions import db
from app.inventory.models import Location, StockLevel, StockMovement
from app.inventory.services import verify_ledger

STOCKED_UNIT_STATES = ("in_store", "returned")


def verify_stock() -> list[dict]:
    """Everything `flask stock verify` checks; empty when the books are right. Each problem has a `kind`:

    - `ledger`: a level is not the sum of its ledger (`verify_ledger`);
    - `unit_count`: for a serialized SKU, a store's on hand is not the number of its unit codes on its shelf
      (in_store, returned) plus the opening stock booked there by count, or the stock on its way to a store is
      not the number of unit codes in transit to it;
    - `warehouse_unit_count`: for a serialized SKU, a warehouse's on hand is not the number of its unit codes
      `in_warehouse` there plus the opening stock booked there by count (named by warehouse and SKU): goods that
      left, or came in, by count only, their codes left behind;
    - `sold_twice`: a unit code was sold again without a return or an undo in between (or returned unsold).
    A level can equal its ledger while one serial is sold eight times; the last three catch that.
    """
    return ([{"kind": "ledger", **p} for p in verify_ledger()] + _verify_unit_counts()
            + _verify_warehouse_units() + _verify_sells() + verify_event_references())


def _opening_by_count(serialized) -> dict[tuple[int, int], int]:
    """Opening stock booked by count (the demo's shelves and warehouses) has no codes: the one part a level may
    hold beyond its unit codes. By (location, SKU)."""
    return {(loc, sku): int(n) for loc, sku, n in db.session.execute(
        sa.select(StockMovement.location_id, StockMovement.sku_id, sa.func.sum(StockMovement.delta_on_hand))
        .where(StockMovement.kind == "seed", StockMovement.sku_id.in_(serialized))
        .group_by(StockMovement.location_id, StockMovement.sku_id))}


def _verify_warehouse_units() -> list[dict]:
    from app.catalog.models import Sku
    from app.codes.models import Code
    from app.inventory.models import Warehouse

    serialized = sa.select(Sku.id).where(Sku.serialized.is_(True))
    warehouses = {loc: (wid, name) for wid, loc, name in db.session.execute(
        sa.select(Warehouse.id, Warehouse.location_id, Warehouse.name))}
    locations = sa.select(Warehouse.location_id)
    shelved = {(loc, sku): n for loc, sku, n in db.session.execute(
        sa.select(Code.location_id, Code.sku_id, sa.func.count())
        .where(Code.kind == "unit", Code.state == "in_warehouse", Code.location_id.in_(locations))
        .group_by(Code.location_id, Code.sku_id))}
    levels = {(loc, sku): n for loc, sku, n in db.session.execute(
        sa.select(StockLevel.location_id, StockLevel.sku_id, StockLevel.on_hand)
        .where(StockLevel.sku_id.in_(serialized), StockLevel.location_id.in_(locations)))}
    opening = _opening_by_count(serialized)
    codes_of = dict(db.session.execute(sa.select(Sku.id, Sku.code).where(Sku.serialized.is_(True))).all())
    problems = []
    for loc, sku in sorted(set(levels) | set(shelved)):
        on_hand, units, seeded = levels.get((loc, sku), 0), shelved.get((loc, sku), 0), opening.get((loc, sku), 0)
        if on_hand != units + seeded:
            wid, name = warehouses[loc]
            problems.append({"kind": "warehouse_unit_count", "warehouse_id": wid, "warehouse": name,
                             "location_id": loc, "sku_id": sku, "sku": codes_of.get(sku), "on_hand": on_hand,
                             "unit_codes": units, "uncoded_opening": seeded})
    return problems



# What points at an event. On PostgreSQL `scan_events` is partitioned by month and nothing can hold a foreign key
# to its id (app/core/partitions.py), so this check stands in for the four the engine kept before.
EVENT_REFERENCES = (("scan_events", "parent_event_id"), ("scan_events", "corrects_event_id"),
                    ("diversion_alerts", "event_id"), ("incentive_credits", "event_id"))


def verify_event_references() -> list[dict]:
    """`dangling_event`: a row naming an event that does not exist. Ids below the oldest event kept are not
    counted: their months were archived (`flask partitions archive`), as intended."""
    out = []
    oldest = db.session.execute(sa.text("SELECT min(id) FROM scan_events")).scalar()
    for table, column in EVENT_REFERENCES:
        rows = db.session.execute(sa.text(
            f"SELECT t.{column}, count(*) FROM {table} t WHERE t.{column} IS NOT NULL"
            f" AND t.{column} >= :oldest AND NOT EXISTS (SELECT 1 FROM scan_events e WHERE e.id = t.{column})"
            f" GROUP BY t.{column} ORDER BY 1 LIMIT 100"), {"oldest": oldest if oldest is not None else 0}).all()
        out += [{"kind": "dangling_event", "table": table, "column": column, "event_id": event_id, "rows": n}
                for event_id, n in rows]
    return out


def _verify_unit_counts() -> list[dict]:
    from app.catalog.models import Sku
    from app.channel.models import Store
    from app.codes.models import Code

    serialized = sa.select(Sku.id).where(Sku.serialized.is_(True))
    transit = aliased(Location)
    # Where each stocked unit is, as a stock level would count it: its store's shelf, or in transit to a store.
    on_shelf = (sa.select(Code.location_id, Code.sku_id, sa.func.count())
                .where(Code.kind == "unit", Code.state.in_(STOCKED_UNIT_STATES), Code.location_id.is_not(None))
                .group_by(Code.location_id, Code.sku_id))
    in_transit = (sa.select(transit.id, Code.sku_id, sa.func.count())
                  .select_from(Code).join(Store, Store.id == Code.destination_store_id)
                  .join(transit, transit.destination_id == Store.location_id)
                  .where(Code.kind == "unit", Code.state == "in_transit")
                  .group_by(transit.id, Code.sku_id))
    counted = {(loc, sku): n for loc, sku, n in [*db.session.execute(on_shelf), *db.session.execute(in_transit)]}
    store_locations = sa.select(Store.location_id)
    to_stores = sa.select(Location.id).where(Location.kind == "transit",
                                             Location.destination_id.in_(store_locations))
    levels = {(loc, sku): n for loc, sku, n in db.session.execute(
        sa.select(StockLevel.location_id, StockLevel.sku_id, StockLevel.on_hand).where(
            StockLevel.sku_id.in_(serialized),
            sa.or_(StockLevel.location_id.in_(store_locations), StockLevel.location_id.in_(to_stores))))}
    uncoded = _opening_by_count(serialized)
    shelves = set(db.session.scalars(store_locations)) | set(db.session.scalars(to_stores))
    problems = []
    for key in sorted(set(levels) | {k for k in counted if k[0] in shelves}):
        on_hand, codes, opening = levels.get(key, 0), counted.get(key, 0), uncoded.get(key, 0)
        if on_hand != codes + opening:
            problems.append({"kind": "unit_count", "location_id": key[0], "sku_id": key[1], "on_hand": on_hand,
                             "unit_codes": codes, "uncoded_opening": opening})
    return problems


def _verify_sells() -> list[dict]:
    from app.codes.models import Code, ScanEvent

    undo = aliased(ScanEvent)
    # Each unit's sells (+1) and returns (-1) in the order they happened, leaving out those undone: the running
    # balance must stay 0 or 1 (a serial is either on a shelf or sold once).
    step = (sa.select(ScanEvent.code_id, sa.func.sum(sa.case((ScanEvent.action == "sell", 1), else_=-1)).over(
        partition_by=ScanEvent.code_id, order_by=ScanEvent.id).label("balance"))
        .where(ScanEvent.action.in_(("sell", "return")), ScanEvent.code_id.is_not(None),
               ~sa.exists().where(undo.corrects_event_id == ScanEvent.id))
        .subquery())
    rows = db.session.execute(
        sa.select(step.c.code_id, Code.serial, sa.func.min(step.c.balance), sa.func.max(step.c.balance))
        .join(Code, Code.id == step.c.code_id)
        .group_by(step.c.code_id, Code.serial)
        .having(sa.or_(sa.func.max(step.c.balance) > 1, sa.func.min(step.c.balance) < 0))
        .order_by(step.c.code_id))
    return [{"kind": "sold_twice", "code_id": code_id, "serial": serial, "lowest": low, "highest": high}
            for code_id, serial, low, high in rows]
