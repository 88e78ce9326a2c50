"""Writes about codes: issuing batches (a background job), putting codes away, shipping them to stores, and HQ's
scan policy.

The use cases (`create_batch`, `put_away`) take the caller, check them and own their
transaction. `ship_codes` is a step of a shipment and runs in its caller's transaction (`app.orders`); the job
and the sweeper run as the system. Scans at the store (receive, sell, return, undo) live in `app.scans.services`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
import sqlalchemy as sa
from flask import current_app

from app.catalog.models import Sku
from app.channel.models import Store
from app.codes.models import BIZ_STEPS, Code, CodeBatch, ScanEvent
from app.codes.parse import ScanParseError, new_serials, normalize_serial
from app.core.clock import now_utc
from app.core.retry import retried
from app.core.security import Principal, authorize
from app.core.tx import require_transaction, transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.inventory.models import Warehouse
from app.inventory.services import move_stock

log = logging.getLogger(__name__)

MAX_BATCH = 1_000_000
CHUNK = 10_000  # units per transaction of the job: progress moves, and a crash loses at most one chunk


def create_batch(principal: Principal, *, sku_id: int, quantity: int, case_size: int | None = None) -> CodeBatch:
    """Record a batch and queue the job that makes its codes (after the commit, so the job sees the row) (HQ)."""
    from app.integrations.jobs import enqueue

    authorize(principal, "hq.write")
    with transaction():
        sku = db.session.get(Sku, sku_id)
        if sku is None:
            raise NotFound("找不到这个商品", code="sku_not_found")
        if not sku.serialized:
            raise ValidationFailed("这个商品不按一物一码管理，不能发码", code="sku_not_serialized")
        if not 1 <= quantity <= MAX_BATCH:
            raise ValidationFailed(f"一次发码数量要在 1 到 {MAX_BATCH} 之间", code="bad_quantity")
        if case_size is not None and (case_size < 1 or quantity % case_size):
            raise ValidationFailed("数量要是每箱件数的整数倍", code="bad_case_size",
                                   details={"quantity": quantity, "case_size": case_size})
        batch = CodeBatch(sku_id=sku_id, quantity=quantity, case_size=case_size, status="pending",
                          created_by_id=principal.user_id)
        db.session.add(batch)
    batch_id = batch.id
    enqueue("app.codes.services.generate_batch", batch_id)
    return db.session.get(CodeBatch, batch_id)


def generate_batch(batch_id: int) -> None:
    """The job: make the batch's codes in chunks, each chunk its own transaction.

    The job first takes the batch (pending → running, one compare-and-set), so a batch queued twice (a
    sweeper's re-queue, a job run in-process while Redis was down) is made by one job only.
    """
    with transaction():
        taken = db.session.execute(
            sa.update(CodeBatch).where(CodeBatch.id == batch_id, CodeBatch.status == "pending")
            .values(status="running", started_at=sa.func.coalesce(CodeBatch.started_at, now_utc()))
            .execution_options(synchronize_session=False)).rowcount
    if not taken:
        return
    batch = db.session.get(CodeBatch, batch_id, populate_existing=True)
    try:
        while batch.units_made < batch.quantity:
            _make_chunk(batch)
    except Exception as exc:
        db.session.rollback()
        log.exception("code batch %s failed", batch_id)
        with transaction():
            batch = db.session.get(CodeBatch, batch_id)
            batch.status, batch.error = "failed", str(exc)[:255]
        raise
    with transaction():
        batch.status, batch.finished_at = "done", now_utc()


def sweep_pending_batches(older_than: timedelta = timedelta(minutes=2)) -> int:
    """Cron job: queue again the batches still pending after `older_than` (their job was lost); returns how many.

    A batch is queued after its commit; if the queue was down and the process died, or the job vanished with
    Redis, nothing else would ever make it. Queuing one twice is harmless: the job takes the batch first.
    """
    from app.integrations.jobs import enqueue

    ids = list(db.session.scalars(sa.select(CodeBatch.id).where(
        CodeBatch.status == "pending", CodeBatch.created_at < now_utc() - older_than).order_by(CodeBatch.id)))
    db.session.rollback()
    for batch_id in ids:
        log.warning("code batch %s still pending: queuing it again", batch_id)
        enqueue("app.codes.services.generate_batch", batch_id)
    return len(ids)


def _make_chunk(batch: CodeBatch) -> None:
    case_size = batch.case_size
    remaining = batch.quantity - batch.units_made
    units = min(CHUNK - CHUNK % case_size if case_size else CHUNK, remaining)
    now = now_utc()
    table = Code.__table__
    for attempt in range(3):
        try:
            with transaction():
                case_ids: list[int] = []
                if case_size:
                    n_cases = units // case_size
                    case_rows = [{"serial": s, "kind": "case", "sku_id": batch.sku_id, "batch_id": batch.id,
                                  "state": "issued", "verify_count": 0, "created_at": now, "updated_at": now}
                                 for s in new_serials(n_cases)]
                    if db.session.get_bind().dialect.name == "postgresql":
                        case_ids = _copy_cases(case_rows)
                    else:
                        case_ids = list(db.session.scalars(
                            sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), case_rows))
                state = "packed" if case_size else "issued"
                serials = new_serials(units)
                if db.session.get_bind().dialect.name == "postgresql":
                    _copy_units(batch, serials, case_ids, case_size, state, now)
                else:
                    db.session.execute(sa.insert(table), [
                        {"serial": s, "kind": "unit", "sku_id": batch.sku_id, "batch_id": batch.id,
                         "case_id": case_ids[i // case_size] if case_size else None, "state": state,
                         "verify_count": 0, "created_at": now, "updated_at": now} for i, s in enumerate(serials)])
                db.session.execute(sa.update(CodeBatch).where(CodeBatch.id == batch.id).values(
                    units_made=CodeBatch.units_made + units, cases_made=CodeBatch.cases_made + len(case_ids)))
            db.session.refresh(batch)
            return
        except (sa.exc.IntegrityError, psycopg.errors.IntegrityError):
            # 65 random bits make a clash all but impossible; if one happens, draw the chunk again.
            if attempt == 2:
                raise


def _copy_cases(rows: list[dict]) -> list[int]:
    """Case rows by COPY; their ids read back by serial, in the order given."""
    cursor = db.session.connection().connection.driver_connection.cursor()
    with cursor.copy("COPY codes (serial, kind, sku_id, batch_id, state, verify_count, created_at, updated_at)"
                     " FROM STDIN") as copy:
        for r in rows:
            copy.write_row((r["serial"], "case", r["sku_id"], r["batch_id"], r["state"], 0, r["created_at"],
                            r["updated_at"]))
    serials = [r["serial"] for r in rows]
    ids = dict(db.session.execute(sa.select(Code.serial, Code.id).where(Code.serial.in_(serials))).all())
    return [ids[s] for s in serials]


def _copy_units(batch: CodeBatch, serials: list[str], case_ids: list[int], case_size: int | None, state: str,
                now) -> None:
    """Unit rows by COPY on PostgreSQL: several times faster than a multi-row INSERT for 100,000 codes."""
    cursor = db.session.connection().connection.driver_connection.cursor()
    columns = "serial, kind, sku_id, batch_id, case_id, state, verify_count, created_at, updated_at"
    with cursor.copy(f"COPY codes ({columns}) FROM STDIN") as copy:
        for i, serial in enumerate(serials):
            copy.write_row((serial, "unit", batch.sku_id, batch.id, case_ids[i // case_size] if case_size else None,
                            state, 0, now, now))


def _serials_to_units(serials: list[str], *, lock: bool = True) -> tuple[list[Code], list[dict]]:
    """Unit codes for unit and case serials (a case brings its units); and the serials we could not use."""
    bad: list[dict] = []
    clean: list[str] = []
    for raw in serials:
        try:
            clean.append(normalize_serial(raw))
        except ScanParseError as exc:
            bad.append({"serial": raw, "reason": exc.code})
    stmt = sa.select(Code).where(Code.serial.in_(clean)).order_by(Code.id)
    found = {c.serial: c for c in db.session.scalars(stmt.with_for_update() if lock else stmt)}
    bad += [{"serial": s, "reason": "unknown_code"} for s in clean if s not in found]
    cases = [c.id for c in found.values() if c.kind == "case"]
    units = [c for c in found.values() if c.kind == "unit"]
    if cases:
        stmt = sa.select(Code).where(Code.case_id.in_(cases)).order_by(Code.id)
        units += list(db.session.scalars(stmt.with_for_update() if lock else stmt))
    seen: set[int] = set()
    unique = [u for u in units if not (u.id in seen or seen.add(u.id))]
    return unique, bad


@retried
def put_away(principal: Principal, *, serials: list[str] | None = None, batch_id: int | None = None,
             warehouse_id: int, add_stock: bool = False) -> int:
    """Codes from the packing line (a batch, or serials) into a warehouse the caller operates (state in_warehouse);
    `add_stock` also books the units in. Returns how many units."""
    if batch_id is not None and db.session.get(CodeBatch, batch_id) is None:
        raise NotFound("找不到这批码", code="batch_not_found")
    authorize(principal, "warehouse.operate", warehouse_id=warehouse_id)
    user_id = principal.user_id
    with transaction():
        wh = db.session.get(Warehouse, warehouse_id)
        if wh is None:
            raise NotFound("找不到这个仓库", code="warehouse_not_found")
        if batch_id is not None:
            # Read in this transaction (the job that makes the codes commits on its own): a batch still being
            # made is put away once it is done, not half of it now.
            status = db.session.scalar(sa.select(CodeBatch.status).where(CodeBatch.id == batch_id))
            if status != "done":
                raise Conflict("这批码还没生成完，完成后再入仓", code="batch_not_ready", details={"status": status})
            units = list(db.session.scalars(sa.select(Code).where(Code.batch_id == batch_id, Code.kind == "unit")
                                            .order_by(Code.id).with_for_update()))
            cases = list(db.session.scalars(sa.select(Code).where(Code.batch_id == batch_id, Code.kind == "case")))
            bad: list[dict] = []
        else:
            units, bad = _serials_to_units(serials or [])
            cases = list(db.session.scalars(sa.select(Code).where(
                Code.id.in_({u.case_id for u in units if u.case_id}))))
        bad += [{"serial": u.serial, "reason": f"state_{u.state}"} for u in units
                if u.state not in ("issued", "packed")]
        if bad or not units:
            raise Conflict("有码不能入仓", code="codes_not_available", details={"codes": bad[:100]})
        now = now_utc()
        ids = [u.id for u in units]
        for chunk in range(0, len(ids), 5000):
            db.session.execute(sa.update(Code).where(Code.id.in_(ids[chunk:chunk + 5000])).values(
                state="in_warehouse", location_id=wh.location_id, updated_at=now))
        db.session.execute(sa.update(Code).where(Code.id.in_([c.id for c in cases])).values(
            state="in_warehouse", location_id=wh.location_id, updated_at=now))
        step, disp = BIZ_STEPS["putaway"]
        db.session.execute(sa.insert(ScanEvent), [
            {"code_id": u.id, "sku_id": u.sku_id, "quantity": 1, "action": "putaway", "biz_step": step,
             "disposition": disp, "location_id": wh.location_id, "event_time": now, "recorded_at": now,
             "user_id": user_id, "diverted": False} for u in units])
        if add_stock:
            per_sku: dict[int, int] = {}
            for u in units:
                per_sku[u.sku_id] = per_sku.get(u.sku_id, 0) + 1
            for sku_id, n in per_sku.items():
                move_stock(location_id=wh.location_id, sku_id=sku_id, on_hand=n, kind="receive",
                           ref_type="put_away", user_id=user_id, reason="生产入库")
    return len(units)


def ship_codes(*, serials: list[str], from_location_id: int, to_store_id: int, order_id: int | None,
               user_id: int | None) -> dict[int, int]:
    """Mark unit and case codes shipped to a store (in_transit with their destination); units per sku_id.

    Checks every unit is in_warehouse at `from_location_id` (else Conflict 409 with the bad codes). Runs in the
    caller's transaction and does not move stock: the caller moves warehouse → transit with `move_stock`. A step,
    not a use case: the use case (`app.orders.fulfilment.ship_order`) has checked the caller; `user_id` is who the
    events name.
    """
    require_transaction("ship_codes")
    store = db.session.get(Store, to_store_id)
    if store is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return _ship(serials, from_location_id=from_location_id, user_id=user_id, event_store_id=store.id,
                 event_order_id=order_id,
                 values={"state": "in_transit", "location_id": None, "order_id": order_id,
                         "destination_store_id": store.id, "destination_distributor_id": store.distributor_id,
                         "destination_region": store.city_code})


def ship_codes_to_consumer(*, serials: list[str], from_location_id: int, partner_id: int | None,
                           region_code: str | None, user_id: int | None) -> dict[int, int]:
    """Mark unit and case codes shipped to a consumer (a consumer order); units per sku_id.

    The units leave the channel for the one who bought them: `sold` (at the shipment), at no store, with the
    partner who serves the consumer and the address's region as their destination (a consumer's check far from
    it raises the diversion alert as for any unit). The same checks and events as `ship_codes`, in the caller's
    transaction, and no stock moved: the caller (`app.orders.consumer_orders.ship_consumer_order`) takes the
    units out of the warehouse with `move_stock`.
    """
    require_transaction("ship_codes_to_consumer")
    now = now_utc()
    return _ship(serials, from_location_id=from_location_id, user_id=user_id, event_store_id=None,
                 event_order_id=None, now=now,
                 values={"state": "sold", "location_id": None, "store_id": None, "order_id": None, "sold_at": now,
                         "destination_store_id": None, "destination_distributor_id": partner_id,
                         "destination_region": region_code})


def _ship(serials: list[str], *, from_location_id: int, user_id: int | None, values: dict,
          event_store_id: int | None, event_order_id: int | None, now=None) -> dict[int, int]:
    """The ship step of either kind of shipment: lock the codes (a case brings its units), refuse any unit not on
    this warehouse's shelf, set `values` on the units and their cases, write each unit's ship event."""
    units, bad = _serials_to_units(serials)
    bad += [{"serial": u.serial, "reason": "not_in_this_warehouse" if u.state == "in_warehouse" else
             f"state_{u.state}"} for u in units if u.state != "in_warehouse" or u.location_id != from_location_id]
    if bad or not units:
        raise Conflict("有码不在这个仓库，不能发货", code="codes_not_in_warehouse",
                       details={"codes": bad[:100], "count": len(bad)})
    now = now or now_utc()
    ids = [u.id for u in units]
    case_ids = list({u.case_id for u in units if u.case_id})
    values = {**values, "updated_at": now}
    for chunk in range(0, len(ids), 5000):
        db.session.execute(sa.update(Code).where(Code.id.in_(ids[chunk:chunk + 5000])).values(**values))
    if case_ids:
        # A case goes with its units once none of them is left on the shelf (loose units picked out of a case
        # leave the case, and the rest of its units, where they are).
        left = sa.select(Code.case_id).where(Code.case_id.in_(case_ids), Code.kind == "unit",
                                              Code.state == "in_warehouse")
        db.session.execute(sa.update(Code).where(Code.id.in_(case_ids), Code.id.not_in(left)).values(**values))
    step, disp = BIZ_STEPS["ship"]
    db.session.execute(sa.insert(ScanEvent), [
        {"code_id": u.id, "sku_id": u.sku_id, "quantity": 1, "action": "ship", "biz_step": step, "disposition": disp,
         "location_id": from_location_id, "store_id": event_store_id, "event_time": now, "recorded_at": now,
         "user_id": user_id, "order_id": event_order_id, "diverted": False} for u in units])
    per_sku: dict[int, int] = {}
    for u in units:
        per_sku[u.sku_id] = per_sku.get(u.sku_id, 0) + 1
    db.session.flush()
    return per_sku


def warehouse_codes_available(location_id: int, sku_id: int, limit: int) -> list[str]:
    """Serials a shipment can pick at a warehouse: whole cases first, then loose units, up to `limit` units."""
    out: list[str] = []
    left = limit
    case_units = sa.select(Code.case_id, sa.func.count().label("n")).where(
        Code.kind == "unit", Code.state == "in_warehouse", Code.location_id == location_id, Code.sku_id == sku_id,
        Code.case_id.is_not(None)).group_by(Code.case_id).subquery()
    full_cases = db.session.execute(
        sa.select(Code.serial, case_units.c.n).join(case_units, case_units.c.case_id == Code.id)
        .where(Code.state == "in_warehouse", Code.location_id == location_id).order_by(Code.id)).all()
    case_of_used: set[str] = set()
    for serial, n in full_cases:
        if n <= left:
            out.append(serial)
            case_of_used.add(serial)
            left -= n
        if left == 0:
            return out
    used_cases = sa.select(Code.id).where(Code.serial.in_(case_of_used)) if case_of_used else None
    stmt = sa.select(Code.serial).where(Code.kind == "unit", Code.state == "in_warehouse",
                                        Code.location_id == location_id, Code.sku_id == sku_id)
    if used_cases is not None:
        stmt = stmt.where(sa.or_(Code.case_id.is_(None), Code.case_id.not_in(used_cases)))
    out += list(db.session.scalars(stmt.order_by(Code.id).limit(left)))
    return out


def code_url_base() -> str:
    return current_app.config["CODE_URL_BASE"]
