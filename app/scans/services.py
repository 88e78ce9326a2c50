"""Store scans: receive, sell, return and undo, each one use case in one transaction.

The sell is the hot path (every unit a store sells). On PostgreSQL a plain sell is one call of a SQL function
(`app.scans.hot`), and a batch's run of plain sells one call of its set-based sibling; what they decline, and
every scan on SQLite, takes the general path here: lock the code, decide, write, answer. Both paths write the same
rows and the same answer (tests/scans/test_hot_path.py holds them to it).
Each general-path scan, alone or as an item of a batch, is one short transaction that takes its locks in the global
order (`app.inventory.services`), keeps its answer with its work, and is run again if PostgreSQL still aborts it
for a deadlock (`app.core.retry`).
A scan answer is a plain dict (see `miniprogram_api/scans/schemas.py`), or for the hot path an `EncodedAnswer`
(its JSON text, read like a dict); business refusals are answers, not errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql

from app.accounts.roles import STORE_OWNER
from app.catalog.models import Sku, SkuPrice
from app.channel.models import Partner, Store
from app.codes.models import BIZ_STEPS, Code, ScanEvent
from app.codes.parse import PARSE_ERRORS, Scanned, ScanParseError, parse_scan
from app.core import events, metrics
from app.core.clock import BUSINESS_TZ, as_utc, now_utc
from app.core.db import dialect_insert, on_postgres
from app.core.retry import is_retryable, retried, run_retrying
from app.core.security import Principal, authorize_store
from app.core.tx import after_commit, transaction
from app.errors import AppError, Forbidden, NotFound
from app.extensions import db
from app.incentives.models import IncentiveCredit, IncentiveRule
from app.inventory.services import InsufficientStock, lock_levels, move_stock, transit_location_id
from app.referrals.services import sale_reversed
from app.scans import hot, messages
from app.scans.answers import build_answer, build_undo_answer, sku_ref
from app.scans.inbox import note_sale
from app.scans.models import DiversionAlert, ScanRequest
from app.scans.policy import diversion_policy

_T = TypeVar("_T")

ACTIONS = ("receive", "sell", "return")
# The phone's clock and the server's may differ by this much: a device time this close to the server's is taken
# as is ("live"); any other must lie within the offline window (SCAN_OFFLINE_DAYS) and not before the last event
# of a code the scan moves, or the scan is recorded at the time the server received it (see `_scan_time`).
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
    orders_locked: set[int] = field(default_factory=set)
    # The time the scan is recorded at: the phone's, or the server's when the phone's cannot be right.
    at: datetime | None = None
    time_adjusted: bool = False
    found_event_id: int | None = None
    # The phone's time is neither live nor out of the window: the history of the codes it moves must allow it.
    check_history: bool = False

    def __post_init__(self) -> None:
        if self.at is None:
            self.at = self.scan.scanned_at


class _Refused(Exception):
    def __init__(self, reason: str, message: str | None = None, **extra: Any):
        super().__init__(reason)
        self.reason, self.message, self.extra = reason, message or messages.refused(reason), extra


# --- helpers ------------------------------------------------------------------------------------------------

_insert = dialect_insert


def _answer(status: str, *, scan: ScanInput, message: str, **fields: Any) -> dict[str, Any]:
    """The answer to `scan` (`app.scans.answers.build_answer`, which holds the shape)."""
    return build_answer(status, request_id=scan.request_id, action=scan.action, message=message, **fields)



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
    store = store_id or ctx.store_id
    attribution = _attribution(store) if action == "sell" else {}
    return db.session.execute(sa.insert(E).values(
        code_id=code_id, sku_id=sku_id, quantity=quantity, action=action, biz_step=step, disposition=disposition,
        store_id=store, location_id=location_id, event_time=event_time or ctx.at,
        recorded_at=ctx.now, user_id=ctx.user_id, order_id=order_id, lat=ctx.scan.lat, lng=ctx.scan.lng,
        parent_event_id=parent_event_id, corrects_event_id=corrects_event_id, diverted=diverted, **attribution,
    ).returning(E.c.id)).scalar_one()


def _attribution(store_id: int) -> dict[str, Any]:
    """A sell's attribution as the event's own columns, read in the INSERT: the distributor serving the store
    now and that distributor's parent agent (as the hot path's `scan_sell_*_v3` functions record it)."""
    distributor = sa.select(ST.c.distributor_id).where(ST.c.id == store_id).scalar_subquery()
    d, a = Partner.__table__.alias("d"), Partner.__table__.alias("a")
    agent = (sa.select(a.c.id).select_from(ST.join(d, d.c.id == ST.c.distributor_id)
                                           .join(a, a.c.id == d.c.parent_id))
             .where(ST.c.id == store_id, a.c.kind == "agent").scalar_subquery())
    return {"partner_id": distributor, "agent_id": agent}


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
    """The first answer to this request: rebuilt from the hot path's event (a sale that went through is the truth,
    whatever was stored beside it), or stored by the general path."""
    hot_answer = _hot_answers(user_id, [request_id]).get(request_id)
    if hot_answer is not None:
        return hot_answer
    return db.session.scalar(sa.select(R.c.answer).where(R.c.user_id == user_id, R.c.request_id == request_id))


def _hot_answers(user_id: int, request_ids: list[str]) -> dict[str, dict]:
    """The answers the hot path gave these requests, rebuilt from their events (the request and the stock left are
    recorded there), exactly as `scan_sell_one`/`scan_sell_many` built them."""
    if not request_ids or not _is_pg():
        return {}
    rows = db.session.execute(
        sa.select(E.c.request_id, E.c.id, E.c.sku_id, E.c.store_id, E.c.on_hand_after, E.c.event_time, C.c.serial,
                  S.c.name, S.c.unit, S.c.gtin)
        .select_from(E.join(C, C.c.id == E.c.code_id).join(S, S.c.id == E.c.sku_id))
        .where(E.c.user_id == user_id, _one_of(E.c.request_id, request_ids))).all()
    out = {}
    for r in rows:
        message = messages.sold(r.name, 1, r.unit, r.on_hand_after)
        out[r.request_id] = build_answer(
            "accepted", request_id=r.request_id, action="sell", message=message, code_state="sold", serial=r.serial,
            sku=sku_ref(r.sku_id, r.name, r.unit, r.gtin), quantity=1, on_hand=r.on_hand_after, event_id=r.id,
            store_id=r.store_id)
    return out


def _one_of(column: sa.ColumnElement, values: list[str]) -> sa.ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter, where an IN list of 500 is rendered
    parameter by parameter on every execution."""
    if _is_pg():
        return column == sa.any_(sa.bindparam("values", values, type_=postgresql.ARRAY(sa.String)))
    return column.in_(values)


