"""Store scans: receive, sell, return and undo, each one use case in one transaction.

The sell path is the hot path (every unit a store sells). On PostgreSQL the common sell is four statements and
a commit: the guarded UPDATE of the code joined with what the answer and the rollups need (`_HOT_UPDATE`),
`move_stock` (level and ledger in one), the event + incentive credit + idempotency row (`_HOT_RECORD`), and the
analytics receiver's rollup upsert, which gets the store's dimensions with the signal. Anything unusual takes
the general path (a locking SELECT, then the same writes). A batch from an offline queue runs its plain sells
set-based.
A scan answer is a plain dict (see `miniprogram_api/scans/schemas.py`); business refusals are answers, not errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app

from app.catalog.models import Sku, SkuPrice
from app.channel.models import Store
from app.codes.models import Code
from app.codes.parse import Scanned, ScanParseError, parse_scan
from app.core import events
from app.core.clock import as_utc, now_utc
from app.core.db import dialect_insert, on_postgres, pg_row
from app.core.security import Principal, authorize_store
from app.core.tx import transaction
from app.errors import AppError, Forbidden, NotFound
from app.extensions import db
from app.incentives.models import IncentiveCredit, IncentiveRule
from app.inventory.services import InsufficientStock, move_stock, transit_location_id
from app.scans import messages
from app.scans.models import BIZ_STEPS, DiversionAlert, ScanEvent, ScanPolicy, ScanRequest

_T = TypeVar("_T")

ACTIONS = ("receive", "sell", "return")
FUTURE_SLACK = timedelta(minutes=10)

C = Code.__table__
S = Sku.__table__
ST = Store.__table__
P = SkuPrice.__table__
E = ScanEvent.__table__
R = ScanRequest.__table__


@dataclass
class ScanInput:
    """One scan as the phone sent it (already type-checked by the edge)."""

    request_id: str
    code: str
    action: str
    scanned_at: datetime
    store_id: int | None = None
    quantity: int | None = None
    lat: float | None = None
    lng: float | None = None


@dataclass
class _Ctx:
    user_id: int
    store_id: int
    scan: ScanInput
    now: datetime
    alerts: list[dict] = field(default_factory=list)


class _Refused(Exception):
    def __init__(self, reason: str, message: str | None = None, **extra: Any):
        super().__init__(reason)
        self.reason, self.message, self.extra = reason, message or messages.refused(reason), extra


# --- helpers ------------------------------------------------------------------------------------------------

_insert = dialect_insert


def _answer(status: str, *, scan: ScanInput, message: str, reason: str | None = None, code_state: str | None = None,
            serial: str | None = None, sku: dict | None = None, quantity: int = 0, on_hand: int | None = None,
            alerts: list | None = None, event_id: int | None = None, **extra: Any) -> dict[str, Any]:
    answer = {"request_id": scan.request_id, "status": status, "reason": reason, "message": message,
              "action": scan.action, "serial": serial, "code_state": code_state, "sku": sku, "quantity": quantity,
              "stock": None if sku is None or on_hand is None else {"sku_id": sku["sku_id"], "on_hand": on_hand},
              "alerts": alerts or [], "event_id": event_id, "store_id": None}
    answer.update(extra)
    return answer


def _sku_dict(sku_id: int, name: str, unit: str, gtin: str) -> dict:
    return {"sku_id": sku_id, "name": name, "unit": unit, "gtin": gtin}


def _store_row(store_id: int) -> sa.Row:
    row = db.session.execute(sa.select(ST.c.id, ST.c.name, ST.c.location_id, ST.c.price_tier_id,
                                       ST.c.distributor_id, ST.c.city_code).where(ST.c.id == store_id)).first()
    if row is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return row


def _on_hand(location_id: int, sku_id: int) -> int:
    from app.inventory.services import get_level

    return get_level(location_id=location_id, sku_id=sku_id).on_hand


def _price(sku_id: int, tier_id: int) -> int:
    return db.session.scalar(sa.select(P.c.price_fen).where(P.c.sku_id == sku_id, P.c.price_tier_id == tier_id)) or 0


def _add_event(ctx: _Ctx, *, action: str, sku_id: int, code_id: int | None, quantity: int = 1,
               location_id: int | None, order_id: int | None = None, parent_event_id: int | None = None,
               corrects_event_id: int | None = None, diverted: bool = False, event_time: datetime | None = None,
               store_id: int | None = None) -> int:
    step, disposition = BIZ_STEPS[action]
    return db.session.execute(sa.insert(E).values(
        code_id=code_id, sku_id=sku_id, quantity=quantity, action=action, biz_step=step, disposition=disposition,
        store_id=store_id or ctx.store_id, location_id=location_id, event_time=event_time or ctx.scan.scanned_at,
        recorded_at=ctx.now, user_id=ctx.user_id, order_id=order_id, lat=ctx.scan.lat, lng=ctx.scan.lng,
        parent_event_id=parent_event_id, corrects_event_id=corrects_event_id, diverted=diverted,
    ).returning(E.c.id)).scalar_one()


_is_pg = on_postgres


def _credit(step: str, store_id: int, pairs: list[tuple[int, int]]) -> None:
    """Credit the store for (code_id, event_id) pairs under the SKU's active rule, once per code and step."""
    if not pairs:
        return
    rule = IncentiveRule.__table__
    credit = IncentiveCredit.__table__
    columns = ["store_id", "code_id", "sku_id", "step", "points", "amount_fen", "event_id", "created_at"]
    now = sa.literal(now_utc(), sa.DateTime(True))
    if _is_pg():
        # One INSERT ... SELECT over two arrays: no row when the SKU has no rule, nothing twice per code. Arrays
        # keep the statement text fixed (cached), where a VALUES list would be compiled anew for every size.
        db.session.execute(sa.text(
            "INSERT INTO incentive_credits (store_id, code_id, sku_id, step, points, amount_fen, event_id, created_at)"
            " SELECT :store_id, c.id, c.sku_id, :step, r.points, r.amount_fen, s.event_id, :now"
            " FROM unnest(CAST(:code_ids AS bigint[]), CAST(:event_ids AS bigint[])) AS s(code_id, event_id)"
            " JOIN codes c ON c.id = s.code_id"
            " JOIN incentive_rules r ON r.sku_id = c.sku_id AND r.step = :step AND r.is_active"
            " ON CONFLICT (code_id, step) DO NOTHING"),
            {"store_id": store_id, "step": step, "now": now_utc(), "code_ids": [c for c, _ in pairs],
             "event_ids": [e for _, e in pairs]})
        return
    # SQLite: the same statement once per pair.
    code_id, event_id, from_ = C.c.id, sa.bindparam("event_id", type_=sa.BigInteger), C
    params = [{"cid": c, "event_id": e} for c, e in pairs]
    select = (sa.select(sa.literal(store_id, sa.BigInteger), code_id, C.c.sku_id, sa.literal(step), rule.c.points,
                        rule.c.amount_fen, event_id, now)
              .select_from(from_.join(rule, sa.and_(rule.c.sku_id == C.c.sku_id, rule.c.step == step,
                                                    rule.c.is_active.is_(True)))))
    select = select.where(C.c.id == sa.bindparam("cid", type_=sa.BigInteger))
    stmt = _insert()(credit).from_select(columns, select).on_conflict_do_nothing(index_elements=["code_id", "step"])
    db.session.execute(stmt, params)


