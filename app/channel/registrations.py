"""Registrations (客户报备): a partner claims a prospect shop and is protected for a time (CHANNEL.md §2).

- One shop, one holder: each protected or converted registration holds its shop's identity keys (licence number,
  mobile number, name in district; `app.channel.identity`) under a unique index, so two partners registering the
  same shop at the same instant cannot both win: the second insert fails on the index and is refused with the
  holder's name and date. A shop that is already a store (same phone, or same name in the same district) is
  refused the same way (`registration_conflict`, `until` null). Every refusal is recorded, in a transaction of its
  own after the refused one has rolled back, for HQ's conflict list and for a replay of the same `request_id`.
- States: protected → converted | expired | released | reassigned; converted → reassigned (a dormant store, by
  HQ). Every move writes an audit row (`RegistrationEvent`): who, when, why, from, to.
- Conversion is a fact, never a flag: the store's invite redeemed, its first order, its first scan-in each call
  `convert_for_store` in their own transaction (one indexed lookup when nothing matches).
- Expiry, reminders and dormancy are jobs (`app/cron.py`); dormancy is computed from the store's orders and scans.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from math import ceil
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Membership, User
from app.accounts.roles import PARTNER_ROLES
from app.channel import identity, routing
from app.channel.models import Partner, Store, Territory
from app.channel.registration_models import (
    CONVERTED,
    EXPIRED,
    PROTECTED,
    REASSIGNED,
    RELEASED,
    Registration,
    RegistrationConflict,
    RegistrationEvent,
    RegistrationIdentity,
    RegistrationPolicy,
)
from app.core import regions
from app.core.clock import BUSINESS_TZ, as_utc, local_text, now_utc
from app.core.security import Principal, authorize, authorize_action
from app.core.tx import after_commit, transaction
from app.core.types import UTCDateTime
from app.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db

log = logging.getLogger(__name__)

DEFAULTS = {"protection_days": 30, "max_extensions": 1, "extension_days": 15, "quota_by_level": {},
            "default_quota": 50, "reminder_days": 3, "dormancy_days": 90}
POLICY_BOUNDS = {"protection_days": (1, 365), "max_extensions": (0, 10), "extension_days": (1, 180),
                 "default_quota": (0, 100_000), "reminder_days": (0, 60), "dormancy_days": (7, 3650)}
CONVERSION_VIA = ("invite", "first_order", "scan_in")
REMINDER_PAGE = "pages/registrations/index"

# The facts dormancy is computed from, named here as tables so the channel does not import orders or scans.
_orders = sa.table("orders", sa.column("store_id"), sa.column("created_at", UTCDateTime))
_scans = sa.table("scan_events", sa.column("store_id"), sa.column("recorded_at", UTCDateTime))


# --- policy ------------------------------------------------------------------------------------------------

def get_policy() -> RegistrationPolicy:
    """HQ's rules: the one row, or the defaults until HQ saves it."""
    policy = db.session.scalar(sa.select(RegistrationPolicy).order_by(RegistrationPolicy.id).limit(1))
    return policy if policy is not None else RegistrationPolicy(id=None, **DEFAULTS)


def quota_for(policy: RegistrationPolicy, level: str) -> int:
    return int((policy.quota_by_level or {}).get(level, policy.default_quota))


def update_policy(principal: Principal, **values: Any) -> RegistrationPolicy:
    """HQ sets the rules; each value is checked against its bounds (`policy_invalid`)."""
    authorize(principal, "hq.write", partner_path="/")
    problems: dict[str, list[str]] = {}
    for name, (low, high) in POLICY_BOUNDS.items():
        value = values.get(name)
        if value is not None and not low <= value <= high:
            problems[name] = [f"要在 {low} 到 {high} 之间"]
    quotas = values.get("quota_by_level")
    if quotas is not None:
        bad = [k for k, v in quotas.items() if not (0 < len(k) <= 16) or type(v) is not int or not 0 <= v <= 100_000]
        if bad:
            problems["quota_by_level"] = [f"级别 {', '.join(bad[:5])} 的名额要是 0 到 100000 的整数"]
    if problems:
        raise ValidationFailed("报备规则填写有误", code="policy_invalid", details={"fields": problems})
    with transaction():
        policy = db.session.scalar(sa.select(RegistrationPolicy).order_by(RegistrationPolicy.id).limit(1)
                                   .with_for_update())
        if policy is None:
            policy = RegistrationPolicy(**DEFAULTS)
            db.session.add(policy)
        for name in (*POLICY_BOUNDS, "quota_by_level"):
            if values.get(name) is not None:
                setattr(policy, name, dict(values[name]) if name == "quota_by_level" else values[name])
        policy.updated_at = now_utc()
        policy.updated_by_id = principal.user_id
        db.session.flush()
        return policy