def _hot_answered(user_id: int, request_id: str) -> bool:
    """Whether the hot path already took this request (PostgreSQL only: elsewhere there is no hot path)."""
    return _is_pg() and db.session.scalar(sa.select(E.c.id).where(
        E.c.user_id == user_id, E.c.request_id == request_id)) is not None


def _replay(answer: dict) -> dict:
    return {**answer, "replayed": True}


# The reasons a refusal is counted under (a bounded label): the refusal table and what the code parser says.
COUNTED_REASONS = frozenset(messages.REFUSALS) | frozenset(PARSE_ERRORS)


def _count(answer: Mapping[str, Any]) -> None:
    """Count one answered scan item (`scans_total`): only once what it did has committed, or when it did nothing
    (a refusal given at once, a replay). A refusal's reason label is one of COUNTED_REASONS, or `other`."""
    status = answer.get("status")
    outcome = "replayed" if answer.get("replayed") else (status if status in ("accepted", "duplicate") else "refused")
    reason = answer.get("reason") or ""
    metrics.count_scan(answer.get("action"), outcome,
                       (reason if reason in COUNTED_REASONS else "other") if outcome == "refused" else "")


def _count_hot_sell() -> None:
    """A sell the hot path made: committed by its own statement, always accepted (its JSON is not parsed)."""
    metrics.count_scan("sell", "accepted")


# --- the phone's clock -------------------------------------------------------------------------------------

def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _is_live(at: datetime, now: datetime) -> bool:
    """A device time within the clock slack of the server's: taken as is."""
    return now - FUTURE_SLACK <= _aware(at) <= now + FUTURE_SLACK


def _in_window(at: datetime, now: datetime) -> bool:
    """A device time an offline queue can have: not in the future (beyond the slack), not older than the window.

    Compared, never converted: a year-1 time with an offset cannot be moved to UTC at all."""
    window = timedelta(days=current_app.config["SCAN_OFFLINE_DAYS"])
    return now - window <= _aware(at) <= now + FUTURE_SLACK


def _scan_time(ctx: _Ctx) -> None:
    """Decide the time a scan is recorded at, before its code is known (see FUTURE_SLACK)."""
    at = _aware(ctx.scan.scanned_at)
    if _is_live(at, ctx.now):
        ctx.at = as_utc(at)
    elif _in_window(at, ctx.now):
        ctx.at, ctx.check_history = as_utc(at), True
    else:
        ctx.at, ctx.time_adjusted = ctx.now, True


def _not_before_history(ctx: _Ctx, code_ids: list[int]) -> None:
    """A queued scan dated before the last event of a code it moves (the scan that brought the unit here, say)
    comes from a wrong clock: it is recorded at the time the server received it."""
    if not ctx.check_history or not code_ids:
        return
    ctx.check_history = False
    last = db.session.scalar(sa.select(sa.func.max(E.c.event_time)).where(E.c.code_id.in_(code_ids)))
    if last is not None and ctx.at < as_utc(last):
        ctx.at, ctx.time_adjusted = ctx.now, True


def _noted_time(ctx: _Ctx, answer: dict[str, Any]) -> dict[str, Any]:
    """An accepted scan recorded at the server's time says so, in the sentence and in a field."""
    if ctx.time_adjusted and answer.get("status") == "accepted":
        answer["time_adjusted"] = True
        answer["message"] = messages.with_time_note(answer["message"])
    return answer


# --- one scan ----------------------------------------------------------------------------------------------

