"""Store stocktakes and adjustments: on hand brought to what was counted, every change explained in the ledger.

A SKU sold without serials is counted by quantity. A one-item-one-code SKU is counted by its codes (every unit
on the shelf scanned), because its codes say where each unit is: a bare number would change the stock and leave
the codes saying otherwise. After a stocktake by codes the store's codes of the SKU are exactly the ones scanned:
codes found here but recorded elsewhere move here (received, if they were on their way here), codes recorded here
but not found become `missing`, and the stock follows with a ledger row per unit.

Both writes take the caller and check them first: `stock.adjust` at the store (`app.core.security`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Store
from app.channel.queries import get_store_location
from app.codes.models import BIZ_STEPS, Code, ScanEvent
from app.codes.parse import ScanParseError, parse_scan
from app.core.clock import now_utc
from app.core.security import Principal, authorize_store
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.inventory.models import StockLevel
from app.inventory.services import InsufficientStock, get_level, move_stock, set_counted, transit_location_id
from app.scans import messages
from app.scans.models import DiversionAlert

C = Code.__table__
E = ScanEvent.__table__
ON_SHELF = ("in_store", "returned")
MAX_SERIALS = 10_000

# Why a scanned code cannot be counted on this SKU's shelf, in the owner's words.
BAD_CODE = {
    "unknown_code": "查不到这个码，可能是假码",
    "serial_required": "这是商品条码，请扫每一件上的二维码",
    "case_code": "这是箱码，请扫箱里每一件上的码",
    "other_sku": "这个码是别的商品的",
    "sold": "这件商品已经售出；如果是顾客退回的，请先扫码退货",
    "voided": "这个码已作废，请联系总部",
    "not_shipped": "这件商品没有发货记录，请联系总部",
}


def _skus(sku_ids: list[int]) -> dict[int, Sku]:
    found = {s.id: s for s in db.session.scalars(sa.select(Sku).where(Sku.id.in_(sku_ids)))}
    missing = sorted(set(sku_ids) - set(found))
    if missing:
        raise NotFound("找不到这个商品", code="sku_not_found", details={"sku_ids": missing})
    return found


def _serials_required(skus: list[Sku]) -> ValidationFailed:
    names = "、".join(s.name for s in skus)
    return ValidationFailed(f"{names}是一物一码的商品，请逐件扫码盘点", code="serials_required",
                            details={"sku_ids": [s.id for s in skus]})


def record_count(principal: Principal, *, store_id: int, lines: list[dict], reason: str) -> list[dict[str, Any]]:
    """Stocktake: each line brings a SKU's stock to what was counted, all lines or none.

    A line is `{sku_id, counted}` for a SKU without serials, `{sku_id, serials}` (every unit's code as scanned)
    for a one-item-one-code SKU."""
    authorize_store(principal, "stock.adjust", store_id)
    user_id = principal.user_id
    if len({line["sku_id"] for line in lines}) != len(lines):
        raise ValidationFailed("同一个商品只能填一行", code="duplicate_sku")
    with transaction():
        location_id = get_store_location(store_id)
        skus = _skus([line["sku_id"] for line in lines])
        bare = [skus[ln["sku_id"]] for ln in lines if skus[ln["sku_id"]].serialized and ln.get("serials") is None]
        if bare:
            raise _serials_required(bare)
        coded = [skus[ln["sku_id"]] for ln in lines if not skus[ln["sku_id"]].serialized
                 and ln.get("serials") is not None]
        if coded:
            raise ValidationFailed(f"{'、'.join(s.name for s in coded)}没有一物一码，请直接填数量",
                                   code="serials_not_used", details={"sku_ids": [s.id for s in coded]})
        out = []
        for line in sorted(lines, key=lambda x: x["sku_id"]):  # a fixed lock order across concurrent counts
            sku = skus[line["sku_id"]]
            if sku.serialized:
                result = _count_codes(store_id=store_id, location_id=location_id, sku=sku,
                                      scanned=line["serials"], counted=line.get("counted"), user_id=user_id,
                                      reason=reason)
            else:
                if line.get("counted") is None:
                    raise ValidationFailed(f"请填{sku.name}的盘点数量", code="counted_required",
                                           details={"sku_ids": [sku.id]})
                before = get_level(location_id=location_id, sku_id=sku.id).on_hand
                level = set_counted(location_id=location_id, sku_id=sku.id, counted=line["counted"],
                                    user_id=user_id, reason=reason)
                result = {"sku_id": sku.id, "before": before, "counted": line["counted"],
                          "delta": line["counted"] - before, "on_hand": level.on_hand}
            out.append({**result, "name": sku.name, "unit": sku.unit})
    return out


def _parse(scanned: list[str]) -> tuple[list[str], list[dict]]:
    """The distinct serials of what was scanned, and what could not be read as one."""
    serials: dict[str, None] = {}
    bad = []
    for text in scanned:
        try:
            parsed = parse_scan(text)
        except ScanParseError as exc:
            bad.append({"code": text, "reason": exc.code, "message": exc.message})
            continue
        if parsed.serial is None:
            bad.append({"code": text, "reason": "serial_required", "message": BAD_CODE["serial_required"]})
            continue
        serials[parsed.serial] = None
    return list(serials), bad


def _count_codes(*, store_id: int, location_id: int, sku: Sku, scanned: list[str], counted: int | None,
                 user_id: int, reason: str) -> dict[str, Any]:
    serials, bad = _parse(scanned)
    if counted is not None and counted != len(serials):
        raise ValidationFailed(f"扫到 {len(serials)} 件{sku.name}，和填的数量 {counted} 对不上", code="count_mismatch",
                               details={"sku_id": sku.id, "scanned": len(serials), "counted": counted})
    # Locked in id order: the codes on this store's shelf for the SKU (and those missing here) and the ones
    # scanned. A scan of one of them waits for the stocktake, or the stocktake for it.
    on_books_here = sa.and_(C.c.store_id == store_id, C.c.sku_id == sku.id, C.c.kind == "unit",
                            C.c.state.in_((*ON_SHELF, "missing")))
    rows = db.session.execute(
        sa.select(C.c.id, C.c.serial, C.c.kind, C.c.sku_id, C.c.state, C.c.store_id, C.c.location_id,
                  C.c.order_id, C.c.destination_store_id, C.c.destination_distributor_id, C.c.destination_region)
        .where(sa.or_(on_books_here, C.c.serial.in_(serials or [""]))).order_by(C.c.id).with_for_update()).all()
    by_serial = {r.serial: r for r in rows}
    for serial in serials:
        code = by_serial.get(serial)
        problem = (
            "unknown_code" if code is None else "case_code" if code.kind == "case"
            else "other_sku" if code.sku_id != sku.id else "sold" if code.state == "sold"
            else "voided" if code.state == "voided" else "not_shipped" if code.state in ("issued", "packed")
            else None)
        if problem:
            bad.append({"code": serial, "reason": problem, "message": BAD_CODE[problem]})
    if bad:
        raise ValidationFailed(f"有 {len(bad)} 个码不能算进{sku.name}的盘点，请检查后重新盘点", code="bad_codes",
                               details={"sku_id": sku.id, "codes": bad[:100], "count": len(bad)})
    scanned_ids = {by_serial[s].id for s in serials}
    here = [r for r in rows if r.store_id == store_id and r.state in ON_SHELF]
    found = [by_serial[s] for s in serials if by_serial[s].id not in {r.id for r in here}]
    lost = [r for r in here if r.id not in scanned_ids]
    before = get_level(location_id=location_id, sku_id=sku.id).on_hand
    now = now_utc()
    # Stock rows in the order the scans take them: where a unit leaves before where it arrives, transit before
    # the shelf.
    _bring_here(found, store_id=store_id, location_id=location_id, user_id=user_id, reason=reason, now=now)
    _mark_missing(lost, store_id=store_id, location_id=location_id, user_id=user_id, reason=reason, now=now)
    level = _stock_to_codes(store_id=store_id, location_id=location_id, sku_id=sku.id, user_id=user_id,
                            reason=reason)
    return {"sku_id": sku.id, "before": before, "counted": len(serials), "delta": len(serials) - before,
            "on_hand": level.on_hand, "found_serials": sorted(r.serial for r in found),
            "missing_serials": sorted(r.serial for r in lost)}


def _stock_to_codes(*, store_id: int, location_id: int, sku_id: int, user_id: int, reason: str):
    """Whatever the stock said beyond the codes on the shelf (an old count by number, say) is corrected to them.

    The gap between the level and the codes is read in one statement, so one consistent view: every other
    change of the shelf moves a code and the level together and leaves the gap as it is, and the correction is
    applied as a change (not a new absolute level), so a scan committing meanwhile is kept."""
    level = sa.select(sa.func.coalesce(sa.func.max(StockLevel.on_hand), 0)).where(
        StockLevel.location_id == location_id, StockLevel.sku_id == sku_id).scalar_subquery()
    shelf = sa.select(sa.func.count()).select_from(C).where(
        C.c.store_id == store_id, C.c.sku_id == sku_id, C.c.kind == "unit", C.c.state.in_(ON_SHELF)).scalar_subquery()
    gap = db.session.scalar(sa.select(level - shelf))
    if gap:
        return move_stock(location_id=location_id, sku_id=sku_id, on_hand=-gap, kind="stocktake",
                          user_id=user_id, reason=f"{reason}（按码核对账面）")
    return get_level(location_id=location_id, sku_id=sku_id)


def _events(codes: list, action: str, *, store_id: int, location_id: int, user_id: int, now) -> None:
    if not codes:
        return
    step, disposition = BIZ_STEPS[action]
    db.session.execute(sa.insert(E), [
        {"code_id": c.id, "sku_id": c.sku_id, "quantity": 1, "action": action, "biz_step": step,
         "disposition": disposition, "store_id": store_id, "location_id": location_id, "event_time": now,
         "recorded_at": now, "user_id": user_id, "order_id": c.order_id, "diverted": False} for c in codes])


def _set_state(codes: list, *, expect: tuple[str, ...], state: str, values: dict, now) -> None:
    """Move codes from the states they were locked in (a compare-and-set: a racing scan refuses the stocktake)."""
    if not codes:
        return
    moved = db.session.execute(sa.update(C).where(C.c.id.in_([c.id for c in codes]), C.c.state.in_(expect))
                               .values(state=state, updated_at=now, **values))
    if moved.rowcount != len(codes):
        raise Conflict("盘点时有商品刚被扫码，请重新盘点", code="stocktake_raced")


def _mark_missing(lost: list, *, store_id: int, location_id: int, user_id: int, reason: str, now) -> None:
    _set_state(lost, expect=ON_SHELF, state="missing", values={"location_id": None}, now=now)
    for code in lost:
        move_stock(location_id=location_id, sku_id=code.sku_id, on_hand=-1, kind="stocktake", ref_type="code",
                   ref_id=code.id, user_id=user_id, reason=f"{reason}：没找到")
    _events(lost, "missing", store_id=store_id, location_id=location_id, user_id=user_id, now=now)


def _bring_here(found: list, *, store_id: int, location_id: int, user_id: int, reason: str, now) -> None:
    """Codes on this shelf that the books put elsewhere: their stock leaves there (when it is there) and comes
    here. Units on their way here are received, as if scanned in."""
    from app.scans.services import receive_in_transit

    arriving = [c for c in found if c.state == "in_transit" and c.destination_store_id == store_id]
    others = [c for c in found if c not in arriving]
    store = db.session.get(Store, store_id)
    sources = {c.id: _source_location(c) for c in others}
    for code in sorted(others, key=lambda c: (sources[c.id] or 0, c.id)):
        source = sources[code.id]
        if source is not None:
            try:
                with db.session.begin_nested():
                    move_stock(location_id=source, sku_id=code.sku_id, on_hand=-1, kind="transfer_out",
                               ref_type="code", ref_id=code.id, user_id=user_id,
                               reason=f"{reason}：在{store.name}找到")
            except InsufficientStock:
                pass  # the books there never held it: the unit only appears here
    if arriving:
        receive_in_transit(store_id=store_id, user_id=user_id, unit_ids=[c.id for c in arriving])
    if not others:
        return
    for code in others:
        move_stock(location_id=location_id, sku_id=code.sku_id, on_hand=1, kind="stocktake", ref_type="code",
                   ref_id=code.id, user_id=user_id, reason=f"{reason}：找到")
        if code.destination_store_id is not None and code.destination_store_id != store_id:
            db.session.add(DiversionAlert(
                code_id=code.id, sku_id=code.sku_id, source="stocktake", expected_store_id=code.destination_store_id,
                expected_distributor_id=code.destination_distributor_id, expected_region=code.destination_region,
                actual_store_id=store_id, actual_distributor_id=store.distributor_id, actual_region=store.city_code,
                policy="alert", user_id=user_id, created_at=now))
    _set_state(others, expect=(*ON_SHELF, "in_transit", "in_warehouse", "missing"), state="in_store",
               values={"store_id": store_id, "location_id": location_id}, now=now)
    _events(others, "found", store_id=store_id, location_id=location_id, user_id=user_id, now=now)


def _source_location(code) -> int | None:
    """Where the books hold the unit now: a shelf or a warehouse, the transit to its destination, or nowhere."""
    if code.state in ON_SHELF or code.state == "in_warehouse":
        return code.location_id
    if code.state == "in_transit" and code.destination_store_id is not None:
        dest = db.session.scalar(sa.select(Store.location_id).where(Store.id == code.destination_store_id))
        return transit_location_id(dest) if dest is not None else None
    return None  # missing: it already left the books


def adjust(principal: Principal, *, store_id: int, sku_id: int, delta: int, reason: str) -> dict[str, Any]:
    """Add or remove units of a SKU without serials, with a reason (breakage, gift, found); never below zero.

    A one-item-one-code SKU is corrected by a stocktake by its codes, so its codes follow."""
    authorize_store(principal, "stock.adjust", store_id)
    user_id = principal.user_id
    if delta == 0:
        raise ValidationFailed("调整数量不能是 0", code="zero_adjustment")
    with transaction():
        location_id = get_store_location(store_id)
        sku = _skus([sku_id])[sku_id]
        if sku.serialized:
            raise ValidationFailed(f"{sku.name}是一物一码的商品，请用扫码盘点来更正库存", code="serials_required",
                                   details={"sku_ids": [sku_id]})
        try:
            level = move_stock(location_id=location_id, sku_id=sku_id, on_hand=delta, kind="adjust",
                               ref_type="store_adjustment", user_id=user_id, reason=reason)
        except InsufficientStock as exc:
            raise InsufficientStock("店内库存不够，不能减这么多", details=exc.details) from None
    return {"sku_id": sku_id, "delta": delta, "on_hand": level.on_hand, "reason": reason,
            "message": messages.adjusted(sku.name, sku.unit, delta, level.on_hand)}
