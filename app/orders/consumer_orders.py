"""Consumer orders routed to the local partner (CHANNEL.md section 4).

A partner (or HQ's own shop) takes a consumer's order for an address anywhere. It is routed to the partner that
serves the address (`app.channel.routing`); that partner accepts within CONSUMER_ORDER_ACCEPT_MINUTES, or declines,
or lets the time run out, and the order passes to the next candidate, then to HQ (`with_hq`). HQ ships from the
warehouse serving the address's city (if it holds every line), else from the central one, through the stock
ledger; one-item-one-code goods leave by their scanned codes, each unit marked sold to the consumer with its ship
event in the same transaction (`app.codes.services.ship_codes_to_consumer`). The serving partner completes the
order with the consumer's confirmation code, and the margin is booked to the partner who brought the order and
the one who served it (`app.orders.commission`).

Statuses: routed → accepted → shipped → completed; routed/accepted → with_hq (nobody holds the address, nobody
accepted, or HQ took it); HQ routes a routed, accepted or with_hq order to a partner of its choice, with a reason;
HQ cancels one that has not shipped. Every change is an event with who and why.

Prices: each line is priced at the SKU's price in the catalog's `consumer` price tier (建议零售价, which HQ keeps
in the catalog like the store tiers), copied onto the line at creation; a SKU without one cannot be ordered.

Guards: status changes are compare-and-set updates on the status (and the serving partner), so two partners
accepting at once, or an acceptance racing the pass-on job, have exactly one winner. Shipping locks the order
row first and the stock levels after it (the lock order in `app.inventory.services`).

The confirmation code (six digits) is never stored: it is an HMAC of the order's random salt under the server's
secret key, handed once to whoever took the order (and again on a replay of that request), so a copy of the
database alone tells nobody a consumer's code. Wrong codes count up atomically; at CONSUMER_ORDER_CODE_TRIES the
order locks (`confirmation_locked`) until HQ routes it again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from datetime import timedelta
from typing import NoReturn

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Membership, User
from app.accounts.roles import HQ_ADMIN
from app.catalog.models import PriceTier, SkuPrice
from app.catalog.units import quantity_text
from app.channel import routing
from app.channel.models import Partner
from app.core import regions
from app.core.clock import business_day, local_text, now_utc
from app.core.money import yuan_text
from app.core.retry import retried
from app.core.security import Principal, StoreScope, authorize, authorize_action
from app.core.tx import after_commit, transaction
from app.errors import AppError, Conflict, Forbidden, NotFound, ServiceUnavailable, ValidationFailed
from app.extensions import db
from app.inventory.models import Warehouse, WarehouseCity
from app.inventory.queries import get_central_warehouse
from app.inventory.services import InsufficientStock, get_level, lock_levels, move_stock
from app.orders.commission import book_consumer_commission
from app.orders.lines import skus_of_lines
from app.orders.models import ConsumerOrder, ConsumerOrderEvent, ConsumerOrderLine
from app.orders.numbers import format_order_number, make_order_number

log = logging.getLogger(__name__)

CONSUMER_TIER = "consumer"
MAX_LINES = 50
MAX_QUANTITY = 10_000
MAX_SHIP_CODES = 2000
STATUS_NAMES = {"routed": "待接单", "accepted": "已接单", "shipped": "已发货", "completed": "已完成",
                "with_hq": "总部处理", "cancelled": "已取消"}
HQ_REASONS = {"no_territory": "地址不在任何伙伴的服务区域", "nobody_accepted": "没有伙伴接单",
              "hq_routed": "总部改派给总部自己"}
PAGE = "pages/consumer-orders/detail?id={id}"


# --- helpers ------------------------------------------------------------------------------------------------

def normalize_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits (full-width digits, spaces, dashes and +86 allowed), or 422."""
    text = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", raw or ""))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not re.fullmatch(r"1[3-9][0-9]{9}", text):
        raise ValidationFailed("请填写顾客的 11 位手机号", code="bad_phone",
                               details={"fields": {"customer.phone": ["不是有效的手机号"]}})
    return text


def _code(order: ConsumerOrder) -> str:
    """The consumer's six-digit code for this order (derived, never stored)."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"consumer-order:{order.number}:{order.confirmation_salt}".encode(), hashlib.sha256)
    return f"{int.from_bytes(digest.digest()[:8], 'big') % 1_000_000:06d}"


def _codes(region_code: str) -> list[str]:
    """The region's codes, most specific first (district, city, province)."""
    province, city, district = regions.split(region_code)
    return [c for c in (district, city, province) if c]