def scan(principal: Principal, data: ScanInput) -> Mapping[str, Any]:
    """Apply one scan (receive, sell or return) for the caller's store; a replayed request_id gets its first answer."""
    store_id = data.store_id if data.store_id is not None else principal.store_id
    if store_id is None:
        from app.errors import ValidationFailed

        raise ValidationFailed("请指定门店", code="store_required", details={"fields": {"store_id": ["必填"]}})
    authorize_store(principal, "scan", store_id)
    data.store_id = store_id
    # Only a live sell takes the hot path: any other device time needs the code's history (the general path).
    if data.action == "sell" and _hot_enabled() and _is_live(data.scanned_at, now_utc()):
        item = _hot_item(principal.user_id, data)
        if item is not None:
            text = hot.sell_one(item, tz=BUSINESS_TZ.key)
            if text is not None:
                _count_hot_sell()
                return EncodedAnswer(text)
    return _on_live_connection(lambda: run_retrying(lambda: _scan_once(principal.user_id, data), name="scan"))


def _hot_enabled() -> bool:
    """Whether the hot sell path can run: it is PostgreSQL's (SQLite takes the general path for everything)."""
    return db.engine.dialect.name == "postgresql"


def _hot_item(user_id: int, data: ScanInput) -> hot.HotSell | None:
    """A sell of a serialized code with a device time inside the offline window, for the hot path; None for
    anything else (a time outside the window is replaced by the general path, which says so)."""
    if not _in_window(data.scanned_at, now_utc()):
        return None
    try:
        scanned = parse_scan(data.code)
    except ScanParseError:
        return None
    if scanned.serial is None:
        return None
    return hot.HotSell(user_id=user_id, request_id=data.request_id, serial=scanned.serial, gtin=scanned.gtin,
                       store_id=data.store_id, at=data.scanned_at, lat=data.lat, lng=data.lng)


class EncodedAnswer(Mapping[str, Any]):
    """An answer the hot path built, kept as its JSON text: sent as is, read like a dict."""

    __slots__ = ("_data", "text")

    def __init__(self, text: str):
        self.text, self._data = text, None

    def _parsed(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self.text)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self):
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


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


def _scan_once(user_id: int, data: ScanInput, *, errors_as_answers: bool = False) -> dict[str, Any]:
    """One scan through the general path in one transaction, its answer kept with its work. A request answered
    before, or meanwhile by a racing copy of itself on either path, changes nothing and gets that first answer,
    marked replayed. With `errors_as_answers` (a batch item) an error of the scan is its refusal, kept the same way.
    """
    try:
        try:
            with transaction():
                answer = _apply(user_id, data)
                _keep_answer(user_id, data, answer)
                after_commit(lambda: _count(answer))
        except AppError as exc:
            if not errors_as_answers:
                raise
            answer = _answer("refused", scan=data, reason=exc.code, message=exc.message, store_id=data.store_id)
            with transaction():  # the scan's writes were rolled back with the error: only its answer is kept
                _keep_answer(user_id, data, answer)
                after_commit(lambda: _count(answer))
    except _Replayed:
        first = _stored_answer(user_id, data.request_id)
        if first is None:
            raise RuntimeError(f"request {data.request_id!r} was answered, but its answer cannot be read") from None
        answer = _replay(first)
        _count(answer)
    return answer


def _keep_answer(user_id: int, data: ScanInput, answer: dict[str, Any]) -> None:
    """Store the answer for replays, or raise _Replayed (rolling this attempt back) if the request has one already.

    Asked after the work: a racing copy of this request that the hot path took has committed by now (it held the
    code), and so has one that took the general path (its stored answer holds the key this insert waits on).
    """
    if (data.action == "sell" and _hot_answered(user_id, data.request_id)) or not _save_request(user_id, answer):
        raise _Replayed()


class _Replayed(Exception):
    """The request_id was answered before: roll this attempt back and hand out the first answer."""


def _apply(user_id: int, data: ScanInput) -> dict[str, Any]:
    """One scan's work inside the caller's transaction; business refusals come back as answers."""
    ctx = _Ctx(user_id=user_id, store_id=data.store_id, scan=data, now=now_utc())
    _scan_time(ctx)
    try:
        try:
            scanned = parse_scan(data.code)
        except ScanParseError as exc:
            raise _Refused(exc.code, exc.message) from None
        if scanned.serial is None:
            return _noted_time(ctx, _by_gtin(ctx, scanned))
        if data.action == "sell":
            return _noted_time(ctx, _sell(ctx, scanned))
        if data.action == "receive":
            return _noted_time(ctx, _receive(ctx, scanned))
        return _noted_time(ctx, _return(ctx, scanned))
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


class CodeMoved(AppError):
    """The code changed between reading it and moving it (another scan got there first): nothing was done."""

    status, code, message = 409, "code_changed", "这个码刚被别人扫过，请再扫一次"


def _move_code(code: sa.Row, **values: Any) -> None:
    """Move a code from the state (and store) it was read in, as one compare-and-set: if another scan moved it
    since, nothing is written and the use case is rolled back (`CodeMoved`). This holds without any lock; the
    lock (`_lock_code`; SQLite's write lock) makes it the rare case, not the guard."""
    result = db.session.execute(sa.update(C).where(
        C.c.id == code.id, C.c.state == code.state, C.c.store_id.is_not_distinct_from(code.store_id)).values(**values))
    if result.rowcount != 1:
        raise CodeMoved()