def diversion_policy() -> str:
    """HQ's setting: `alert` (sell, and tell HQ) or `refuse`."""
    value = db.session.scalar(sa.select(ScanPolicy.diversion_policy).where(ScanPolicy.id == 1))
    return value or current_app.config["DIVERSION_POLICY"]


def _diverted(code: sa.Row, store: Any) -> bool:
    """Whether the code's shipment was meant for another store, distributor or region."""
    if code.destination_store_id is not None:
        return code.destination_store_id != store.id
    if code.destination_distributor_id is not None and code.destination_distributor_id != store.distributor_id:
        return True
    return code.destination_region is not None and code.destination_region != store.city_code


def _raise_alert(ctx: _Ctx, code: sa.Row, store: Any, *, policy: str, event_id: int | None) -> dict:
    alert = DiversionAlert(
        code_id=code.id, sku_id=code.sku_id, source="sell", event_id=event_id,
        expected_store_id=code.destination_store_id, expected_distributor_id=code.destination_distributor_id,
        expected_region=code.destination_region, actual_store_id=store.id,
        actual_distributor_id=store.distributor_id, actual_region=store.city_code, policy=policy,
        user_id=ctx.user_id, created_at=ctx.now)
    db.session.add(alert)
    db.session.flush()
    expected = db.session.scalar(sa.select(ST.c.name).where(ST.c.id == code.destination_store_id)) \
        if code.destination_store_id else None
    return {"kind": "diversion", "alert_id": alert.id, "expected_store_id": code.destination_store_id,
            "expected_distributor_id": code.destination_distributor_id, "expected_region": code.destination_region,
            "actual_store_id": store.id, "actual_distributor_id": store.distributor_id,
            "actual_region": store.city_code, "policy": policy, "message": messages.diversion_alert(expected)}


def _save_request(user_id: int, answer: dict) -> bool:
    """Store the answer under (user, request_id); False when that request was already answered."""
    stmt = _insert()(R).values(user_id=user_id, request_id=answer["request_id"], answer=answer,
                               created_at=now_utc()).on_conflict_do_nothing(
        index_elements=["user_id", "request_id"]).returning(R.c.id)
    return db.session.execute(stmt).first() is not None


def _stored_answer(user_id: int, request_id: str) -> dict | None:
    return db.session.scalar(sa.select(R.c.answer).where(R.c.user_id == user_id, R.c.request_id == request_id))


def _replay(answer: dict) -> dict:
    return {**answer, "replayed": True}


# --- one scan ----------------------------------------------------------------------------------------------

def scan(principal: Principal, data: ScanInput) -> dict[str, Any]:
    """Apply one scan (receive, sell or return) for the caller's store; a replayed request_id gets its first answer."""
    store_id = data.store_id if data.store_id is not None else principal.store_id
    if store_id is None:
        from app.errors import ValidationFailed

        raise ValidationFailed("请指定门店", code="store_required", details={"fields": {"store_id": ["必填"]}})
    authorize_store(principal, "scan", store_id)
    data.store_id = store_id
    return _on_live_connection(lambda: _scan_once(principal.user_id, data))


def _on_live_connection(use_case: Callable[[], _T]) -> _T:
    """Run a use case; if its connection turns out dead, once more on a fresh one.

    There is no pre-ping (see `app.config`), so after a database restart a pooled connection fails on first
    use. Its transaction died with it and SQLAlchemy has invalidated the pool, so the second attempt starts
    clean; had the first attempt's commit landed after all, the request_id turns the second into a replay.
    """
    try:
        return use_case()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return use_case()


def _scan_once(user_id: int, data: ScanInput) -> dict[str, Any]:
    try:
        with transaction():
            answer = _sell_hot(user_id, data) if data.action == "sell" and _is_pg() else None
            if answer is None:
                answer = _apply(user_id, data)
                saved = _save_request(user_id, answer)
            else:
                saved = answer.pop("_saved")
            if not saved:
                raise _Replayed()
    except _Replayed:
        return _replay(_stored_answer(user_id, data.request_id))
    return answer


# The common sell, on PostgreSQL, in four statements: this guarded UPDATE (the code must be in this store's
# stock and shipped to it; the row lock serializes racing sells of the same code) joined with what the answer
# and the rollups need, move_stock's one, _HOT_RECORD, and the rollup receiver's one. Anything else (duplicate,
# diversion, wrong GTIN) finds no row here and takes the general path, which re-reads the code under a lock.
_HOT_UPDATE = sa.text(
    "WITH u AS (UPDATE codes SET state = 'sold', location_id = NULL, sold_at = :at, updated_at = :now"
    " WHERE serial = :serial AND kind = 'unit' AND state IN ('in_store', 'returned') AND store_id = :store_id"
    " AND destination_store_id = :store_id"
    " AND (CAST(:gtin AS varchar) IS NULL OR sku_id = (SELECT id FROM skus WHERE gtin = :gtin))"
    " RETURNING id, sku_id, order_id)"
    " SELECT u.id, u.sku_id, u.order_id, k.name, k.unit, k.gtin, st.location_id, p.price_fen, st.province_code,"
    " st.city_code, st.distributor_id"
    " FROM u JOIN skus k ON k.id = u.sku_id JOIN stores st ON st.id = :store_id"
    " LEFT JOIN sku_prices p ON p.sku_id = u.sku_id AND p.price_tier_id = st.price_tier_id")