def _partner(partner_id: int | None) -> Partner | None:
    return db.session.get(Partner, partner_id) if partner_id else None


def _agent_of(partner: Partner | None) -> int | None:
    """The partner's parent agent at this moment (None for a distributor under HQ, or an agent itself)."""
    if partner is None or partner.parent_id is None:
        return None
    parent = db.session.get(Partner, partner.parent_id)
    return parent.id if parent is not None and parent.kind == "agent" else None


def _hq_path() -> str:
    return db.session.scalar(sa.select(Partner.path).where(Partner.kind == "hq").order_by(Partner.id)) or "/"


def _region_scope(order: ConsumerOrder) -> StoreScope:
    """The order's place, as the scope check reads a place (no store of its own: store id 0 matches none)."""
    return StoreScope(store_id=0, distributor_path="", region_codes=tuple(_codes(order.region_code)))


def authorize_read(principal: Principal, order: ConsumerOrder, action: str = "consumer_order.read") -> None:
    """The bringing partner's side, the serving partner's side, or HQ by the order's region."""
    for partner_id in (order.brought_by_partner_id, order.serving_partner_id):
        partner = _partner(partner_id)
        if partner is None:
            continue
        try:
            authorize(principal, action, partner_path=partner.path)
            return
        except Forbidden:
            continue
    authorize(principal, action, store=_region_scope(order))


def _authorize_serve(principal: Principal, order: ConsumerOrder) -> None:
    """Only the serving partner (its staff, or its agent's) serves; with nobody serving, HQ does."""
    authorize_read(principal, order)
    serving = _partner(order.serving_partner_id)
    try:
        authorize(principal, "consumer_order.serve", partner_path=serving.path if serving else _hq_path())
    except Forbidden:
        raise Forbidden("这张订单没有派给你，不能处理", code="not_routed_to_you",
                        details={"order_id": order.id}) from None


def _event(order: ConsumerOrder, *, from_status: str | None, action: str, user_id: int | None,
           note: str | None = None) -> None:
    db.session.add(ConsumerOrderEvent(consumer_order_id=order.id, from_status=from_status, to_status=order.status,
                                      action=action, partner_id=order.serving_partner_id, user_id=user_id,
                                      note=(note or None) and note[:255], at=now_utc()))


def _lock(order_id: int) -> ConsumerOrder:
    order = db.session.scalar(sa.select(ConsumerOrder).where(ConsumerOrder.id == order_id).with_for_update()
                              .execution_options(populate_existing=True))
    if order is None:
        raise NotFound("找不到这张顾客订单", code="consumer_order_not_found")
    return order


def get_consumer_order(order_id: int) -> ConsumerOrder:
    order = db.session.get(ConsumerOrder, order_id)
    if order is None:
        raise NotFound("找不到这张顾客订单", code="consumer_order_not_found")
    return order