# --- registering -------------------------------------------------------------------------------------------

def _caller_partner(principal: Principal) -> Partner:
    """The partner a partner's staff member registers for (HQ registers nothing: it reassigns)."""
    binding = next((b for b in principal.bindings if b.role in PARTNER_ROLES and b.partner_id), None)
    if binding is None:
        raise Forbidden("只有分销商或代理的员工可以报备门店", code="partner_staff_only",
                        details={"action": "store.register"})
    partner = db.session.get(Partner, binding.partner_id)
    if partner is None:
        raise NotFound("找不到你所在的伙伴", code="partner_not_found")
    authorize(principal, "store.register", partner_path=partner.path)
    return partner


def _agent_of(partner: Partner) -> int | None:
    """The agent a partner belongs to at this moment (itself, for an agent)."""
    if partner.kind == "agent":
        return partner.id
    ids = [int(p) for p in partner.path.strip("/").split("/") if p]
    return db.session.scalar(sa.select(Partner.id).where(Partner.id.in_(ids), Partner.kind == "agent")
                             .order_by(sa.func.length(Partner.path).desc()).limit(1))


def _keys_clause(keys: list[tuple[str, str]]) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.and_(RegistrationIdentity.kind == k, RegistrationIdentity.value == v) for k, v in keys))


def _holder(keys: list[tuple[str, str]]) -> tuple[Registration, str] | None:
    """The registration holding any of these keys, and the kind of key it holds (licence first)."""
    rows = db.session.execute(sa.select(Registration, RegistrationIdentity.kind)
                              .join(RegistrationIdentity, RegistrationIdentity.registration_id == Registration.id)
                              .where(_keys_clause(keys))).all()
    order = {kind: i for i, (kind, _) in enumerate(keys)}
    rows.sort(key=lambda r: order.get(r[1], 99))
    return (rows[0][0], rows[0][1]) if rows else None


def _store_holding(phone: str, name: str, area: str) -> tuple[Store, str] | None:
    """A store that is this shop already: the same mobile number, or the same name in the same district."""
    store = db.session.scalar(sa.select(Store).where(Store.phone == phone).order_by(Store.id).limit(1))
    if store is not None:
        return store, identity.PHONE
    wanted = identity.name_key(name, area)
    column = Store.district_code if len(area) == 6 and not area.endswith("00") else Store.city_code
    for store in db.session.scalars(sa.select(Store).where(column == area).order_by(Store.id)):
        if identity.name_key(store.name, area) == wanted:
            return store, identity.NAME
    return None


def _until_text(until: datetime | None) -> str | None:
    return None if until is None else as_utc(until).astimezone(BUSINESS_TZ).date().isoformat()


def _refusal(held_by: str, until: datetime | None, kind: str) -> AppError:
    day = _until_text(until)
    message = (f"这家店已由{held_by}报备，保护期到 {day}" if day else f"这家店已是{held_by}的门店")
    return Conflict(message, code="registration_conflict",
                    details={"held_by": held_by, "until": day, "matched": kind})


def _replay(user_id: int | None, request_id: str, phone: str) -> Registration | None:
    """The first answer to this request: its registration, or its refusal raised again."""
    if user_id is None:
        return None
    reg = db.session.scalar(sa.select(Registration).where(Registration.created_by_id == user_id,
                                                          Registration.request_id == request_id))
    refused = None if reg is not None else db.session.scalar(sa.select(RegistrationConflict).where(
        RegistrationConflict.created_by_id == user_id, RegistrationConflict.request_id == request_id))
    if reg is None and refused is None:
        return None
    if (reg.phone if reg is not None else refused.phone) != phone:
        raise Conflict("这个 request_id 已经用于另一次报备", code="request_id_reused")
    if refused is not None:
        raise _refusal(refused.held_by, refused.held_until, refused.kind)
    return reg