# The event, the incentive credit (when the SKU has a rule) and the idempotency row, in one statement.
_HOT_RECORD = sa.text(
    "WITH e AS (INSERT INTO scan_events (code_id, sku_id, quantity, action, biz_step, disposition, store_id,"
    " location_id, event_time, recorded_at, user_id, order_id, lat, lng, diverted)"
    " VALUES (:code_id, :sku_id, 1, 'sell', :step, :disposition, :store_id, :location_id, :at, :now, :user_id,"
    " :order_id, :lat, :lng, false) RETURNING id),"
    " c AS (INSERT INTO incentive_credits (store_id, code_id, sku_id, step, points, amount_fen, event_id, created_at)"
    " SELECT :store_id, :code_id, :sku_id, 'sell', r.points, r.amount_fen, e.id, :now FROM e"
    " JOIN incentive_rules r ON r.sku_id = :sku_id AND r.step = 'sell' AND r.is_active"
    " ON CONFLICT (code_id, step) DO NOTHING),"
    " q AS (INSERT INTO scan_requests (user_id, request_id, answer, created_at)"
    " SELECT :user_id, :request_id, CAST(jsonb_set(CAST(:answer AS jsonb), '{event_id}', to_jsonb(e.id)) AS json),"
    " :now FROM e ON CONFLICT (user_id, request_id) DO NOTHING RETURNING id)"
    " SELECT e.id, (SELECT count(*) FROM q) AS saved FROM e")


def _sell_hot(user_id: int, data: ScanInput) -> dict[str, Any] | None:
    """The common sell in four statements, or None when this scan needs the general path."""
    now = now_utc()
    if as_utc(data.scanned_at) > now + FUTURE_SLACK:
        return None
    try:
        scanned = parse_scan(data.code)
    except ScanParseError:
        return None
    if scanned.serial is None:
        return None
    row = pg_row(_HOT_UPDATE, {"at": data.scanned_at, "now": now, "serial": scanned.serial,
                                "store_id": data.store_id, "gtin": scanned.gtin})
    if row is None:
        return None
    level = move_stock(location_id=row.location_id, sku_id=row.sku_id, on_hand=-1, kind="sell", ref_type="code",
                       ref_id=row.id, user_id=user_id)
    answer = _answer("accepted", scan=data, message=messages.sold(row.name, 1, row.unit, level.on_hand),
                     code_state="sold", serial=scanned.serial, sku=_sku_dict(row.sku_id, row.name, row.unit, row.gtin),
                     quantity=1, on_hand=level.on_hand, store_id=data.store_id)
    step, disposition = BIZ_STEPS["sell"]
    event_id, saved = pg_row(_HOT_RECORD, {
        "code_id": row.id, "sku_id": row.sku_id, "step": step, "disposition": disposition, "store_id": data.store_id,
        "location_id": row.location_id, "at": data.scanned_at, "now": now, "user_id": user_id,
        "order_id": row.order_id, "lat": data.lat, "lng": data.lng, "request_id": data.request_id,
        "answer": json.dumps(answer, ensure_ascii=False)})
    answer["event_id"] = event_id
    events.units_sold.send(None, store_id=data.store_id, sku_id=row.sku_id, quantity=1, at=data.scanned_at,
                           amount_fen=row.price_fen or 0, event_id=event_id,
                           store_dims=(row.province_code, row.city_code, row.distributor_id))
    answer["_saved"] = bool(saved)
    return answer


class _Replayed(Exception):
    """The request_id was answered before: roll this attempt back and hand out the first answer."""


def _apply(user_id: int, data: ScanInput) -> dict[str, Any]:
    """One scan's work inside the caller's transaction; business refusals come back as answers."""
    ctx = _Ctx(user_id=user_id, store_id=data.store_id, scan=data, now=now_utc())
    try:
        if as_utc(data.scanned_at) > ctx.now + FUTURE_SLACK:
            raise _Refused("bad_scanned_at")
        try:
            scanned = parse_scan(data.code)
        except ScanParseError as exc:
            raise _Refused(exc.code, exc.message) from None
        if scanned.serial is None:
            return _by_gtin(ctx, scanned)
        if data.action == "sell":
            return _sell(ctx, scanned)
        if data.action == "receive":
            return _receive(ctx, scanned)
        return _return(ctx, scanned)
    except _Refused as r:
        return _answer("refused", scan=data, reason=r.reason, message=r.message,
                       **{"store_id": ctx.store_id, **r.extra})


def _check_gtin(scanned: Scanned, gtin: str) -> None:
    if scanned.gtin and scanned.gtin != gtin:
        raise _Refused("gtin_mismatch")


def _lock_code(ctx: _Ctx, serial: str) -> sa.Row:
    """The code, locked, joined with its SKU, the scanning store and that store's price: one statement."""
    row = db.session.execute(
        sa.select(C.c.id, C.c.kind, C.c.state, C.c.sku_id, C.c.store_id, C.c.location_id, C.c.sold_at,
                  C.c.order_id, C.c.destination_store_id, C.c.destination_distributor_id, C.c.destination_region,
                  C.c.serial, S.c.name, S.c.unit, S.c.gtin, ST.c.location_id.label("store_location_id"),
                  ST.c.distributor_id, ST.c.city_code, ST.c.name.label("store_name"), P.c.price_fen)
        .select_from(C.join(S, S.c.id == C.c.sku_id).join(ST, ST.c.id == ctx.store_id)
                     .outerjoin(P, sa.and_(P.c.sku_id == C.c.sku_id, P.c.price_tier_id == ST.c.price_tier_id)))
        .where(C.c.serial == serial)
        .with_for_update(of=C)
    ).first()
    if row is None:
        if db.session.scalar(sa.select(ST.c.id).where(ST.c.id == ctx.store_id)) is None:
            raise NotFound("找不到这家门店", code="store_not_found")
        raise _Refused("unknown_code", serial=serial)
    return row


class _StoreView:
    """The store fields the diversion check reads, from the joined row."""

    def __init__(self, row: sa.Row, store_id: int):
        self.id, self.distributor_id, self.city_code = store_id, row.distributor_id, row.city_code