def _sell(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    code = _lock_code(ctx, scanned.serial)
    _check_gtin(scanned, code.gtin)
    sku = sku_ref(code.sku_id, code.name, code.unit, code.gtin)
    base = {"serial": code.serial, "sku": sku, "store_id": ctx.store_id}
    if code.kind == "case":
        raise _Refused("case_not_sellable", code_state=code.state, **base)
    _not_before_history(ctx, [code.id])
    if code.state == "sold":
        where = db.session.scalar(sa.select(ST.c.name).where(ST.c.id == code.store_id)) if code.store_id else None
        here = code.store_id == ctx.store_id
        return _answer("duplicate", scan=ctx.scan, reason="already_sold",
                       message=messages.already_sold(code.sold_at, where, here), code_state="sold",
                       on_hand=_on_hand(code.store_location_id, code.sku_id),
                       first_sold={"at": code.sold_at.isoformat() if code.sold_at else None,
                                   "store_id": code.store_id, "store_name": where}, **base)
    store = _StoreView(code, ctx.store_id)
    if code.state == "missing":
        if code.store_id != ctx.store_id:
            raise _Refused("missing", code_state=code.state, **base)
        _found_here(ctx, code)  # the unit a stocktake missed turned up on the shelf: back in stock, then sold
        code = _lock_code(ctx, scanned.serial)  # as it is now (in stock), for the sell's compare-and-set
    in_my_stock = code.state in ("in_store", "returned", "missing") and code.store_id == ctx.store_id
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
        lock_levels([(source, code.sku_id), (code.store_location_id, code.sku_id)])
        move_stock(location_id=source, sku_id=code.sku_id, on_hand=-1, kind="transfer_out", ref_type="code",
                   ref_id=code.id, user_id=ctx.user_id, reason="窜货：在别的门店售出")
        move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=1, kind="transfer_in",
                   ref_type="code", ref_id=code.id, user_id=ctx.user_id, reason="窜货：在本店售出")
    answer = _sell_in_stock(ctx, code, sku, base, diverted=True)
    answer["alerts"].append(_raise_alert(ctx, code, store, policy="alert", event_id=answer["event_id"]))
    return answer


def _sell_in_stock(ctx: _Ctx, code: sa.Row, sku: dict, base: dict, diverted: bool = False) -> dict[str, Any]:
    at = ctx.at
    _move_code(code, state="sold", store_id=ctx.store_id, location_id=None, sold_at=at, updated_at=ctx.now)
    level = move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=-1, kind="sell",
                       ref_type="code", ref_id=code.id, user_id=ctx.user_id)
    event_id = _add_event(ctx, action="sell", sku_id=code.sku_id, code_id=code.id,
                          location_id=code.store_location_id, order_id=code.order_id, diverted=diverted)
    note_sale(store_id=ctx.store_id, sku_id=code.sku_id, quantity=1, at=at,
              amount_fen=code.price_fen or 0, event_id=event_id)
    _credit("sell", ctx.store_id, [(code.id, event_id)])
    return _answer("accepted", scan=ctx.scan, message=messages.sold(code.name, 1, code.unit, level.on_hand),
                   code_state="sold", quantity=1, on_hand=level.on_hand, event_id=event_id, **base)


def _lock_orders(ctx: _Ctx, order_ids: set[int]) -> None:
    """Have the orders a receive will count units on locked (by their domain, in id order); each once."""
    todo = sorted(order_ids - ctx.orders_locked)
    if todo:
        events.receiving.send(None, order_ids=todo)
        ctx.orders_locked.update(todo)


def _receive(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    # The lock order puts an order before its codes: look (without a lock) which orders the code and its units
    # are on, and have those locked first. Should the code move to another order before it is locked, that order
    # is locked after it, before any stock (see _receive_units), and a deadlock that may still bring is retried.
    case = sa.select(C.c.id).where(C.c.serial == scanned.serial).scalar_subquery()
    _lock_orders(ctx, set(db.session.scalars(sa.select(C.c.order_id).distinct().where(
        sa.or_(C.c.serial == scanned.serial, C.c.case_id == case), C.c.order_id.is_not(None)))))
    code = _lock_code(ctx, scanned.serial)
    _check_gtin(scanned, code.gtin)
    sku = sku_ref(code.sku_id, code.name, code.unit, code.gtin)
    base = {"serial": code.serial, "sku": sku, "store_id": ctx.store_id}
    if code.kind == "case":
        units = db.session.execute(
            sa.select(C.c.id, C.c.state, C.c.store_id, C.c.destination_store_id, C.c.order_id, C.c.sku_id,
                      C.c.serial).where(C.c.case_id == code.id).order_by(C.c.serial).with_for_update()).all()
        todo = [u for u in units if u.state == "in_transit" and u.destination_store_id == ctx.store_id]
        _not_before_history(ctx, [code.id, *(u.id for u in todo)])
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
        _move_code(code, state="in_store", store_id=ctx.store_id, location_id=code.store_location_id,
                   updated_at=ctx.now)
        on_hand = _receive_units(ctx, code, todo, head)
        return _answer("accepted", scan=ctx.scan, message=messages.received(code.name, len(todo), code.unit, on_hand),
                       code_state="in_store", quantity=len(todo), on_hand=on_hand, event_id=head, **base)
    _not_before_history(ctx, [code.id])
    if code.state in ("in_store", "returned") and code.store_id == ctx.store_id:
        return _answer("duplicate", scan=ctx.scan, reason="already_received",
                       message=messages.already_received(code.name), code_state=code.state,
                       on_hand=_on_hand(code.store_location_id, code.sku_id), **base)
    if code.state == "missing" and code.store_id == ctx.store_id:
        level = _found_here(ctx, code)
        return _answer("accepted", scan=ctx.scan, message=messages.found(code.name, code.unit, level.on_hand),
                       code_state="in_store", quantity=1, on_hand=level.on_hand, event_id=ctx.found_event_id, **base)
    if code.state == "in_transit" and code.destination_store_id == ctx.store_id:
        head = _add_event(ctx, action="receive", sku_id=code.sku_id, code_id=code.id,
                          location_id=code.store_location_id, order_id=code.order_id)
        on_hand = _receive_units(ctx, code, [code], head, head_is_unit=True)
        return _answer("accepted", scan=ctx.scan, message=messages.received(code.name, 1, code.unit, on_hand),
                       code_state="in_store", quantity=1, on_hand=on_hand, event_id=head, **base)
    reason = {"in_transit": "not_for_this_store", "sold": "already_sold", "voided": "voided",
              "in_store": "not_for_this_store", "returned": "not_for_this_store",
              "missing": "missing"}.get(code.state, "not_shipped")
    raise _Refused(reason, code_state=code.state, **base)


def _found_here(ctx: _Ctx, code: sa.Row):
    """A unit a stocktake marked missing here is scanned here again: back on the shelf, with its ledger row."""
    moved = db.session.execute(sa.update(C).where(C.c.id == code.id, C.c.state == "missing",
                                                  C.c.store_id == ctx.store_id).values(
        state="in_store", location_id=code.store_location_id, updated_at=ctx.now))
    if moved.rowcount != 1:
        raise CodeMoved()
    level = move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=1, kind="stocktake",
                       ref_type="code", ref_id=code.id, user_id=ctx.user_id, reason="盘点时登记丢失，又扫到了")
    ctx.found_event_id = _add_event(ctx, action="found", sku_id=code.sku_id, code_id=code.id,
                                    location_id=code.store_location_id, order_id=code.order_id)
    return level