def create_registration(principal: Principal, *, request_id: str, name: str, phone: str, address: str = "",
                        region_code: str | None = None, industry: str = "", licence_no: str | None = None,
                        lat: float | None = None, lng: float | None = None) -> Registration:
    """Register a prospect shop for the caller's partner, protected for the policy's days; a shop held by another
    registration or already a store is refused with its holder (and recorded for HQ)."""
    phone = identity.normalize_phone(phone)
    licence = identity.normalize_licence(licence_no) if licence_no and licence_no.strip() else None
    region = identity.resolve_region(region_code, address)
    keys = identity.identity_keys(phone=phone, name=name, area=identity.area_code(region), licence=licence)
    partner = _caller_partner(principal)
    existing = _replay(principal.user_id, request_id, phone)
    if existing is not None:
        return existing
    attempt = {"request_id": request_id, "created_by_id": principal.user_id, "partner_id": partner.id,
               "name": name.strip(), "phone": phone, "region_code": region}
    try:
        with transaction():
            # The partner's row is the lock its quota is counted under; different partners do not wait here.
            partner = db.session.scalar(sa.select(Partner).where(Partner.id == partner.id).with_for_update())
            refusal = _check_free(partner, keys, phone, name, identity.area_code(region), attempt,
                                  region=region, industry=industry or None)
            if refusal is None:
                return _insert(principal, partner, keys, region=region, name=name.strip(), phone=phone,
                               address=address.strip(), industry=industry or "", licence=licence, lat=lat, lng=lng,
                               request_id=request_id)
    except sa.exc.IntegrityError:
        # Another registration of this shop (or this same request) committed between our look and our insert.
        existing = _replay(principal.user_id, request_id, phone)
        if existing is not None:
            return existing
        found = _holder(keys)
        if found is None:
            raise
        refusal = _held_refusal(found, partner.id, attempt)
    _record_conflict(refusal[1])
    raise refusal[0]


def exclusive_holder(partner: Partner, region: str, industry: str | None) -> Partner | None:
    """The partner who serves this place under an exclusive assignment (the one routing function decides), when it
    is neither the registering partner nor in its line (its agent above it, or a distributor below it): a shop
    there is that partner's to bring in."""
    found = routing.route(routing.covering_codes([region]), industry)
    if found.partner_id is None or found.partner_id == partner.id:
        return None
    if db.session.scalar(sa.select(Territory.kind).where(Territory.id == found.assignment_id)) != "exclusive":
        return None
    holder = db.session.get(Partner, found.partner_id)
    if holder.path.startswith(partner.path) or partner.path.startswith(holder.path):
        return None
    return holder


def _conflict(held_by: str, until: datetime | None, kind: str, row: dict) -> tuple[AppError, dict]:
    return _refusal(held_by, until, kind), {**row, "kind": kind, "held_by": held_by, "held_until": until}


def _held_refusal(found: tuple[Registration, str], partner_id: int, attempt: dict) -> tuple[AppError, dict]:
    """The refusal for a shop another partner holds; the partner's own shop again is `already_registered`."""
    reg, kind = found
    until = reg.protected_until if reg.status == PROTECTED else None
    if reg.partner_id == partner_id:
        day = _until_text(until)
        raise Conflict(f"你们已经报备过这家店{'，保护期到 ' + day if day else ''}，需要时请申请延期",
                       code="already_registered", details={"registration_id": reg.id, "until": day})
    return _conflict(reg.partner.name, until, kind,
                     {**attempt, "holder_partner_id": reg.partner_id, "registration_id": reg.id})


def _check_free(partner: Partner, keys, phone: str, name: str, area: str, attempt: dict, *, region: str,
                industry: str | None):
    """None when the shop is free, in no other partner's exclusive territory, and the partner has quota; else (the
    refusal, the conflict row to record). A holder whose protection ran out (the expiry job has not come by yet) is
    expired here first. Another registration or a store comes first: its answer names the holder and the date."""
    found = _holder(keys)
    now = now_utc()
    for _ in keys:  # each key may have its own lapsed holder
        if found is None or found[0].status != PROTECTED or as_utc(found[0].protected_until) > now:
            break
        _expire(db.session.scalar(sa.select(Registration).where(Registration.id == found[0].id).with_for_update()),
                now)
        db.session.flush()
        found = _holder(keys)
    if found is not None:
        return _held_refusal(found, partner.id, attempt)
    store = _store_holding(phone, name, area)
    if store is not None:
        holder = db.session.get(Partner, store[0].distributor_id)
        return _conflict(holder.name, None, store[1],
                         {**attempt, "holder_partner_id": holder.id, "store_id": store[0].id})
    exclusive = exclusive_holder(partner, region, industry)
    if exclusive is not None:
        raise Conflict(f"这个区域由{exclusive.name}独家经营，不能报备", code="territory_exclusive",
                       details={"held_by": exclusive.name, "region_code": region})
    policy = get_policy()
    quota = quota_for(policy, partner.level)
    held = db.session.scalar(sa.select(sa.func.count(Registration.id)).where(
        Registration.partner_id == partner.id, Registration.status == PROTECTED))
    if held >= quota:
        raise Conflict(f"保护中的报备已达上限 {quota} 家，请先放弃或等成交", code="registration_quota",
                       details={"quota": quota, "held": held, "level": partner.level})
    return None