def _sell(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    code = _lock_code(ctx, scanned.serial)
    _check_gtin(scanned, code.gtin)
    sku = _sku_dict(code.sku_id, code.name, code.unit, code.gtin)
    base = {"serial": code.serial, "sku": sku, "store_id": ctx.store_id}
    if code.kind == "case":
        raise _Refused("case_not_sellable", code_state=code.state, **base)
    if code.state == "sold":
        where = db.session.scalar(sa.select(ST.c.name).where(ST.c.id == code.store_id)) if code.store_id else None
        here = code.store_id == ctx.store_id
        return _answer("duplicate", scan=ctx.scan, reason="already_sold",
                       message=messages.already_sold(code.sold_at, where, here), code_state="sold",
                       on_hand=_on_hand(code.store_location_id, code.sku_id),
                       first_sold={"at": code.sold_at.isoformat() if code.sold_at else None,
                                   "store_id": code.store_id, "store_name": where}, **base)
    store = _StoreView(code, ctx.store_id)
    in_my_stock = code.state in ("in_store", "returned") and code.store_id == ctx.store_id
    if in_my_stock and not _diverted(code, store):
        return _sell_in_stock(ctx, code, sku, base)
    if code.state == "voided":
        raise _Refused("voided", code_state=code.state, **base)
    if code.state in ("issued", "packed", "in_warehouse"):
        raise _Refused("not_shipped", code_state=code.state, **base)
    if code.state == "in_transit" and code.destination_store_id == ctx.store_id:
        raise _Refused("not_received", code_state=code.state, **base)
    # In another store's stock or on its way there (or received here against its destination): diverted.
    policy = diversion_policy()
    if policy == "refuse":
        alert = _raise_alert(ctx, code, store, policy="refuse", event_id=None)
        raise _Refused("diverted", code_state=code.state, alerts=[alert], **base)
    if not in_my_stock:
        # The unit is physically here: the ledger moves it from where we thought it was, then sells it.
        source = code.location_id if code.state in ("in_store", "returned") else transit_location_id(
            _store_row(code.destination_store_id).location_id)
        move_stock(location_id=source, sku_id=code.sku_id, on_hand=-1, kind="transfer_out", ref_type="code",
                   ref_id=code.id, user_id=ctx.user_id, reason="窜货：在别的门店售出")
        move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=1, kind="transfer_in",
                   ref_type="code", ref_id=code.id, user_id=ctx.user_id, reason="窜货：在本店售出")
    answer = _sell_in_stock(ctx, code, sku, base, diverted=True)
    answer["alerts"].append(_raise_alert(ctx, code, store, policy="alert", event_id=answer["event_id"]))
    return answer


def _sell_in_stock(ctx: _Ctx, code: sa.Row, sku: dict, base: dict, diverted: bool = False) -> dict[str, Any]:
    at = ctx.scan.scanned_at
    db.session.execute(sa.update(C).where(C.c.id == code.id).values(
        state="sold", store_id=ctx.store_id, location_id=None, sold_at=at, updated_at=ctx.now))
    level = move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=-1, kind="sell",
                       ref_type="code", ref_id=code.id, user_id=ctx.user_id)
    event_id = _add_event(ctx, action="sell", sku_id=code.sku_id, code_id=code.id,
                          location_id=code.store_location_id, order_id=code.order_id, diverted=diverted)
    events.units_sold.send(None, store_id=ctx.store_id, sku_id=code.sku_id, quantity=1, at=at,
                           amount_fen=code.price_fen or 0, event_id=event_id)
    _credit("sell", ctx.store_id, [(code.id, event_id)])
    return _answer("accepted", scan=ctx.scan, message=messages.sold(code.name, 1, code.unit, level.on_hand),
                   code_state="sold", quantity=1, on_hand=level.on_hand, event_id=event_id, **base)


def _receive(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    code = _lock_code(ctx, scanned.serial)
    _check_gtin(scanned, code.gtin)
    sku = _sku_dict(code.sku_id, code.name, code.unit, code.gtin)
    base = {"serial": code.serial, "sku": sku, "store_id": ctx.store_id}
    if code.kind == "case":
        units = db.session.execute(
            sa.select(C.c.id, C.c.state, C.c.store_id, C.c.destination_store_id, C.c.order_id, C.c.sku_id,
                      C.c.serial).where(C.c.case_id == code.id).order_by(C.c.id).with_for_update()).all()
        todo = [u for u in units if u.state == "in_transit" and u.destination_store_id == ctx.store_id]
        if not todo:
            if units and all(u.state in ("in_store", "sold", "returned") and u.store_id == ctx.store_id
                             for u in units):
                return _answer("duplicate", scan=ctx.scan, reason="already_received",
                               message=messages.already_received(code.name), code_state=code.state,
                               on_hand=_on_hand(code.store_location_id, code.sku_id), **base)
            reason = "case_empty" if not units else (
                "not_for_this_store" if any(u.state == "in_transit" for u in units) else "not_shipped")
            raise _Refused(reason, code_state=code.state, **base)
        head = _add_event(ctx, action="receive", sku_id=code.sku_id, code_id=code.id, quantity=len(todo),
                          location_id=code.store_location_id, order_id=code.order_id)
        db.session.execute(sa.update(C).where(C.c.id == code.id).values(
            state="in_store", store_id=ctx.store_id, location_id=code.store_location_id, updated_at=ctx.now))
        on_hand = _receive_units(ctx, code, todo, head)
        return _answer("accepted", scan=ctx.scan, message=messages.received(code.name, len(todo), code.unit, on_hand),
                       code_state="in_store", quantity=len(todo), on_hand=on_hand, event_id=head, **base)
    if code.state in ("in_store", "returned") and code.store_id == ctx.store_id:
        return _answer("duplicate", scan=ctx.scan, reason="already_received",
                       message=messages.already_received(code.name), code_state=code.state,
                       on_hand=_on_hand(code.store_location_id, code.sku_id), **base)
    if code.state == "in_transit" and code.destination_store_id == ctx.store_id:
        head = _add_event(ctx, action="receive", sku_id=code.sku_id, code_id=code.id,
                          location_id=code.store_location_id, order_id=code.order_id)
        on_hand = _receive_units(ctx, code, [code], head, head_is_unit=True)
        return _answer("accepted", scan=ctx.scan, message=messages.received(code.name, 1, code.unit, on_hand),
                       code_state="in_store", quantity=1, on_hand=on_hand, event_id=head, **base)
    reason = {"in_transit": "not_for_this_store", "sold": "already_sold", "voided": "voided",
              "in_store": "not_for_this_store", "returned": "not_for_this_store"}.get(code.state, "not_shipped")
    raise _Refused(reason, code_state=code.state, **base)


def _receive_units(ctx: _Ctx, code: sa.Row, units: list, head: int, head_is_unit: bool = False) -> int:
    """Move the units transit → store, set their state, write their events, tell the orders and analytics."""
    ids = [u.id for u in units]
    db.session.execute(sa.update(C).where(C.c.id.in_(ids)).values(
        state="in_store", store_id=ctx.store_id, location_id=code.store_location_id, updated_at=ctx.now))
    transit = transit_location_id(code.store_location_id)
    n = len(units)
    move_stock(location_id=transit, sku_id=code.sku_id, on_hand=-n, kind="deliver", ref_type="scan_event",
               ref_id=head, user_id=ctx.user_id)
    level = move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=n, kind="receive",
                       ref_type="scan_event", ref_id=head, user_id=ctx.user_id)
    pairs = [(head, head)] if head_is_unit else []
    if not head_is_unit:
        step, disposition = BIZ_STEPS["receive"]
        rows = [{"code_id": u.id, "sku_id": u.sku_id, "quantity": 1, "action": "receive", "biz_step": step,
                 "disposition": disposition, "store_id": ctx.store_id, "location_id": code.store_location_id,
                 "event_time": ctx.scan.scanned_at, "recorded_at": ctx.now, "user_id": ctx.user_id,
                 "order_id": u.order_id, "lat": ctx.scan.lat, "lng": ctx.scan.lng, "parent_event_id": head,
                 "diverted": False} for u in units]
        db.session.execute(sa.insert(E), rows)
        pairs = [(u.id, head) for u in units]
    else:
        pairs = [(code.id, head)]
    by_order: dict[int | None, list[str]] = {}
    for u in units:
        by_order.setdefault(u.order_id, []).append(u.serial)
    for order_id, serials in by_order.items():
        events.units_received.send(None, store_id=ctx.store_id, sku_id=code.sku_id, quantity=len(serials),
                                   at=ctx.scan.scanned_at, order_id=order_id, serials=serials)
    _credit("receive", ctx.store_id, pairs)
    return level.on_hand