def _receive_units(ctx: _Ctx, code: Any, units: list, head: int, head_is_unit: bool = False,
                   credit: bool = True) -> int:
    """Move the units transit → store, set their state, write their events, tell the orders and analytics.

    The units must still be in transit here (a compare-and-set: a racing receive of one of them refuses this one),
    and `credit` pays the receive incentive (a verified scan; not a confirmation without scanning)."""
    ids = [u.id for u in units]
    # Only units still on their way here: another receive of the same units that got in first fails this one.
    moved = db.session.execute(sa.update(C).where(
        C.c.id.in_(ids), C.c.state == "in_transit", C.c.destination_store_id == ctx.store_id).values(
        state="in_store", store_id=ctx.store_id, location_id=code.store_location_id, updated_at=ctx.now))
    if moved.rowcount != len(ids):
        raise CodeMoved()
    transit = transit_location_id(code.store_location_id)
    _lock_orders(ctx, {u.order_id for u in units if u.order_id})
    lock_levels([(transit, code.sku_id), (code.store_location_id, code.sku_id)])
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
                 "event_time": ctx.at, "recorded_at": ctx.now, "user_id": ctx.user_id,
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
                                   at=ctx.at, order_id=order_id, serials=serials)
    if credit:
        _credit("receive", ctx.store_id, pairs)
    return level.on_hand


def receive_in_transit(*, store_id: int, user_id: int, order_id: int | None = None,
                       unit_ids: list[int] | None = None) -> dict[int, int]:
    """Receive, in the caller's transaction, the unit codes in transit to the store (those of `order_id`, or
    `unit_ids`) exactly as scanning them in would: codes in store, stock transit → store with its ledger rows,
    receive events (a case's units under one event for the case, as a case scan), the orders told (delivery
    follows). No scan incentive: nobody scanned. Returns the units received per SKU.

    Codes are locked as a scan locks them, a case before its units, then stock, then the order (via the
    orders' receiver), so a scan of the same goods at the same moment waits or finds them received.
    """
    store = _store_row(store_id)
    now = now_utc()
    pick = [C.c.kind == "unit", C.c.state == "in_transit", C.c.destination_store_id == store_id]
    pick.append(C.c.order_id == order_id if unit_ids is None else C.c.id.in_(unit_ids or [0]))
    as_cases = unit_ids is None
    case_ids = sorted({c for c in db.session.scalars(sa.select(C.c.case_id).where(*pick)) if c is not None}) \
        if as_cases else []
    cases = {r.id: r for r in db.session.execute(sa.select(C.c.id, C.c.sku_id, C.c.order_id).where(
        C.c.id.in_(case_ids)).order_by(C.c.id).with_for_update())} if case_ids else {}
    units = db.session.execute(sa.select(C.c.id, C.c.sku_id, C.c.order_id, C.c.serial, C.c.case_id)
                               .where(*pick).order_by(C.c.id).with_for_update()).all()
    ctx = _Ctx(user_id=user_id, store_id=store_id, now=now,
               scan=ScanInput(request_id="", code="", action="receive", scanned_at=now))
    groups: dict[tuple[int | None, int], list] = {}
    for u in units:
        key = (u.case_id if u.case_id in cases else None, u.sku_id)
        groups.setdefault(key, []).append(u)
    received: dict[int, int] = {}
    for (case_id, sku_id), group in sorted(groups.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or 0,
                                                                          kv[0][1])):
        heads = [(case_id, group)] if case_id is not None else [(u.id, [u]) for u in group]
        for head_code, members in heads:
            head = _add_event(ctx, action="receive", sku_id=sku_id, code_id=head_code, quantity=len(members),
                              location_id=store.location_id, order_id=members[0].order_id)
            if case_id is not None:
                db.session.execute(sa.update(C).where(C.c.id == case_id).values(
                    state="in_store", store_id=store_id, location_id=store.location_id, updated_at=now))
            target = _ReceiveTarget(id=head_code, sku_id=sku_id, store_location_id=store.location_id)
            _receive_units(ctx, target, members, head, head_is_unit=case_id is None, credit=False)
        received[sku_id] = received.get(sku_id, 0) + len(group)
    return received