def _insert(principal: Principal, partner: Partner, keys, *, region: str, name: str, phone: str, address: str,
            industry: str, licence: str | None, lat, lng, request_id: str, status: str = PROTECTED,
            action: str = "register", reason: str = "", store_id: int | None = None,
            reassigned_from_id: int | None = None) -> Registration:
    policy = get_policy()
    now = now_utc()
    reg = Registration(request_id=request_id, created_by_id=principal.user_id, partner_id=partner.id,
                       agent_id=_agent_of(partner), name=name, phone=phone, address=address, region_code=region,
                       industry=industry, licence_no=licence, lat=lat, lng=lng, status=status,
                       protected_until=now + timedelta(days=policy.protection_days), store_id=store_id,
                       reassigned_from_id=reassigned_from_id, created_at=now,
                       converted_at=now if status == CONVERTED else None)
    reg.identities = [RegistrationIdentity(kind=k, value=v) for k, v in keys]
    reg.events.append(RegistrationEvent(from_status=None, to_status=status, action=action,
                                        user_id=principal.user_id, reason=reason, at=now))
    db.session.add(reg)
    db.session.flush()  # the unique index decides here
    return reg


def _record_conflict(row: dict) -> None:
    """Keep a refusal for HQ and for the request's replay (its own transaction: the refused one rolled back)."""
    try:
        with transaction():
            db.session.add(RegistrationConflict(**row, at=now_utc()))
    except sa.exc.IntegrityError:
        pass  # the same request refused twice at once: one record is enough


# --- the partner's own moves --------------------------------------------------------------------------------

def _locked(registration_id: int) -> Registration:
    reg = db.session.scalar(sa.select(Registration).where(Registration.id == registration_id).with_for_update())
    if reg is None:
        raise NotFound("找不到这条报备", code="registration_not_found")
    return reg


def _authorize_owner(principal: Principal, reg: Registration) -> None:
    partner = db.session.get(Partner, reg.partner_id)
    authorize(principal, "store.register", partner_path=partner.path)


def _replayed(reg: Registration, request_id: str | None, action: str) -> bool:
    """Whether this request already did its move on the registration (a phone's retry gets the same answer)."""
    return request_id is not None and db.session.scalar(sa.select(RegistrationEvent.id).where(
        RegistrationEvent.registration_id == reg.id, RegistrationEvent.request_id == request_id,
        RegistrationEvent.action == action)) is not None


def extend_registration(principal: Principal, registration_id: int, *, reason: str = "",
                        request_id: str | None = None) -> Registration:
    """The partner asks for more time: the policy's extension days, as many times as it allows; a retried
    request (same `request_id`) extends once."""
    with transaction():
        reg = _locked(registration_id)
        _authorize_owner(principal, reg)
        if _replayed(reg, request_id, "extend"):
            return reg
        now = now_utc()
        if reg.status == PROTECTED and as_utc(reg.protected_until) <= now:
            _expire(reg, now)
            db.session.flush()
            return reg  # committed as expired; the caller hears why below
        policy = get_policy()
        if reg.status == PROTECTED and reg.extensions_used >= policy.max_extensions:
            raise Conflict(f"延期次数已用完（最多 {policy.max_extensions} 次）", code="extension_limit",
                           details={"max_extensions": policy.max_extensions, "protected_until":
                                    _until_text(reg.protected_until)})
        reg.move_to(PROTECTED, action="extend", user_id=principal.user_id,
                    reason=reason or f"申请延期 {policy.extension_days} 天", at=now, request_id=request_id)
        reg.extensions_used += 1
        reg.protected_until = as_utc(reg.protected_until) + timedelta(days=policy.extension_days)
        reg.reminded_at = None
        db.session.flush()
    return reg


def extend(principal: Principal, registration_id: int, *, reason: str = "",
           request_id: str | None = None) -> Registration:
    """`extend_registration`, answering `registration_expired` for a protection that ran out before it."""
    reg = extend_registration(principal, registration_id, reason=reason, request_id=request_id)
    if reg.status == EXPIRED:
        raise Conflict("保护期已过，不能再延期", code="registration_expired")
    return reg


def release_registration(principal: Principal, registration_id: int, *, reason: str = "",
                         request_id: str | None = None) -> Registration:
    """The partner lets the shop go: its keys are free for anyone at once; a retried request answers the same."""
    with transaction():
        reg = _locked(registration_id)
        _authorize_owner(principal, reg)
        if _replayed(reg, request_id, "release"):
            return reg
        if reg.status != PROTECTED:
            raise Conflict("只有保护中的报备可以放弃", code="registration_state", details={"status": reg.status})
        reg.move_to(RELEASED, action="release", user_id=principal.user_id, reason=reason or "伙伴放弃",
                    request_id=request_id)
        db.session.flush()
    return reg