def _return(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    code = _lock_code(ctx, scanned.serial)
    _check_gtin(scanned, code.gtin)
    sku = _sku_dict(code.sku_id, code.name, code.unit, code.gtin)
    base = {"serial": code.serial, "sku": sku, "store_id": ctx.store_id}
    if code.kind == "case":
        raise _Refused("case_not_sellable", code_state=code.state, **base)
    if code.state == "returned" and code.store_id == ctx.store_id:
        return _answer("duplicate", scan=ctx.scan, reason="already_returned",
                       message=messages.already_returned(code.name), code_state=code.state,
                       on_hand=_on_hand(code.store_location_id, code.sku_id), **base)
    if code.state != "sold":
        raise _Refused("not_sold", code_state=code.state, **base)
    if code.store_id != ctx.store_id:
        raise _Refused("sold_elsewhere", code_state=code.state, **base)
    db.session.execute(sa.update(C).where(C.c.id == code.id).values(
        state="returned", location_id=code.store_location_id, updated_at=ctx.now))
    level = move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=1, kind="return",
                       ref_type="code", ref_id=code.id, user_id=ctx.user_id)
    event_id = _add_event(ctx, action="return", sku_id=code.sku_id, code_id=code.id,
                          location_id=code.store_location_id, order_id=code.order_id)
    events.units_sold.send(None, store_id=ctx.store_id, sku_id=code.sku_id, quantity=-1, at=ctx.scan.scanned_at,
                           amount_fen=-(code.price_fen or 0), event_id=event_id)
    return _answer("accepted", scan=ctx.scan, message=messages.returned(code.name, 1, code.unit, level.on_hand),
                   code_state="returned", quantity=1, on_hand=level.on_hand, event_id=event_id, **base)