@dataclass(frozen=True)
class _ReceiveTarget:
    """What `_receive_units` reads of the scanned code: the head's code, its SKU and the store's location."""

    id: int
    sku_id: int
    store_location_id: int


def _return(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    code = _lock_code(ctx, scanned.serial)
    _check_gtin(scanned, code.gtin)
    sku = sku_ref(code.sku_id, code.name, code.unit, code.gtin)
    base = {"serial": code.serial, "sku": sku, "store_id": ctx.store_id}
    if code.kind == "case":
        raise _Refused("case_not_sellable", code_state=code.state, **base)
    _not_before_history(ctx, [code.id])
    if code.state == "returned" and code.store_id == ctx.store_id:
        return _answer("duplicate", scan=ctx.scan, reason="already_returned",
                       message=messages.already_returned(code.name), code_state=code.state,
                       on_hand=_on_hand(code.store_location_id, code.sku_id), **base)
    if code.state != "sold":
        raise _Refused("not_sold", code_state=code.state, **base)
    if code.store_id != ctx.store_id:
        raise _Refused("sold_elsewhere", code_state=code.state, **base)
    _move_code(code, state="returned", location_id=code.store_location_id, updated_at=ctx.now)
    sale_reversed([code.id], now=ctx.now)  # a referral reward this sale earned: cancelled (or reversed)
    level = move_stock(location_id=code.store_location_id, sku_id=code.sku_id, on_hand=1, kind="return",
                       ref_type="code", ref_id=code.id, user_id=ctx.user_id)
    event_id = _add_event(ctx, action="return", sku_id=code.sku_id, code_id=code.id,
                          location_id=code.store_location_id, order_id=code.order_id)
    note_sale(store_id=ctx.store_id, sku_id=code.sku_id, quantity=-1, at=ctx.at,
              amount_fen=-(code.price_fen or 0), event_id=event_id)
    return _answer("accepted", scan=ctx.scan, message=messages.returned(code.name, 1, code.unit, level.on_hand),
                   code_state="returned", quantity=1, on_hand=level.on_hand, event_id=event_id, **base)


def _by_gtin(ctx: _Ctx, scanned: Scanned) -> dict[str, Any]:
    """SKUs sold without serials: scanned by GTIN with a quantity."""
    row = db.session.execute(sa.select(S.c.id, S.c.name, S.c.unit, S.c.gtin, S.c.serialized)
                             .where(S.c.gtin == scanned.gtin)).first()
    if row is None:
        raise _Refused("unknown_gtin")
    sku = sku_ref(row.id, row.name, row.unit, row.gtin)
    base = {"sku": sku, "store_id": ctx.store_id}
    if row.serialized:
        raise _Refused("serial_required", **base)
    q = ctx.scan.quantity or 1
    store = _store_row(ctx.store_id)
    at = ctx.at
    try:
        if ctx.scan.action == "sell":
            level = move_stock(location_id=store.location_id, sku_id=row.id, on_hand=-q, kind="sell",
                               ref_type="scan", ref_id=ctx.scan.request_id[:64], user_id=ctx.user_id)
            event_id = _add_event(ctx, action="sell", sku_id=row.id, code_id=None, quantity=q,
                                  location_id=store.location_id)
            note_sale(store_id=ctx.store_id, sku_id=row.id, quantity=q, at=at,
                      amount_fen=_price(row.id, store.price_tier_id) * q, event_id=event_id)
            message = messages.sold(row.name, q, row.unit, level.on_hand)
        elif ctx.scan.action == "receive":
            transit = transit_location_id(store.location_id)
            lock_levels([(transit, row.id), (store.location_id, row.id)])
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
            note_sale(store_id=ctx.store_id, sku_id=row.id, quantity=-q, at=at,
                      amount_fen=-_price(row.id, store.price_tier_id) * q, event_id=event_id)
            message = messages.returned(row.name, q, row.unit, level.on_hand)
    except InsufficientStock:
        raise _Refused("insufficient_stock", **base) from None
    state = {"sell": "sold", "receive": "in_store", "return": "returned"}[ctx.scan.action]
    return _answer("accepted", scan=ctx.scan, message=message, code_state=state, quantity=q,
                   on_hand=level.on_hand, event_id=event_id, **base)


# --- a batch -----------------------------------------------------------------------------------------------

def scan_batch(principal: Principal, items: list[ScanInput | dict]) -> list[Mapping[str, Any]]:
    """Apply an offline queue's scans in order, each on its own (fully or not at all, with its answer kept); runs of
    plain sells take the hot path.

    `items` holds ScanInputs, or ready answers (dicts) for items the edge already refused (bad fields).
    """
    return _on_live_connection(lambda: _scan_batch_once(principal, items))


def _scan_batch_once(principal: Principal, items: list[ScanInput | dict]) -> list[Mapping[str, Any]]:
    answers: list[Mapping[str, Any] | None] = [it if isinstance(it, dict) else None for it in items]
    # Answers given here without any work (refused at once, replays) are counted when the batch is done (a batch
    # run again on a fresh connection counts them once); the hot path's and the general path's as they commit.
    at_once = [i for i, a in enumerate(answers) if a is not None]
    allowed: dict[int, bool] = {}
    for i, it in enumerate(items):
        if isinstance(it, dict):
            continue
        it.store_id = it.store_id if it.store_id is not None else principal.store_id
        if it.store_id is None:
            answers[i] = _answer("refused", scan=it, reason="store_required", message="请指定门店")
            at_once.append(i)
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
            at_once.append(i)
    user_id = principal.user_id
    todo = [(i, it) for i, it in enumerate(items) if answers[i] is None]
    stored = _stored_answers(user_id, list({it.request_id for _, it in todo}))
    seen_requests: set[str] = set()
    fresh: list[tuple[int, ScanInput]] = []
    for i, it in todo:
        if it.request_id in stored:
            answers[i] = _replay(stored[it.request_id])
            at_once.append(i)
        elif it.request_id in seen_requests:
            answers[i] = _answer("refused", scan=it, reason="duplicate_request_id", message="同一批里请求号重复了",
                                 store_id=it.store_id)
            at_once.append(i)
        else:
            seen_requests.add(it.request_id)
            fresh.append((i, it))
    # In order: a run of plain sells goes to the hot path in one call, whatever it leaves (and every other
    # item) through the general path, each item in a transaction of its own.
    use_hot = _hot_enabled()
    tz = BUSINESS_TZ.key
    run: list[tuple[int, ScanInput, hot.HotSell]] = []
    general: list[tuple[int, ScanInput]] = []
    for i, it in fresh:
        item = _hot_item(user_id, it) if use_hot and it.action == "sell" else None
        if item is None:
            if run:
                general += _sell_run(run, answers, tz)
                run = []
            general.append((i, it))
            continue
        if general:
            _general_stretch(user_id, general, answers)
            general = []
        run.append((i, it, item))
    if run:
        general += _sell_run(run, answers, tz)
    if general:
        _general_stretch(user_id, general, answers)
    for i in at_once:
        _count(answers[i])
    return [a for a in answers if a is not None]


def _stored_answers(user_id: int, request_ids: list[str]) -> dict[str, dict]:
    """The answers already given to these requests of the user: the hot path's (rebuilt from its events: a sale that
    went through is the truth, whatever was stored beside it), else the general path's."""
    if not request_ids:
        return {}
    rows = db.session.execute(sa.select(R.c.request_id, R.c.answer).where(
        R.c.user_id == user_id, _one_of(R.c.request_id, request_ids))).all()
    stored = {**dict(rows), **_hot_answers(user_id, request_ids)}
    db.session.rollback()  # the read's transaction: nothing held while the hot path runs
    return stored


def _sell_run(run: list[tuple[int, ScanInput, hot.HotSell]], answers: list, tz: str) -> list[tuple[int, ScanInput]]:
    """Sell a run of plain sells in one hot call; returns the items it left for the general path."""
    run, left = _dated_after_history(run)
    sold = hot.sell_many([item for _, _, item in run], tz=tz) if run else {}
    for k, (i, it, _) in enumerate(run):
        if k in sold:
            answers[i] = EncodedAnswer(sold[k])
            _count_hot_sell()
        else:
            left.append((i, it))
    return sorted(left, key=lambda entry: entry[0])


def _dated_after_history(run: list[tuple[int, ScanInput, hot.HotSell]]
                         ) -> tuple[list[tuple[int, ScanInput, hot.HotSell]], list[tuple[int, ScanInput]]]:
    """Split the run: the queued sells whose device time is before their code's last event, and any later sell
    of the same codes (so a code's scans keep their order), go to the general path, which records them at the
    server's time and says so; the rest stay. One read for the run; live sells need none."""
    now = now_utc()
    queued = {item.serial for _, it, item in run if not _is_live(it.scanned_at, now)}
    if not queued:
        return run, []
    last = dict(db.session.execute(
        sa.select(C.c.serial, sa.func.max(E.c.event_time)).select_from(C.join(E, E.c.code_id == C.c.id))
        .where(_one_of(C.c.serial, sorted(queued))).group_by(C.c.serial)).all())
    db.session.rollback()  # the read's transaction: nothing held while the hot path runs
    wrong = {item.serial for _, it, item in run
             if last.get(item.serial) is not None and _aware(it.scanned_at) < as_utc(last[item.serial])}
    if not wrong:
        return run, []
    return ([entry for entry in run if entry[2].serial not in wrong],
            [(i, it) for i, it, item in run if item.serial in wrong])


def _general_stretch(user_id: int, stretch: list[tuple[int, ScanInput]], answers: list) -> None:
    """Items through the general path, in order, each in a transaction of its own (see `_general_item`)."""
    for i, it in stretch:
        answers[i] = _general_item(user_id, it)


def _general_item(user_id: int, it: ScanInput) -> dict[str, Any]:
    """One item on its own: its work and its stored answer commit together or not at all, and it holds its locks
    (a few rows, in the lock order) only while it runs, never while the batch goes on to the next item.

    A deadlock or serialization failure runs it again (`app.core.retry`); one that outlasts the retries answers
    the item "busy" and keeps nothing, so the phone's resend does the work, while the rest of the batch goes on.
    """
    try:
        return run_retrying(lambda: _scan_once(user_id, it, errors_as_answers=True), name="scan batch item")
    except sa.exc.DBAPIError as exc:
        if not is_retryable(exc):
            raise
        db.session.rollback()
        answer = _answer("refused", scan=it, reason="busy", message=messages.refused("busy"), store_id=it.store_id)
        _count(answer)
        return answer


# --- undo --------------------------------------------------------------------------------------------------

def _may_undo(principal: Principal, ev: ScanEvent) -> bool:
    """A store user undoes their own scans; the store's owner also anyone's scan made in the store."""
    return ev.user_id == principal.user_id or any(
        b.role == STORE_OWNER and b.store_id == ev.store_id for b in principal.bindings)


@retried
def undo_scan(principal: Principal, event_id: int) -> dict[str, Any]:
    """Correct a recent scan with a new event (never a delete): one's own, or as the store's owner any scan made in
    the store; stock, sell-through and the incentive credits it earned follow."""
    window = timedelta(minutes=current_app.config["SCAN_UNDO_MINUTES"])
    with transaction():
        ev = db.session.execute(sa.select(ScanEvent).where(ScanEvent.id == event_id).with_for_update()).scalar()
        if ev is None or ev.store_id is None or not _may_undo(principal, ev):
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
            sale_reversed(units, now=now)  # an undone sale earns no referral reward
            level = move_stock(location_id=loc, sku_id=ev.sku_id, on_hand=n, kind="undo", ref_type="scan_event",
                               ref_id=ev.id, user_id=principal.user_id, reason="撤销售出")
            note_sale(store_id=ev.store_id, sku_id=ev.sku_id, quantity=-n, at=ev.event_time,
                      amount_fen=-price * n, event_id=ev.id)
        elif ev.action == "return":
            _set_codes(units, expect=("returned", ev.store_id), state="sold", location_id=None, now=now)
            level = _undo_move(loc, ev, -n, principal.user_id, "撤销退货")
            note_sale(store_id=ev.store_id, sku_id=ev.sku_id, quantity=n, at=ev.event_time,
                      amount_fen=price * n, event_id=ev.id)
        else:
            _set_codes(units, expect=("in_store", ev.store_id), state="in_transit", location_id=None, now=now)
            if ev.code_id is not None and units and db.session.scalar(
                    sa.select(C.c.kind).where(C.c.id == ev.code_id)) == "case":
                db.session.execute(sa.update(C).where(C.c.id == ev.code_id).values(
                    state="in_transit", location_id=None, updated_at=now))
            transit = transit_location_id(loc)
            lock_levels([(loc, ev.sku_id), (transit, ev.sku_id)])
            level = _undo_move(loc, ev, -n, principal.user_id, "撤销入库")
            move_stock(location_id=transit, sku_id=ev.sku_id, on_hand=n, kind="undo",
                       ref_type="scan_event", ref_id=ev.id, user_id=principal.user_id, reason="撤销入库")
        after_commit(lambda: metrics.count_scan("undo", "accepted"))
        undo_id = _add_event(ctx, action="undo", sku_id=ev.sku_id, code_id=ev.code_id, quantity=n,
                             location_id=loc, corrects_event_id=ev.id, event_time=now, order_id=ev.order_id)
        if ev.action in ("sell", "receive"):
            _reverse_credits(ev, units, undo_id=undo_id, now=now)
        state = db.session.scalar(sa.select(C.c.state).where(C.c.id == ev.code_id)) if ev.code_id else None
        serial = db.session.scalar(sa.select(C.c.serial).where(C.c.id == ev.code_id)) if ev.code_id else None
        return build_undo_answer(undone_event_id=ev.id, message=messages.undone(ev.action, sku.name),
                                 event_id=undo_id, serial=serial, code_state=state, quantity=n, store_id=ev.store_id,
                                 sku=sku_ref(sku.id, sku.name, sku.unit, sku.gtin), on_hand=level.on_hand)


def _reverse_credits(ev: ScanEvent, units: list[int], *, undo_id: int, now: datetime) -> None:
    """The incentive credits the undone scan earned: each gives up its code's slot (so a new scan of the code earns
    the step again) and gets a reversal entry of the opposite amount. A credit is reversed once (compare-and-set on
    its slot, and `reverses_id` is unique)."""
    if not units:
        return
    credit = IncentiveCredit.__table__
    released = db.session.execute(
        sa.update(credit).where(credit.c.code_id.in_(units), credit.c.step == ev.action,
                                credit.c.event_id == ev.id)
        .values(code_id=None, reversed_code_id=credit.c.code_id)
        .returning(credit.c.id, credit.c.store_id, credit.c.reversed_code_id, credit.c.sku_id, credit.c.points,
                   credit.c.amount_fen)).all()
    if released:
        db.session.execute(sa.insert(credit), [
            {"store_id": r.store_id, "code_id": None, "reversed_code_id": r.reversed_code_id, "reverses_id": r.id,
             "sku_id": r.sku_id, "step": ev.action, "points": -r.points, "amount_fen": -r.amount_fen,
             "event_id": undo_id, "created_at": now} for r in sorted(released, key=lambda r: r.id)])


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