# --- HQ --------------------------------------------------------------------------------------------------

def reassign_registration(principal: Principal, registration_id: int, *, partner_id: int,
                          reason: str) -> Registration:
    """HQ gives a protected shop, or a converted store that is dormant (no order, no scan for the policy's days),
    to another partner, with a reason; the old registration ends `reassigned`, a new one starts for the new
    partner (a converted one moves its store to the new distributor). Answers the new registration."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("请写明改派原因", code="reason_required", details={"fields": {"reason": ["必填"]}})
    with transaction():
        target = db.session.get(Partner, partner_id)
        if target is None or target.kind not in ("agent", "distributor"):
            raise NotFound("找不到这个分销商或代理", code="partner_not_found")
        authorize(principal, "hq.write", partner_path=target.path)
        reg = _locked(registration_id)
        if reg.partner_id == target.id:
            raise ValidationFailed("已经是这个伙伴的报备", code="same_partner")
        now = now_utc()
        if reg.status == CONVERTED:
            if target.kind != "distributor":
                raise ValidationFailed("门店只能改派给分销商", code="distributor_required")
            last = _last_activity(reg)
            days = get_policy().dormancy_days
            if last > now - timedelta(days=days):
                raise Conflict(f"这家门店近 {days} 天有订单或扫码，不能改派", code="store_not_dormant",
                               details={"last_activity_at": last.isoformat()})
        elif reg.status != PROTECTED:
            raise Conflict("这条报备已结束，不能改派", code="registration_state", details={"status": reg.status})
        keys = [(i.kind, i.value) for i in reg.identities]
        status, store_id = reg.status, reg.store_id
        reg.move_to(REASSIGNED, action="reassign", user_id=principal.user_id, reason=reason, at=now)
        db.session.flush()  # the keys are given up before the new registration takes them
        new = _insert(principal, target, keys, region=reg.region_code, name=reg.name, phone=reg.phone,
                      address=reg.address, industry=reg.industry, licence=reg.licence_no, lat=reg.lat, lng=reg.lng,
                      request_id=f"reassign-{reg.id}", status=status, action="reassign", reason=reason,
                      store_id=store_id, reassigned_from_id=reg.id)
        if status == CONVERTED and store_id is not None:
            db.session.execute(sa.update(Store).where(Store.id == store_id).values(distributor_id=target.id))
        return new


# --- conversion ----------------------------------------------------------------------------------------------

def store_keys(phone: str | None, name: str, district_code: str | None, city_code: str | None) -> list:
    keys = []
    if phone:
        try:
            keys.append((identity.PHONE, identity.normalize_phone(phone)))
        except AppError:
            pass
    area = district_code or city_code
    if area and identity.normalize_name(name):
        keys.append((identity.NAME, identity.name_key(name, area)))
    return keys


@functools.cache
def _store_and_holder() -> sa.Select:
    """The store's identity columns and the first protected registration holding its phone or a name in its area,
    built once (this runs on every scan-in)."""
    area = sa.func.coalesce(Store.district_code, Store.city_code)
    held = (sa.select(RegistrationIdentity.registration_id).join(Registration)
            .where(Registration.status == PROTECTED, sa.or_(
                sa.and_(RegistrationIdentity.kind == identity.PHONE, RegistrationIdentity.value == Store.phone),
                sa.and_(RegistrationIdentity.kind == identity.NAME, RegistrationIdentity.value > area + ":",
                        RegistrationIdentity.value < area + ";")))
            .limit(1).correlate(Store).scalar_subquery())
    return sa.select(Store.phone, Store.name, Store.district_code, Store.city_code, held).where(
        Store.id == sa.bindparam("store_id"))


@functools.cache
def _holder_of_store() -> sa.Select:
    """The protected registration holding a store's phone or its name in its district (keys made in Python)."""
    return (sa.select(RegistrationIdentity.registration_id).join(Registration)
            .where(Registration.status == PROTECTED, sa.or_(
                sa.and_(RegistrationIdentity.kind == identity.PHONE,
                        RegistrationIdentity.value == sa.bindparam("phone")),
                sa.and_(RegistrationIdentity.kind == identity.NAME,
                        RegistrationIdentity.value == sa.bindparam("name"))))
            .order_by(RegistrationIdentity.kind.desc()).limit(1))  # "phone" before "name_district"