def _by_gtin(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    """SKUs sold without serials: scanned by GTIN with a quantity."""
    row = db.session.execute(sa.select(S.c.id, S.c.name, S.c.unit, S.c.gtin, S.c.serialized)
                             .where(S.c.gtin == scanned.gtin)).first()
    if row is None:
        raise _Refused("unknown_gtin")
    sku = _sku_dict(row.id, row.name, row.unit, row.gtin)
    base = {"sku": sku, "store_id": ctx.store_id}
    if row.serialized:
        raise _Refused("serial_required", **base)
    q = ctx.scan.quantity or 1
    store = _store_row(ctx.store_id)
    at = ctx.scan.scanned_at
    try:
        if ctx.scan.action == "sell":
            level = move_stock(location_id=store.location_id, sku_id=row.id, on_hand=-q, kind="sell",
                               ref_type="scan", ref_id=ctx.scan.request_id[:64], user_id=ctx.user_id)
            event_id = _add_event(ctx, action="sell", sku_id=row.id, code_id=None, quantity=q,
                                  location_id=store.location_id)
            events.units_sold.send(None, store_id=ctx.store_id, sku_id=row.id, quantity=q, at=at,
                                   amount_fen=_price(row.id, store.price_tier_id) * q, event_id=event_id)
            message = messages.sold(row.name, q, row.unit, level.on_hand)
        elif ctx.scan.action == "receive":
            transit = transit_location_id(store.location_id)
            try:
                move_stock(location_id=transit, sku_id=row.id, on_hand=-q, kind="deliver", ref_type="scan",
                           ref_id=ctx.scan.request_id[:64], user_id=ctx.user_id)
            except InsufficientStock:
                raise _Refused("nothing_in_transit", **base) from None
            level = move_stock(location_id=store.location_id, sku_id=row.id, on_hand=q, kind="receive",
                               ref_type="scan", ref_id=ctx.scan.request_id[:64], user_id=ctx.user_id)
            event_id = _add_event(ctx, action="receive", sku_id=row.id, code_id=None, quantity=q,
                                  location_id=store.location_id)
            events.units_received.send(None, store_id=ctx.store_id, sku_id=row.id, quantity=q, at=at,
                                       order_id=None, serials=[])
            message = messages.received(row.name, q, row.unit, level.on_hand)
        else:
            level = move_stock(location_id=store.location_id, sku_id=row.id, on_hand=q, kind="return",
                               ref_type="scan", ref_id=ctx.scan.request_id[:64], user_id=ctx.user_id)
            event_id = _add_event(ctx, action="return", sku_id=row.id, code_id=None, quantity=q,
                                  location_id=store.location_id)
            events.units_sold.send(None, store_id=ctx.store_id, sku_id=row.id, quantity=-q, at=at,
                                   amount_fen=-_price(row.id, store.price_tier_id) * q, event_id=event_id)
            message = messages.returned(row.name, q, row.unit, level.on_hand)
    except InsufficientStock:
        raise _Refused("insufficient_stock", **base) from None
    state = {"sell": "sold", "receive": "in_store", "return": "returned"}[ctx.scan.action]
    return _answer("accepted", scan=ctx.scan, message=message, code_state=state, quantity=q,
                   on_hand=level.on_hand, event_id=event_id, **base)


# --- a batch -----------------------------------------------------------------------------------------------

def scan_batch(principal: Principal, items: list[ScanInput | dict]) -> list[dict[str, Any]]:
    """Apply an offline queue's scans in order, each on its own; runs of plain sells are applied set-based.

    `items` holds ScanInputs, or ready answers (dicts) for items the edge already refused (bad fields).
    """
    return _on_live_connection(lambda: _scan_batch_once(principal, items))


def _scan_batch_once(principal: Principal, items: list[ScanInput | dict]) -> list[dict[str, Any]]:
    answers: list[dict | None] = [it if isinstance(it, dict) else None for it in items]
    allowed: dict[int, bool] = {}
    for i, it in enumerate(items):
        if isinstance(it, dict):
            continue
        it.store_id = it.store_id if it.store_id is not None else principal.store_id
        if it.store_id is None:
            answers[i] = _answer("refused", scan=it, reason="store_required", message="请指定门店")
            continue
        if it.store_id not in allowed:
            try:
                authorize_store(principal, "scan", it.store_id)
                allowed[it.store_id] = True
            except (Forbidden, NotFound):
                allowed[it.store_id] = False
        if not allowed[it.store_id]:
            answers[i] = _answer("refused", scan=it, reason="out_of_scope", message=messages.refused("out_of_scope"),
                                 store_id=it.store_id)
    user_id = principal.user_id
    with transaction():
        todo = [(i, it) for i, it in enumerate(items) if answers[i] is None]
        ids = list({it.request_id for _, it in todo})
        stored: dict[str, dict] = {}
        for k in range(0, len(ids), 1000):
            stored.update(db.session.execute(sa.select(R.c.request_id, R.c.answer).where(
                R.c.user_id == user_id, R.c.request_id.in_(ids[k:k + 1000]))).all())
        seen_requests: set[str] = set()
        run: list[tuple[int, ScanInput, Scanned]] = []
        for i, it in todo:
            if it.request_id in stored:
                answers[i] = _replay(stored[it.request_id])
                continue
            if it.request_id in seen_requests:
                answers[i] = _answer("refused", scan=it, reason="duplicate_request_id",
                                     message="同一批里请求号重复了", store_id=it.store_id)
                continue
            seen_requests.add(it.request_id)
            fast = _fast_sell(it)
            if fast is not None:
                run.append((i, it, fast))
                continue
            _flush_run(user_id, run, answers)
            run = []
            answers[i] = _one_in_savepoint(user_id, it)
        _flush_run(user_id, run, answers)
        fresh = [a for i, a in enumerate(answers) if a is not None and not a.get("replayed")
                 and not isinstance(items[i], dict) and a.get("reason") not in ("duplicate_request_id",
                                                                                 "out_of_scope", "store_required")]
        if fresh:
            _save_requests(user_id, fresh)
    return [a for a in answers if a is not None]


def _save_requests(user_id: int, answers: list[dict]) -> None:
    """Store the batch's answers for replays, one statement."""
    now = now_utc()
    if _is_pg():
        db.session.execute(sa.text(
            "INSERT INTO scan_requests (user_id, request_id, answer, created_at)"
            " SELECT :user_id, r.request_id, a.answer, :now"
            " FROM unnest(CAST(:request_ids AS varchar[])) WITH ORDINALITY AS r(request_id, n)"
            " JOIN json_array_elements(CAST(:answers AS json)) WITH ORDINALITY AS a(answer, n) USING (n)"),
            # One JSON array, not a text[] of JSON strings: psycopg escapes every array element with a regex.
            {"user_id": user_id, "now": now, "request_ids": [a["request_id"] for a in answers],
             "answers": json.dumps(answers, ensure_ascii=False, default=str)})
        return
    db.session.execute(sa.insert(R), [{"user_id": user_id, "request_id": a["request_id"], "answer": a,
                                       "created_at": now} for a in answers])


def _fast_sell(it: ScanInput) -> Scanned | None:
    """A plain serialized sell the set-based path can take, or None."""
    if it.action != "sell" or as_utc(it.scanned_at) > now_utc() + FUTURE_SLACK:
        return None
    try:
        scanned = parse_scan(it.code)
    except ScanParseError:
        return None
    return scanned if scanned.serial else None


def _one_in_savepoint(user_id: int, it: ScanInput) -> dict[str, Any]:
    """One item on its own: a failure rolls back this item only."""
    try:
        with db.session.begin_nested():
            return _apply(user_id, it)
    except AppError as exc:
        return _answer("refused", scan=it, reason=exc.code, message=exc.message, store_id=it.store_id)


def _flush_run(user_id: int, run: list[tuple[int, ScanInput, Scanned]], answers: list) -> None:
    """Sell a run of plain sells with a handful of statements; anything unusual goes item by item."""
    if not run:
        return
    serials = list({s.serial for _, _, s in run})
    rows = {}
    for k in range(0, len(serials), 1000):
        for r in db.session.execute(
            sa.select(C.c.id, C.c.kind, C.c.state, C.c.sku_id, C.c.store_id, C.c.order_id, C.c.serial,
                      C.c.destination_store_id, C.c.destination_distributor_id, C.c.destination_region,
                      S.c.name, S.c.unit, S.c.gtin)
            .select_from(C.join(S, S.c.id == C.c.sku_id))
            .where(C.c.serial.in_(serials[k:k + 1000])).order_by(C.c.id).with_for_update(of=C)
        ):
            rows[r.serial] = r
    stores = {sid: _store_row(sid) for sid in {it.store_id for _, it, _ in run}}
    plain: list[tuple[int, ScanInput, sa.Row]] = []
    slow: list[tuple[int, ScanInput]] = []
    taken: set[str] = set()
    for i, it, s in run:
        r = rows.get(s.serial)
        store = stores[it.store_id]
        if (r is None or r.kind != "unit" or r.state not in ("in_store", "returned") or r.store_id != it.store_id
                or s.serial in taken or (s.gtin and s.gtin != r.gtin) or _diverted(r, store)):
            slow.append((i, it))
        else:
            taken.add(s.serial)
            plain.append((i, it, r))
    if plain:
        try:
            with db.session.begin_nested():
                _sell_set(user_id, plain, stores, answers)
        except InsufficientStock:
            slow = sorted(slow + [(i, it) for i, it, _ in plain], key=lambda x: x[0])
    for i, it in sorted(slow, key=lambda x: x[0]):
        answers[i] = _one_in_savepoint(user_id, it)


def _insert_sell_events(user_id: int, plain: list, stores: dict, now: datetime) -> list[int]:
    """The run's sell events, one statement; ids in the run's order."""
    step, disposition = BIZ_STEPS["sell"]
    if _is_pg():
        # unnest over arrays: a fixed statement text, where a 500-row VALUES insert is parsed anew every time.
        rows = db.session.execute(sa.text(
            "INSERT INTO scan_events (code_id, sku_id, quantity, action, biz_step, disposition, store_id,"
            " location_id, event_time, recorded_at, user_id, order_id, lat, lng, diverted)"
            " SELECT e.code_id, e.sku_id, 1, 'sell', :step, :disposition, e.store_id, e.location_id, e.event_time,"
            " :now, :user_id, e.order_id, e.lat, e.lng, false"
            " FROM unnest(CAST(:code_ids AS bigint[]), CAST(:sku_ids AS bigint[]), CAST(:store_ids AS bigint[]),"
            " CAST(:location_ids AS bigint[]), CAST(:times AS timestamptz[]), CAST(:order_ids AS bigint[]),"
            " CAST(:lats AS float8[]), CAST(:lngs AS float8[]))"
            " AS e(code_id, sku_id, store_id, location_id, event_time, order_id, lat, lng)"
            " RETURNING id, code_id"),
            {"step": step, "disposition": disposition, "now": now, "user_id": user_id,
             "code_ids": [r.id for _, _, r in plain], "sku_ids": [r.sku_id for _, _, r in plain],
             "store_ids": [it.store_id for _, it, _ in plain],
             "location_ids": [stores[it.store_id].location_id for _, it, _ in plain],
             "times": [as_utc(it.scanned_at) for _, it, _ in plain], "order_ids": [r.order_id for _, _, r in plain],
             "lats": [it.lat for _, it, _ in plain], "lngs": [it.lng for _, it, _ in plain]}).all()
        by_code = {code_id: event_id for event_id, code_id in rows}
        return [by_code[r.id] for _, _, r in plain]
    rows = [{"code_id": r.id, "sku_id": r.sku_id, "quantity": 1, "action": "sell", "biz_step": step,
             "disposition": disposition, "store_id": it.store_id, "location_id": stores[it.store_id].location_id,
             "event_time": it.scanned_at, "recorded_at": now, "user_id": user_id, "order_id": r.order_id,
             "lat": it.lat, "lng": it.lng, "diverted": False} for _, it, r in plain]
    return list(db.session.scalars(sa.insert(E).returning(E.c.id, sort_by_parameter_order=True), rows))


def _sell_set(user_id: int, plain: list[tuple[int, ScanInput, sa.Row]], stores: dict, answers: list) -> None:
    now = now_utc()
    # Codes: one UPDATE for the run, sold_at and store from arrays (device times differ per item).
    sold = [(r.id, as_utc(it.scanned_at), it.store_id) for _, it, r in plain]
    if _is_pg():
        db.session.execute(sa.text(
            "UPDATE codes SET state = 'sold', store_id = s.sid, location_id = NULL, sold_at = s.at, updated_at = :now"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[]), CAST(:sids AS bigint[]))"
            " AS s(cid, at, sid) WHERE codes.id = s.cid"),
            {"now": now, "ids": [c for c, _, _ in sold], "ats": [a for _, a, _ in sold],
             "sids": [x for _, _, x in sold]})
    else:
        db.session.execute(
            sa.update(C).where(C.c.id == sa.bindparam("cid")).values(
                state="sold", store_id=sa.bindparam("sid"), location_id=None, sold_at=sa.bindparam("at"),
                updated_at=now).execution_options(synchronize_session=False),
            [{"cid": c, "at": a, "sid": sid} for c, a, sid in sold])
    per: dict[tuple[int, int], int] = {}
    for _, it, r in plain:
        per[(it.store_id, r.sku_id)] = per.get((it.store_id, r.sku_id), 0) + 1
    levels = {}
    for (store_id, sku_id), n in sorted(per.items()):
        levels[(store_id, sku_id)] = move_stock(location_id=stores[store_id].location_id, sku_id=sku_id, on_hand=-n,
                                                kind="sell", ref_type="scan_batch", user_id=user_id).on_hand
    event_ids = _insert_sell_events(user_id, plain, stores, now)
    prices = {}
    for store_id, sku_id in per:
        prices[(store_id, sku_id)] = _price(sku_id, stores[store_id].price_tier_id)
    # One signal per store, SKU and business day (quantity N), so the rollups see N units in one upsert.
    from app.core.clock import business_day

    groups: dict[tuple[int, int, Any], list] = {}
    for (_, it, r), event_id in zip(plain, event_ids, strict=True):
        groups.setdefault((it.store_id, r.sku_id, business_day(it.scanned_at)), []).append((it, event_id))
    for (store_id, sku_id, _day), members in groups.items():
        n = len(members)
        events.units_sold.send(None, store_id=store_id, sku_id=sku_id, quantity=n,
                               at=max(as_utc(it.scanned_at) for it, _ in members),
                               amount_fen=prices[(store_id, sku_id)] * n, event_id=members[0][1])
    by_store: dict[int, list[tuple[int, int]]] = {}
    for (_, it, r), event_id in zip(plain, event_ids, strict=True):
        by_store.setdefault(it.store_id, []).append((r.id, event_id))
    for store_id, pairs in by_store.items():
        _credit("sell", store_id, pairs)
    # Each answer shows the stock after the whole run (the count the owner will see next).
    for (i, it, r), event_id in zip(plain, event_ids, strict=True):
        sku = _sku_dict(r.sku_id, r.name, r.unit, r.gtin)
        on_hand = levels[(it.store_id, r.sku_id)]
        answers[i] = _answer("accepted", scan=it, message=messages.sold(r.name, 1, r.unit, on_hand),
                             code_state="sold", serial=r.serial, sku=sku, quantity=1, on_hand=on_hand,
                             event_id=event_id, store_id=it.store_id)