def _cas(order: ConsumerOrder, *, expect: tuple[str, ...], serving: int | None, **values) -> bool:
    """Compare-and-set: change the order only if its status and serving partner are still what we read."""
    result = db.session.execute(
        sa.update(ConsumerOrder).where(ConsumerOrder.id == order.id, ConsumerOrder.status.in_(expect),
                                       ConsumerOrder.serving_partner_id.is_not_distinct_from(serving))
        .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    db.session.refresh(order)
    return True


def _cannot(order: ConsumerOrder, what: str, code: str) -> AppError:
    return Conflict(f"这张订单{STATUS_NAMES.get(order.status, order.status)}，不能{what}", code=code,
                    details={"status": order.status})


# --- creating and routing -----------------------------------------------------------------------------------

def _new_number() -> str:
    day = business_day(now_utc())
    for _ in range(20):
        number = make_order_number(day)
        if not db.session.scalar(sa.select(ConsumerOrder.id).where(ConsumerOrder.number == number)):
            return number
    raise ServiceUnavailable("订单号生成失败，请重试", code="order_number_exhausted")


def _priced_lines(lines: list[dict[str, int]]) -> list[ConsumerOrderLine]:
    sku_ids, skus = skus_of_lines(lines, max_lines=MAX_LINES)
    prices = dict(db.session.execute(
        sa.select(SkuPrice.sku_id, SkuPrice.price_fen).join(PriceTier, PriceTier.id == SkuPrice.price_tier_id)
        .where(SkuPrice.sku_id.in_(sku_ids), PriceTier.code == CONSUMER_TIER)).all())
    out = []
    for line in lines:
        sku = skus.get(line["sku_id"])
        if sku is None or not sku.is_active:
            raise ValidationFailed("没有这个商品", code="sku_not_found", details={"sku_id": line["sku_id"]})
        quantity = line["quantity"]
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationFailed("数量不对", code="bad_quantity", details={"sku_id": sku.id})
        if sku.id not in prices:
            raise ValidationFailed(f"{sku.name}还没有零售价，不能卖给顾客", code="no_consumer_price",
                                   details={"sku_id": sku.id})
        out.append(ConsumerOrderLine(sku_id=sku.id, quantity=quantity, unit_price_fen=prices[sku.id],
                                     amount_fen=prices[sku.id] * quantity))
    return out


def _accept_by():
    return now_utc() + timedelta(minutes=int(current_app.config["CONSUMER_ORDER_ACCEPT_MINUTES"]))


def _next_route(order: ConsumerOrder) -> routing.Route:
    """The best candidate for the address that has not passed on this order yet (HQ's route when none is left)."""
    passed = set(order.passed_partner_ids or [])
    for candidate in routing.candidates(_codes(order.region_code)):
        if candidate.partner_id not in passed:
            return candidate
    return routing.NOBODY


def _apply_route(order: ConsumerOrder, found: routing.Route, *, hq_reason: str) -> None:
    """Point the (new or locked) order at a partner, or at HQ; flushes only."""
    now = now_utc()
    order.serving_partner_id = found.partner_id
    order.serving_agent_id = found.agent_id
    order.assignment_id = found.assignment_id
    order.routed_at = now
    order.reminded_at = None
    order.accepted_at = None
    if found.partner_id is None:
        order.status, order.hq_reason, order.accept_by_at = "with_hq", hq_reason, None
    else:
        order.status, order.hq_reason, order.accept_by_at = "routed", None, _accept_by()


def create_consumer_order(principal: Principal, *, request_id: str, customer: dict[str, str], address: str,
                          region_code: str, lines: list[dict[str, int]], needs_service: bool) -> dict:
    """Take a consumer's order and route it to the partner serving the address; a repeated request_id replays.

    Answers the order, the consumer's confirmation code (for the one who took it) and a sentence saying where it
    went (to HQ when nobody holds the address)."""
    authorize_action(principal, "consumer_order.create")
    existing = _find_replay(principal.user_id, request_id)
    if existing is not None:
        return _answer(existing)
    if not regions.is_valid(region_code) or regions.get_region(region_code).level == "province":
        raise ValidationFailed("请选到顾客所在的市或区县", code="bad_region",
                               details={"fields": {"region_code": ["不是有效的市或区县代码"]}})
    phone = normalize_phone(customer.get("phone", ""))
    name = (customer.get("name") or "").strip()
    if not name:
        raise ValidationFailed("请填写顾客姓名", code="customer_name_required",
                               details={"fields": {"customer.name": ["必填"]}})
    if not (address or "").strip():
        raise ValidationFailed("请填写收货地址", code="address_required", details={"fields": {"address": ["必填"]}})
    bringer = _partner(principal.partner_id)
    if bringer is None and not principal.can("hq.write"):
        raise Forbidden("只有伙伴或总部可以给顾客下单", code="not_a_partner")
    try:
        with transaction():
            order_lines = _priced_lines(lines)
            province, city, _district = regions.split(region_code)
            order = ConsumerOrder(
                number=_new_number(), request_id=request_id, created_by_id=principal.user_id,
                brought_by_partner_id=bringer.id if bringer else None, brought_by_agent_id=_agent_of(bringer),
                customer_name=name[:64], customer_phone=phone, address=address.strip()[:255],
                region_code=region_code, city_code=city, province_code=province, needs_service=needs_service,
                total_fen=sum(line.amount_fen for line in order_lines), lines=order_lines,
                confirmation_salt=secrets.token_hex(16), confirmation_tries=0, passed_partner_ids=[],
                created_at=now_utc())
            _apply_route(order, routing.route(_codes(region_code)), hq_reason="no_territory")
            db.session.add(order)
            db.session.flush()
            _event(order, from_status=None, action="create", user_id=principal.user_id,
                   note=None if order.serving_partner_id else HQ_REASONS["no_territory"])
            _notify_after_commit(order)
            return _answer(order)
    except sa.exc.IntegrityError:
        existing = _find_replay(principal.user_id, request_id)
        if existing is None:
            raise
        return _answer(existing)


def _find_replay(user_id: int | None, request_id: str) -> ConsumerOrder | None:
    if user_id is None:
        return None
    return db.session.scalar(sa.select(ConsumerOrder).where(ConsumerOrder.created_by_id == user_id,
                                                            ConsumerOrder.request_id == request_id))


def routing_message(order: ConsumerOrder, serving_name: str | None = None) -> str:
    """Where the order is, in one sentence for whoever took it (`serving_name`: the serving partner's, if known)."""
    if order.status == "with_hq":
        reason = HQ_REASONS.get(order.hq_reason or "", "")
        return f"{reason}，订单已转总部处理" if reason else "订单由总部处理"
    if order.status == "routed" and order.serving_partner_id is not None:
        if serving_name is None:
            serving_name = _partner(order.serving_partner_id).name
        return f"订单已派给{serving_name}，等待接单"
    return STATUS_NAMES.get(order.status, order.status)


def _answer(order: ConsumerOrder) -> dict:
    return {"order": order, "confirmation_code": _code(order), "message": routing_message(order)}


# --- serving ------------------------------------------------------------------------------------------------

def accept_consumer_order(principal: Principal, order_id: int) -> ConsumerOrder:
    """The serving partner accepts the order (compare-and-set: of two at once, exactly one wins)."""
    with transaction():
        order = get_consumer_order(order_id)
        _authorize_serve(principal, order)
        if order.status != "routed":
            raise _cannot(order, "接单", "consumer_order_cannot_accept")
        serving = order.serving_partner_id
        if not _cas(order, expect=("routed",), serving=serving, status="accepted", accepted_at=now_utc(),
                    accept_by_at=None):
            db.session.refresh(order)
            raise _cannot(order, "接单", "consumer_order_cannot_accept")
        _event(order, from_status="routed", action="accept", user_id=principal.user_id)
        return order


def decline_consumer_order(principal: Principal, order_id: int, *, reason: str | None = None) -> ConsumerOrder:
    """The serving partner declines: the order goes to the next candidate, else to HQ."""
    with transaction():
        order = _lock(order_id)
        _authorize_serve(principal, order)
        if order.status not in ("routed", "accepted"):
            raise _cannot(order, "拒单", "consumer_order_cannot_decline")
        _pass_on(order, action="decline", user_id=principal.user_id, note=reason)
        return order


def _pass_on(order: ConsumerOrder, *, action: str, user_id: int | None, note: str | None) -> None:
    """The locked order leaves its serving partner for the next candidate, or HQ; event and messages."""
    before = order.status
    if order.serving_partner_id is not None:
        order.passed_partner_ids = [*(order.passed_partner_ids or []), order.serving_partner_id]
    _apply_route(order, _next_route(order), hq_reason="nobody_accepted")
    db.session.flush()
    _event(order, from_status=before, action=action, user_id=user_id, note=note)
    _notify_after_commit(order)


@retried
def ship_consumer_order(principal: Principal, order_id: int, *, warehouse_id: int | None = None,
                        codes: list[str] | None = None) -> ConsumerOrder:
    """HQ ships the goods: from the warehouse serving the address's city if it holds every line, else from the
    central one (or the warehouse given); stock leaves the warehouse with its ledger rows, in this transaction.

    One-item-one-code goods leave by their codes (`codes`: case or unit codes, as a store shipment's): the step
    `app.codes.services.ship_codes_to_consumer` checks every unit is on this warehouse's shelf and marks it sold
    to this consumer with its ship event; the units the codes hold must be exactly each such line's quantity,
    and no code may be of a SKU the order does not have or does not track by code. Other goods leave by count.
    """
    with transaction():
        order = _lock(order_id)
        authorize(principal, "warehouse.operate", store=_region_scope(order))
        if order.status not in ("accepted", "with_hq"):
            raise _cannot(order, "发货", "consumer_order_cannot_ship")
        wh = _warehouse_for(order, warehouse_id)
        authorize(principal, "warehouse.operate", warehouse_id=wh.id)
        # Short of stock says so first (the guard itself is `move_stock` below, with the levels locked).
        for line in order.lines:
            if get_level(location_id=wh.location_id, sku_id=line.sku_id).available < line.quantity:
                raise InsufficientStock(f"{wh.name}库存不够，不能发这张订单", code="insufficient_stock",
                                        details={"sku_id": line.sku_id, "warehouse_id": wh.id})
        _ship_codes(order, wh, codes or [], user_id=principal.user_id)
        lock_levels([(wh.location_id, line.sku_id) for line in order.lines])
        for line in sorted(order.lines, key=lambda ln: ln.sku_id):
            try:
                move_stock(location_id=wh.location_id, sku_id=line.sku_id, on_hand=-line.quantity, kind="ship",
                           ref_type="consumer_order", ref_id=order.id, user_id=principal.user_id,
                           reason=f"顾客订单 {format_order_number(order.number)}")
            except InsufficientStock as exc:
                raise InsufficientStock(f"{wh.name}库存不够，不能发这张订单", code="insufficient_stock",
                                        details={**exc.details, "warehouse_id": wh.id}) from None
        before = order.status
        order.status, order.warehouse_id, order.shipped_at = "shipped", wh.id, now_utc()
        _event(order, from_status=before, action="ship", user_id=principal.user_id, note=wh.name)
        db.session.flush()
        return order


def _ship_codes(order: ConsumerOrder, wh: Warehouse, codes: list[str], *, user_id: int | None) -> None:
    """The codes of the order's one-item-one-code lines leave `wh` for the consumer; their units must match the
    lines exactly (a line without codes, or codes for more or fewer units, is refused and nothing changes)."""
    serialized = {line.sku_id: line for line in order.lines if line.sku.serialized}
    if not codes:
        if serialized:
            line = min(serialized.values(), key=lambda ln: ln.sku_id)
            raise ValidationFailed(f"{line.sku.name}有码，请扫箱码或单品码发货", code="serialized_needs_codes",
                                   details={"sku_id": line.sku_id, "quantity": line.quantity})
        return
    if len(codes) > MAX_SHIP_CODES:
        raise ValidationFailed(f"一次最多扫 {MAX_SHIP_CODES} 个码", code="too_many_codes")
    from app.codes.services import ship_codes_to_consumer

    shipped = ship_codes_to_consumer(serials=codes, from_location_id=wh.location_id,
                                     partner_id=order.serving_partner_id,
                                     region_code=order.city_code or order.region_code, user_id=user_id)
    for sku_id in sorted(shipped):
        if sku_id not in serialized:
            raise Conflict("有码不属于这张订单的商品", code="codes_not_on_order", details={"sku_id": sku_id})
    for sku_id, line in sorted(serialized.items()):
        units = shipped.get(sku_id, 0)
        if units != line.quantity:
            raise Conflict(f"{line.sku.name}订了 {quantity_text(line.quantity, line.sku.unit)}，扫到的码是 "
                           f"{quantity_text(units, line.sku.unit)}，数量不符，不能发货",
                           code="codes_quantity_mismatch",
                           details={"sku_id": sku_id, "ordered": line.quantity, "scanned": units})


def _warehouse_for(order: ConsumerOrder, warehouse_id: int | None) -> Warehouse:
    if warehouse_id is not None:
        wh = db.session.get(Warehouse, warehouse_id)
        if wh is None:
            raise NotFound("找不到这个仓库", code="warehouse_not_found")
        return wh
    sub = db.session.scalar(sa.select(Warehouse).join(WarehouseCity).where(
        WarehouseCity.city_code == order.city_code, Warehouse.kind == "sub")) if order.city_code else None
    if sub is not None and all(get_level(location_id=sub.location_id, sku_id=line.sku_id).available
                               >= line.quantity for line in order.lines):
        return sub
    return get_central_warehouse()


def complete_consumer_order(principal: Principal, order_id: int, *, confirmation_code: str) -> ConsumerOrder:
    """The serving partner records the service with the consumer's code; the margin is split in the ledger.

    A wrong code counts (committed, atomically) and is refused; after the limit the order locks."""
    limit = int(current_app.config["CONSUMER_ORDER_CODE_TRIES"])
    with transaction():
        order = _lock(order_id)
        _authorize_serve(principal, order)
        if order.status != "shipped":
            raise _cannot(order, "完成", "consumer_order_cannot_complete")
        if order.confirmation_tries >= limit:
            raise _locked(order)
        given = re.sub(r"\s", "", unicodedata.normalize("NFKC", confirmation_code or ""))
        if hmac.compare_digest(given.encode(), _code(order).encode()):
            order.status, order.completed_at = "completed", now_utc()
            _event(order, from_status="shipped", action="complete", user_id=principal.user_id)
            db.session.flush()
            book_consumer_commission(order)
            return order
    _count_wrong_code(principal, order_id, limit)


def _locked(order: ConsumerOrder) -> AppError:
    return Conflict("确认码输错次数太多，订单已锁定，请联系总部", code="confirmation_locked",
                    details={"tries_left": 0})


def _count_wrong_code(principal: Principal, order_id: int, limit: int) -> NoReturn:
    """Count one wrong try (compare-and-set below the limit, so two wrong tries at once both count) and refuse."""
    with transaction():
        result = db.session.execute(
            sa.update(ConsumerOrder).where(ConsumerOrder.id == order_id, ConsumerOrder.status == "shipped",
                                           ConsumerOrder.confirmation_tries < limit)
            .values(confirmation_tries=ConsumerOrder.confirmation_tries + 1)
            .returning(ConsumerOrder.confirmation_tries))
        tries = result.scalar()
        order = get_consumer_order(order_id)
        db.session.refresh(order)
        if tries is None:
            # Completed (or moved) since the code was checked, or already at the limit.
            raise _locked(order) if order.status == "shipped" else _cannot(order, "完成",
                                                                           "consumer_order_cannot_complete")
        _event(order, from_status=order.status, action="wrong_code", user_id=principal.user_id,
               note=f"第 {tries} 次输错")
    if tries >= limit:
        raise _locked(order)
    raise ValidationFailed(f"确认码不对，还可以试 {limit - tries} 次", code="wrong_confirmation_code",
                           details={"tries_left": limit - tries})


# --- HQ -----------------------------------------------------------------------------------------------------

def route_consumer_order(principal: Principal, order_id: int, *, partner_id: int, reason: str) -> ConsumerOrder:
    """HQ routes the order to a partner of its choice (or to HQ itself), with a reason; a locked confirmation
    starts again (the new partner meets the consumer anew)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("请写明改派原因", code="reason_required", details={"fields": {"reason": ["必填"]}})
    with transaction():
        order = _lock(order_id)
        authorize(principal, "hq.write", store=_region_scope(order))
        if order.status not in ("routed", "accepted", "with_hq", "shipped"):
            raise _cannot(order, "改派", "consumer_order_cannot_route")
        partner = _partner(partner_id)
        if partner is None:
            raise NotFound("找不到这个伙伴", code="partner_not_found")
        before = order.status
        if partner.kind == "hq":
            found = routing.NOBODY
        else:
            found = routing.Route(partner_id=partner.id, agent_id=_agent_of(partner), assignment_id=None)
        if order.status == "shipped":
            # The goods are on their way: only who serves the consumer changes.
            order.serving_partner_id, order.serving_agent_id = found.partner_id, found.agent_id
            order.assignment_id, order.routed_at = None, now_utc()
        else:
            _apply_route(order, found, hq_reason="hq_routed")
        order.confirmation_tries = 0
        db.session.flush()
        _event(order, from_status=before, action="route", user_id=principal.user_id, note=reason)
        if order.status != "shipped":
            _notify_after_commit(order)
        return order


def cancel_consumer_order(principal: Principal, order_id: int, *, reason: str) -> ConsumerOrder:
    """HQ cancels an order that has not shipped (the consumer changed their mind), with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("请写明取消原因", code="reason_required", details={"fields": {"reason": ["必填"]}})
    with transaction():
        order = _lock(order_id)
        authorize(principal, "hq.write", store=_region_scope(order))
        if order.status not in ("routed", "accepted", "with_hq"):
            raise _cannot(order, "取消", "consumer_order_cannot_cancel")
        before = order.status
        order.status, order.cancelled_at, order.accept_by_at = "cancelled", now_utc(), None
        db.session.flush()
        _event(order, from_status=before, action="cancel", user_id=principal.user_id, note=reason)
        return order


# --- the scheduled job --------------------------------------------------------------------------------------

def sweep_consumer_orders() -> dict[str, int]:
    """Job: remind the serving partner's staff before an order passes on, and pass on the orders nobody accepted
    in time (to the next candidate, then HQ). Each order in a transaction of its own."""
    now = now_utc()
    remind = timedelta(minutes=int(current_app.config["CONSUMER_ORDER_REMIND_MINUTES"]))
    due = list(db.session.scalars(sa.select(ConsumerOrder.id).where(
        ConsumerOrder.status == "routed", ConsumerOrder.accept_by_at <= now).order_by(ConsumerOrder.id)))
    soon = list(db.session.scalars(sa.select(ConsumerOrder.id).where(
        ConsumerOrder.status == "routed", ConsumerOrder.accept_by_at > now,
        ConsumerOrder.accept_by_at <= now + remind, ConsumerOrder.reminded_at.is_(None))
        .order_by(ConsumerOrder.id)))
    db.session.rollback()
    passed = reminded = 0
    for order_id in due:
        with transaction():
            order = _lock(order_id)
            if order.status != "routed" or order.accept_by_at is None or order.accept_by_at > now_utc():
                continue  # accepted (or moved) since we looked
            _pass_on(order, action="pass_on", user_id=None, note="超时未接单")
            passed += 1
    for order_id in soon:
        with transaction():
            order = _lock(order_id)
            if order.status != "routed" or order.reminded_at is not None:
                continue
            order.reminded_at = now_utc()
            _event(order, from_status="routed", action="remind", user_id=None, note="接单提醒")
            _notify_after_commit(order, kind="consumer_order_reminder")
            reminded += 1
    return {"passed_on": passed, "reminded": reminded}


# --- messages -----------------------------------------------------------------------------------------------

def _notify_after_commit(order: ConsumerOrder, kind: str | None = None) -> None:
    """After the commit: a new order (or a reminder) to the serving partner's staff; to HQ when it is with HQ."""
    if kind is None:
        kind = "consumer_order_with_hq" if order.status == "with_hq" else (
            "consumer_order_new" if order.status == "routed" else None)
    if kind is None:
        return
    order_id = order.id
    after_commit(lambda: _enqueue(order_id, kind))


def _enqueue(order_id: int, kind: str) -> None:
    from app.integrations.jobs import enqueue

    try:
        enqueue("app.orders.consumer_orders.send_consumer_order_message", order_id, kind, retries=3)
    except Exception:  # a queue outage must never undo or block the order itself
        log.exception("consumer orders: could not queue the %s message of order %s", kind, order_id)


def message_recipients(order: ConsumerOrder, kind: str) -> list[str]:
    """The openids to tell: the serving partner's staff, or HQ's admins when HQ holds the order."""
    cond = [User.openid.is_not(None), User.is_active.is_(True)]
    if kind == "consumer_order_with_hq":
        cond.append(Membership.role == HQ_ADMIN)
    else:
        if order.serving_partner_id is None:
            return []
        cond.append(Membership.partner_id == order.serving_partner_id)
    return sorted(set(db.session.scalars(sa.select(User.openid).join(Membership).where(*cond))))


def send_consumer_order_message(order_id: int, kind: str) -> int:
    """Job: the subscribe message about a consumer order; returns how many went out."""
    from app.integrations.wechat import WeChatNotSubscribed, get_wechat

    template = current_app.config["WECHAT_TEMPLATES"].get(kind)
    order = db.session.get(ConsumerOrder, order_id)
    if not template or order is None:
        db.session.rollback()
        return 0
    where = regions.region_name(order.city_code) + regions.region_name(order.region_code) \
        if order.region_code != order.city_code else regions.region_name(order.region_code)
    note = {"consumer_order_new": "新的顾客订单，请及时接单",
            "consumer_order_reminder": "订单快要转给别人了，请尽快接单",
            "consumer_order_with_hq": routing_message(order)}[kind]
    data = {"character_string1": format_order_number(order.number), "thing2": where,
            "amount3": yuan_text(order.total_fen), "phrase4": STATUS_NAMES[order.status],
            "time5": local_text(order.accept_by_at or now_utc()), "thing6": note}
    openids, page = message_recipients(order, kind), PAGE.format(id=order.id)
    db.session.rollback()  # the reads are done: no transaction stays open while WeChat answers
    sent = 0
    for openid in openids:
        try:
            get_wechat().send_subscribe_message(openid, template, data, page=page)
            sent += 1
        except WeChatNotSubscribed:
            log.info("consumer orders: %s has not subscribed to %s; not retrying", openid, kind)
    return sent