def check_store_free(distributor: Partner, *, phone: str | None, name: str, district_code: str | None,
                     city_code: str | None) -> None:
    """In the caller's transaction: refuse a new store for a shop another partner's registration protects (HQ
    reassigns it first); the distributor itself, or the agent above it, may have the store made."""
    keys = dict(store_keys(phone, name, district_code, city_code))
    reg_id = db.session.scalar(_holder_of_store(), {"phone": keys.get(identity.PHONE, ""),
                                                    "name": keys.get(identity.NAME, "")})
    if reg_id is None:
        return
    reg = db.session.get(Registration, reg_id)
    if f"/{reg.partner_id}/" in distributor.path:
        return
    raise Conflict(f"这家店由{reg.partner.name}报备保护中（到 {_until_text(reg.protected_until)}），请先改派",
                   code="registration_conflict", details={"held_by": reg.partner.name,
                                                          "until": _until_text(reg.protected_until),
                                                          "registration_id": reg.id})


def convert_for_store(store_id: int, *, via: str, user_id: int | None = None) -> Registration | None:
    """In the caller's transaction: the protected registration of this store's shop (by phone, or name in
    district) becomes converted with the store; nothing when there is none.

    Called on every scan-in, order and redeemed invite, so the usual case (nothing to convert) is one statement:
    the store's row with whether any protected registration holds its phone or any name in its area (a range
    on the unique index); the name is compared only when one does."""
    row = db.session.execute(_store_and_holder(), {"store_id": store_id}).first()
    if row is None or row[4] is None:
        return None
    keys = dict(store_keys(*row[:4]))
    reg_id = db.session.scalar(_holder_of_store(), {"phone": keys.get(identity.PHONE, ""),
                                                    "name": keys.get(identity.NAME, "")})
    if reg_id is None:
        return None
    reg = db.session.scalar(sa.select(Registration).where(Registration.id == reg_id,
                                                          Registration.status == PROTECTED).with_for_update())
    if reg is None:
        return None
    now = now_utc()
    reg.move_to(CONVERTED, action=via, user_id=user_id, reason={
        "invite": "门店已绑定店主", "first_order": "门店首次下单", "scan_in": "门店首次扫码收货"}.get(via, via), at=now)
    reg.store_id, reg.converted_at, reg.converted_via = store_id, now, via
    db.session.flush()
    return reg


# --- jobs --------------------------------------------------------------------------------------------------

def _expire(reg: Registration, now: datetime) -> None:
    reg.move_to(EXPIRED, action="expire", user_id=None, reason="保护期已过，未成交", at=now)


def expire_registrations() -> int:
    """Job: protections past their date end `expired`, their shops free again; returns how many."""
    now = now_utc()
    with transaction():
        regs = list(db.session.scalars(sa.select(Registration).where(
            Registration.status == PROTECTED, Registration.protected_until <= now)
            .order_by(Registration.id).with_for_update(skip_locked=True)))
        for reg in regs:
            _expire(reg, now)
        db.session.flush()
    if regs:
        log.info("registrations: %d expired", len(regs))
    return len(regs)


def remind_expiring() -> int:
    """Job: each protection within the policy's reminder days of its end is reminded once (again after an
    extension), by a subscribe message to its partner's staff, sent after the commit."""
    now = now_utc()
    with transaction():
        days = get_policy().reminder_days
        ids = list(db.session.scalars(sa.select(Registration.id).where(
            Registration.status == PROTECTED, Registration.reminded_at.is_(None),
            Registration.protected_until > now, Registration.protected_until <= now + timedelta(days=days))
            .order_by(Registration.id)))
        if ids:
            db.session.execute(sa.update(Registration).where(Registration.id.in_(ids),
                                                             Registration.reminded_at.is_(None))
                               .values(reminded_at=now))
            for reg_id in ids:
                after_commit(lambda reg_id=reg_id: _enqueue_reminder(reg_id))
    return len(ids)


def _enqueue_reminder(registration_id: int) -> None:
    from app.integrations.jobs import enqueue

    try:
        enqueue("app.channel.registrations.send_reminder", registration_id, retries=3)
    except Exception:  # the reminder is a courtesy: a queue outage must not undo the job's run
        log.exception("registrations: could not queue the reminder of %s", registration_id)


def reminder_recipients(reg: Registration) -> list[str]:
    """The openids of the partner's staff (and of whoever registered the shop)."""
    return list(db.session.scalars(sa.select(User.openid).distinct().outerjoin(Membership).where(
        sa.or_(sa.and_(Membership.partner_id == reg.partner_id, Membership.role.in_(PARTNER_ROLES)),
               User.id == reg.created_by_id),
        User.openid.is_not(None), User.is_active.is_(True))))