# --- undo --------------------------------------------------------------------------------------------------

def undo_scan(principal: Principal, event_id: int) -> dict[str, Any]:
    """Correct one's own recent scan with a new event (never a delete); stock and sell-through follow."""
    window = timedelta(minutes=current_app.config["SCAN_UNDO_MINUTES"])
    with transaction():
        ev = db.session.execute(sa.select(ScanEvent).where(ScanEvent.id == event_id).with_for_update()).scalar()
        if ev is None or ev.user_id != principal.user_id or ev.store_id is None:
            raise NotFound("找不到你的这次扫码", code="scan_not_found")
        authorize_store(principal, "scan", ev.store_id)
        if ev.action not in ACTIONS or ev.parent_event_id is not None:
            raise AppError("这次扫码不能撤销", code="not_undoable", status=409)
        if db.session.scalar(sa.select(E.c.id).where(E.c.corrects_event_id == ev.id)):
            raise AppError("这次扫码已经撤销过了", code="already_undone", status=409)
        now = now_utc()
        if now - ev.recorded_at > window:
            raise AppError(f"只能撤销 {window.seconds // 60} 分钟内的扫码", code="undo_window_passed", status=409)
        store = _store_row(ev.store_id)
        sku = db.session.get(Sku, ev.sku_id)
        ctx = _Ctx(user_id=principal.user_id, store_id=ev.store_id, now=now,
                   scan=ScanInput(request_id=f"undo:{ev.id}", code="", action="undo", scanned_at=now))
        price = _price(ev.sku_id, store.price_tier_id)
        units = _undo_units(ev)
        n = len(units) if ev.code_id is not None else ev.quantity
        loc = store.location_id
        if ev.action == "sell":
            _set_codes(units, expect=("sold", ev.store_id), state="in_store", location_id=loc, now=now)
            level = move_stock(location_id=loc, sku_id=ev.sku_id, on_hand=n, kind="undo", ref_type="scan_event",
                               ref_id=ev.id, user_id=principal.user_id, reason="撤销售出")
            events.units_sold.send(None, store_id=ev.store_id, sku_id=ev.sku_id, quantity=-n, at=ev.event_time,
                                   amount_fen=-price * n, event_id=ev.id)
        elif ev.action == "return":
            _set_codes(units, expect=("returned", ev.store_id), state="sold", location_id=None, now=now)
            level = _undo_move(loc, ev, -n, principal.user_id, "撤销退货")
            events.units_sold.send(None, store_id=ev.store_id, sku_id=ev.sku_id, quantity=n, at=ev.event_time,
                                   amount_fen=price * n, event_id=ev.id)
        else:
            _set_codes(units, expect=("in_store", ev.store_id), state="in_transit", location_id=None, now=now)
            if ev.code_id is not None and units and db.session.scalar(
                    sa.select(C.c.kind).where(C.c.id == ev.code_id)) == "case":
                db.session.execute(sa.update(C).where(C.c.id == ev.code_id).values(
                    state="in_transit", location_id=None, updated_at=now))
            level = _undo_move(loc, ev, -n, principal.user_id, "撤销入库")
            move_stock(location_id=transit_location_id(loc), sku_id=ev.sku_id, on_hand=n, kind="undo",
                       ref_type="scan_event", ref_id=ev.id, user_id=principal.user_id, reason="撤销入库")
        undo_id = _add_event(ctx, action="undo", sku_id=ev.sku_id, code_id=ev.code_id, quantity=n,
                             location_id=loc, corrects_event_id=ev.id, event_time=now, order_id=ev.order_id)
        state = db.session.scalar(sa.select(C.c.state).where(C.c.id == ev.code_id)) if ev.code_id else None
        serial = db.session.scalar(sa.select(C.c.serial).where(C.c.id == ev.code_id)) if ev.code_id else None
        return {"status": "accepted", "reason": None, "message": messages.undone(ev.action, sku.name),
                "action": "undo", "undone_event_id": ev.id, "event_id": undo_id, "serial": serial,
                "code_state": state, "quantity": n, "store_id": ev.store_id,
                "sku": _sku_dict(sku.id, sku.name, sku.unit, sku.gtin),
                "stock": {"sku_id": sku.id, "on_hand": level.on_hand}, "alerts": []}


def _undo_move(loc: int, ev: ScanEvent, delta: int, user_id: int, reason: str):
    try:
        return move_stock(location_id=loc, sku_id=ev.sku_id, on_hand=delta, kind="undo", ref_type="scan_event",
                          ref_id=ev.id, user_id=user_id, reason=reason)
    except InsufficientStock:
        raise AppError("店内库存已经变了，不能撤销这次扫码", code="not_undoable", status=409) from None


def _undo_units(ev: ScanEvent) -> list[int]:
    """The unit codes the event moved: the code itself, or for a case scan the units under its event."""
    if ev.code_id is None:
        return []
    children = list(db.session.scalars(sa.select(E.c.code_id).where(E.c.parent_event_id == ev.id)))
    return children or [ev.code_id]


def _set_codes(ids: list[int], *, expect: tuple[str, int], state: str, location_id: int | None,
               now: datetime) -> None:
    """Move codes back, but only if nothing happened to them since the scan being undone."""
    if not ids:
        return
    result = db.session.execute(sa.update(C).where(C.c.id.in_(ids), C.c.state == expect[0],
                                                   C.c.store_id == expect[1])
                                .values(state=state, location_id=location_id, updated_at=now,
                                        **({"sold_at": None} if expect[0] == "sold" and state != "sold" else {})))
    if result.rowcount != len(ids):
        raise AppError("这件商品后来又被扫过，不能撤销这次扫码", code="not_undoable", status=409)