def send_reminder(registration_id: int) -> int:
    """Job: tell the partner's staff that a protection is about to end; returns how many messages went out."""
    from app.integrations.wechat import WeChatNotSubscribed, get_wechat

    template = current_app.config["WECHAT_TEMPLATES"].get("registration_expiring")
    reg = db.session.get(Registration, registration_id)
    if not template or reg is None or reg.status != PROTECTED:
        db.session.rollback()
        return 0
    openids = reminder_recipients(reg)
    data = {"thing1": reg.name, "time2": local_text(reg.protected_until),
            "thing3": "报备保护快到期了，可申请延期"}
    db.session.rollback()  # no transaction stays open while WeChat answers
    sent = 0
    for openid in openids:
        try:
            get_wechat().send_subscribe_message(openid, template, data, page=REMINDER_PAGE)
            sent += 1
        except WeChatNotSubscribed:
            log.info("registrations: %s has not subscribed to reminders", openid)
    return sent


def _activity_columns():
    last_order = sa.select(sa.func.max(_orders.c.created_at)).where(
        _orders.c.store_id == Registration.store_id).scalar_subquery()
    last_scan = sa.select(sa.func.max(_scans.c.recorded_at)).where(
        _scans.c.store_id == Registration.store_id).scalar_subquery()
    return last_order, last_scan


def _last_activity(reg: Registration) -> datetime:
    """The store's last order or scan, or its conversion when it has had neither since."""
    last_order, last_scan = _activity_columns()
    row = db.session.execute(sa.select(last_order, last_scan).where(Registration.id == reg.id)).one()
    moments = [as_utc(m) for m in (*row, reg.converted_at) if m is not None]
    return max(moments) if moments else as_utc(reg.created_at)


def mark_dormant() -> int:
    """Job: converted stores with no order and no scan for the policy's dormancy days are marked dormant since
    their last activity (HQ may reassign them); a store that traded again is unmarked. Returns how many are."""
    now = now_utc()
    with transaction():
        cutoff = now - timedelta(days=get_policy().dormancy_days)
        last_order, last_scan = _activity_columns()
        rows = db.session.execute(sa.select(Registration.id, Registration.converted_at, Registration.dormant_since,
                                            last_order, last_scan)
                                  .where(Registration.status == CONVERTED, Registration.store_id.is_not(None))).all()
        dormant = 0
        for reg_id, converted_at, since, order_at, scan_at in rows:
            last = max(as_utc(m) for m in (converted_at, order_at, scan_at) if m is not None)
            value = last if last <= cutoff else None
            dormant += value is not None
            if (since is None) != (value is None) or (since and value and as_utc(since) != value):
                db.session.execute(sa.update(Registration).where(Registration.id == reg_id)
                                   .values(dormant_since=value))
    return dormant


# --- reads -------------------------------------------------------------------------------------------------

def _visible(principal: Principal, action: str, partner_col=Registration.partner_id,
             region_col=Registration.region_code) -> sa.ColumnElement[bool]:
    """Registrations (or refusals) the caller may see: a partner's staff its subtree's; HQ all, or its region's."""
    from app.accounts.roles import PERMISSIONS

    clauses: list[sa.ColumnElement[bool]] = []
    for b in principal.bindings:
        if action not in PERMISSIONS.get(b.role, ()):
            continue
        if b.role in PARTNER_ROLES and b.partner_path:
            clauses.append(partner_col.in_(sa.select(Partner.id).where(Partner.path.startswith(b.partner_path))))
        elif b.role not in PARTNER_ROLES and b.store_id is None:
            if not b.region_code:
                return sa.true()
            code = b.region_code[:6]
            prefix = code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
            clauses.append(region_col.startswith(prefix))
    return sa.or_(*clauses) if clauses else sa.false()


def list_registrations(principal: Principal, *, status: str | None = None, partner_id: int | None = None,
                       conflicts: bool = False, action: str = "store.register",
                       newest_first: bool = False) -> sa.Select:
    """Registrations the caller may see; with `conflicts`, only those someone else was refused on, the latest
    refusal first; otherwise protected ones ending soonest first, then the rest newest first."""
    authorize_action(principal, action)
    stmt = sa.select(Registration).where(_visible(principal, action))
    if status:
        stmt = stmt.where(Registration.status == status)
    if partner_id:
        stmt = stmt.where(Registration.partner_id == partner_id)
    if conflicts:
        latest = (sa.select(RegistrationConflict.registration_id,
                            sa.func.max(RegistrationConflict.at).label("last"))
                  .group_by(RegistrationConflict.registration_id).subquery())
        return stmt.join(latest, latest.c.registration_id == Registration.id).order_by(
            latest.c.last.desc(), Registration.id.desc())
    if newest_first:
        return stmt.order_by(Registration.id.desc())
    return stmt.order_by(sa.case((Registration.status == PROTECTED, 0), else_=1),
                         sa.case((Registration.status == PROTECTED, Registration.protected_until), else_=None),
                         Registration.id.desc())


def get_registration_for(principal: Principal, registration_id: int, action: str = "store.register"
                         ) -> Registration:
    """One registration the caller may see (as in their list), or 404 / 403."""
    authorize_action(principal, action)
    reg = db.session.get(Registration, registration_id)
    if reg is None:
        raise NotFound("找不到这条报备", code="registration_not_found")
    if not db.session.scalar(sa.select(Registration.id).where(Registration.id == reg.id,
                                                              _visible(principal, action))):
        raise Forbidden("这不在你的权限范围内", code="out_of_scope", details={"action": action})
    return reg


def list_conflicts(principal: Principal, *, registration_ids: list[int] | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:
    """Refused attempts, newest first, with both partners (the one refused and the holder)."""
    authorize_action(principal, "hq.read")
    refused, holder = sa.orm.aliased(Partner), sa.orm.aliased(Partner)
    stmt = (sa.select(RegistrationConflict, refused.name, holder.name)
            .join(refused, refused.id == RegistrationConflict.partner_id)
            .outerjoin(holder, holder.id == RegistrationConflict.holder_partner_id)
            .order_by(RegistrationConflict.at.desc(), RegistrationConflict.id.desc()).limit(limit))
    if registration_ids is not None:
        stmt = stmt.where(RegistrationConflict.registration_id.in_(registration_ids or [0]))
    stmt = stmt.where(_visible(principal, "hq.read", RegistrationConflict.partner_id,
                               RegistrationConflict.region_code))
    return [{"id": c.id, "at": c.at, "partner_id": c.partner_id, "partner_name": refused_name,
             "holder_partner_id": c.holder_partner_id, "holder_name": holder_name or c.held_by,
             "registration_id": c.registration_id, "store_id": c.store_id, "matched": c.kind,
             "name": c.name, "phone": c.phone, "region_code": c.region_code, "region_name":
             regions.region_name(c.region_code), "held_until": c.held_until}
            for c, refused_name, holder_name in db.session.execute(stmt)]


def days_left(reg: Registration, now: datetime | None = None) -> int | None:
    """Whole days of protection left (a part-day counts), for a protected registration."""
    if reg.status != PROTECTED:
        return None
    seconds = (as_utc(reg.protected_until) - (now or now_utc())).total_seconds()
    return max(0, ceil(seconds / 86400))


def describe(regs: list[Registration]) -> list[dict[str, Any]]:
    """The answer items: a registration with its partner's name, days left and extensions left."""
    policy = get_policy()
    names = dict(db.session.execute(sa.select(Partner.id, Partner.name).where(
        Partner.id.in_({r.partner_id for r in regs} | {r.agent_id for r in regs if r.agent_id} or {0}))).all())
    counts = dict(db.session.execute(sa.select(RegistrationConflict.registration_id, sa.func.count())
                                     .where(RegistrationConflict.registration_id.in_([r.id for r in regs] or [0]))
                                     .group_by(RegistrationConflict.registration_id)).all())
    now = now_utc()
    return [{"id": r.id, "status": r.status, "name": r.name, "phone": r.phone, "address": r.address,
             "region_code": r.region_code, "region_name": regions.region_name(r.region_code),
             "industry": r.industry, "licence_no": r.licence_no, "partner_id": r.partner_id,
             "partner_name": names.get(r.partner_id, ""), "agent_id": r.agent_id,
             "agent_name": names.get(r.agent_id) if r.agent_id else None,
             "protected_until": r.protected_until, "days_left": days_left(r, now),
             "extensions_left": max(0, policy.max_extensions - r.extensions_used) if r.status == PROTECTED else 0,
             "store_id": r.store_id, "converted_at": r.converted_at, "converted_via": r.converted_via,
             "dormant_since": r.dormant_since, "conflict_count": counts.get(r.id, 0),
             "reassigned_from_id": r.reassigned_from_id, "created_at": r.created_at} for r in regs]


def history(reg: Registration) -> list[dict[str, Any]]:
    return [{"at": e.at, "from_status": e.from_status, "to_status": e.to_status, "action": e.action,
             "user_id": e.user_id, "reason": e.reason} for e in reg.events]

