"""Writes to the channel: partners, stores, territories, invites.

Partners and stores: each use case takes the caller, checks them and owns its transaction. The invite helpers
below run in the transaction of their use case in `app.channel.flows`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa

from app.accounts.models import Membership
from app.accounts.roles import PARTNER_ROLES, PERMISSIONS, STORE_CLERK, STORE_OWNER, STORE_ROLES
from app.catalog.models import PriceTier
from app.channel import registrations
from app.channel.models import Invite, Partner, Store
from app.channel.routing import candidates
from app.channel.territories import add_assignment
from app.core import regions
from app.core.clock import now_utc
from app.core.security import Principal, authorize, authorize_store
from app.core.tx import transaction
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.inventory.services import create_location

INVITE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"


def create_partner(principal: Principal, *, code: str, name: str, kind: str, parent_id: int | None = None,
                   level: str = "standard", territories: list[dict] | None = None,
                   contact_phone: str | None = None) -> Partner:
    """A partner under `parent_id` (which the caller may write to), with its materialized path and territories;
    the root (HQ, no parent) only by a caller with the whole network."""
    if kind not in ("hq", "agent", "distributor"):
        raise ValidationFailed("伙伴类型只能是 hq、agent 或 distributor", code="invalid_partner_kind")
    with transaction():
        parent = None
        if parent_id is not None:
            parent = db.session.get(Partner, parent_id)
            if parent is None:
                raise NotFound("找不到上级伙伴", code="partner_not_found")
        authorize(principal, "hq.write", partner_path=parent.path if parent else "/")
        if parent is not None and parent.kind == "distributor":
            raise ValidationFailed("分销商下面不能再挂伙伴", code="invalid_parent")
        if parent is None and kind != "hq":
            raise ValidationFailed("请指定上级伙伴", code="parent_required")
        return _create_partner(parent, code=code, name=name, kind=kind, level=level, territories=territories,
                               contact_phone=contact_phone, created_by_id=principal.user_id)


def _create_partner(parent: Partner | None, *, code: str, name: str, kind: str, level: str,
                    territories: list[dict] | None, contact_phone: str | None,
                    created_by_id: int | None = None) -> Partner:
    parent_id = parent.id if parent else None
    if db.session.scalar(sa.select(Partner.id).where(Partner.code == code)):
        raise Conflict("这个伙伴编号已存在", code="partner_code_taken")
    partner = Partner(code=code, name=name, kind=kind, parent_id=parent_id, level=level, contact_phone=contact_phone)
    db.session.add(partner)
    db.session.flush()
    partner.path = f"{parent.path if parent else '/'}{partner.id}/"
    # Its territories: assignments from now on, shared unless said otherwise (`app.channel.territories`).
    for t in territories or []:
        add_assignment(partner, region_code=t["region_code"], industry=t.get("industry"),
                       kind=t.get("kind") or "shared", valid_from=t.get("valid_from"), valid_to=t.get("valid_to"),
                       created_by_id=created_by_id)
    db.session.flush()
    return partner


def create_store(principal: Principal, *, code: str, name: str, region_code: str, price_tier_id: int,
                 distributor_id: int | None = None, owner_name: str = "", phone: str | None = None,
                 address: str = "", industry: str | None = None) -> Store:
    """A store in a city or district, served by one distributor (which the caller may write to), with its own
    stock location. Without a distributor, the one whose territory serves the store's place takes it (the first
    distributor among `app.channel.routing.candidates`)."""
    with transaction():
        if distributor_id is None:
            distributor_id = _serving_distributor(region_code, industry)
        distributor = db.session.get(Partner, distributor_id)
        if distributor is None:
            raise NotFound("找不到这个分销商", code="distributor_not_found")
        authorize(principal, "hq.write", partner_path=distributor.path)
        return _create_store(distributor, code=code, name=name, region_code=region_code,
                             price_tier_id=price_tier_id, owner_name=owner_name, phone=phone, address=address,
                             industry=industry)


def _serving_distributor(region_code: str, industry: str | None) -> int:
    if not regions.is_valid(region_code) or regions.get_region(region_code).level == "province":
        raise ValidationFailed("门店地区要精确到市或区县", code="unknown_region", details={"region_code": region_code})
    routes = candidates([region_code], industry)
    kinds = dict(db.session.execute(sa.select(Partner.id, Partner.kind).where(
        Partner.id.in_([r.partner_id for r in routes]))).all()) if routes else {}
    for r in routes:
        if kinds.get(r.partner_id) == "distributor":
            return r.partner_id
    raise ValidationFailed("这个地区还没有分销商负责，请指定分销商", code="no_distributor_for_region",
                           details={"region_code": region_code})


def _create_store(distributor: Partner, *, code: str, name: str, region_code: str, price_tier_id: int,
                  owner_name: str, phone: str | None, address: str, industry: str | None) -> Store:
    if not regions.is_valid(region_code) or regions.get_region(region_code).level == "province":
        raise ValidationFailed("门店地区要精确到市或区县", code="unknown_region", details={"region_code": region_code})
    province, city, district = regions.split(region_code)
    distributor_id = distributor.id
    if distributor.kind != "distributor":
        raise NotFound("找不到这个分销商", code="distributor_not_found")
    if db.session.get(PriceTier, price_tier_id) is None:
        raise NotFound("找不到这个价格等级", code="price_tier_not_found")
    if db.session.scalar(sa.select(Store.id).where(Store.code == code)):
        raise Conflict("这个门店编号已存在", code="store_code_taken")
    registrations.check_store_free(distributor, phone=phone, name=name, district_code=district, city_code=city)
    location = create_location(kind="store", name=name, city_code=city)
    store = Store(code=code, name=name, owner_name=owner_name, phone=phone, address=address,
                  province_code=province, city_code=city or province, district_code=district, industry=industry,
                  distributor_id=distributor_id, price_tier_id=price_tier_id, location_id=location.id)
    db.session.add(store)
    db.session.flush()
    return store


def check_invite_target(principal: Principal, role: str, store_id: int | None, partner_id: int | None) -> None:
    """Raise unless the caller may invite into `role` at this store or partner (and the role is invitable)."""
    if role in STORE_ROLES:
        if store_id is None or partner_id is not None:
            raise ValidationFailed("门店角色的邀请要指定门店", code="store_required")
        authorize_store(principal, "invite.create", store_id)
        # A store owner may invite clerks, not other owners.
        if role == STORE_OWNER and not any(b.role not in STORE_ROLES for b in principal.bindings):
            raise Forbidden("店主只能邀请店员", code="out_of_scope")
    elif role in PARTNER_ROLES:
        if partner_id is None or store_id is not None:
            raise ValidationFailed("伙伴角色的邀请要指定伙伴", code="partner_required")
        partner = db.session.get(Partner, partner_id)
        if partner is None:
            raise NotFound("找不到这个伙伴", code="partner_not_found")
        authorize(principal, "invite.create", partner_path=partner.path)
    else:
        # HQ roles are given in the console by an HQ admin, not by invite.
        raise ValidationFailed("这个角色不能通过邀请加入", code="role_not_invitable")


def create_invite(principal: Principal, *, role: str, store_id: int | None = None, partner_id: int | None = None,
                  ttl_hours: int = 72) -> Invite:
    """An invite into a role at a store or partner; its token is the mini-program code's scene."""
    check_invite_target(principal, role, store_id, partner_id)
    if not 1 <= ttl_hours <= 24 * 30:
        raise ValidationFailed("有效期要在 1 小时到 30 天之间", code="invalid_ttl")
    token = "i" + "".join(secrets.choice(INVITE_ALPHABET) for _ in range(15))
    invite = Invite(token=token, role=role, store_id=store_id, partner_id=partner_id,
                    created_by_id=principal.user_id, expires_at=now_utc() + timedelta(hours=ttl_hours))
    db.session.add(invite)
    db.session.flush()
    return invite


def revoke_invite(principal: Principal, invite_id: int, *, store_id: int | None = None) -> Invite:
    """Withdraw an unused invite (`store_id`: only an invite into that store; another one is not found)."""
    invite = db.session.get(Invite, invite_id)
    if invite is None or (store_id is not None and invite.store_id != store_id):
        raise NotFound("找不到这个邀请", code="invite_not_found")
    check_invite_target(principal, invite.role, invite.store_id, invite.partner_id)
    if invite.redeemed_at is not None:
        raise Conflict("邀请已经被使用，不能撤销", code="invite_used")
    invite.revoked_at = invite.revoked_at or now_utc()
    return invite


def redeem_invite(*, user_id: int, token: str) -> Membership:
    """Bind the caller to the invite's store or partner; an invite works once."""
    invite = db.session.scalar(sa.select(Invite).where(Invite.token == token))
    if invite is None:
        raise NotFound("邀请码无效", code="invite_not_found")
    if invite.revoked_at is not None:
        raise Conflict("这个邀请已被撤销", code="invite_revoked")
    if invite.expires_at < now_utc():
        raise Conflict("这个邀请已过期，请找邀请人重新生成", code="invite_expired")
    # Claim it atomically so two phones scanning at once cannot both succeed.
    claimed = db.session.execute(
        sa.update(Invite).where(Invite.id == invite.id, Invite.redeemed_at.is_(None))
        .values(redeemed_at=now_utc(), redeemed_by_id=user_id)
    ).rowcount
    if claimed != 1:
        raise Conflict("这个邀请已经被使用", code="invite_used")
    existing = db.session.scalar(sa.select(Membership).where(
        Membership.user_id == user_id, Membership.role == invite.role,
        Membership.store_id.is_(invite.store_id) if invite.store_id is None else Membership.store_id == invite.store_id,
        Membership.partner_id.is_(None) if invite.partner_id is None else Membership.partner_id == invite.partner_id))
    if existing:
        return existing
    membership = Membership(user_id=user_id, role=invite.role, store_id=invite.store_id, partner_id=invite.partner_id)
    db.session.add(membership)
    db.session.flush()
    if invite.store_id is not None:
        # The shop has its people now: a protected registration of it is converted, in this transaction.
        registrations.convert_for_store(invite.store_id, via="invite", user_id=user_id)
    return membership


def _may_manage_members(principal: Principal, store_id: int) -> bool:
    """Whether the caller may remove owners too (partner staff serving the store, HQ), not only clerks."""
    authorize_store(principal, "member.manage", store_id)
    return any(b.role not in STORE_ROLES and "member.manage" in PERMISSIONS.get(b.role, ())
               for b in principal.bindings)


def store_members(principal: Principal, store_id: int) -> list[dict]:
    """The people bound to a store and their roles (no phone numbers)."""
    from app.accounts.models import User
    from app.accounts.roles import ROLE_NAMES

    _may_manage_members(principal, store_id)
    rows = db.session.execute(
        sa.select(Membership.user_id, User.display_name, Membership.role, Membership.created_at)
        .join(User, User.id == Membership.user_id)
        .where(Membership.store_id == store_id).order_by(Membership.id)).all()
    return [{"user_id": r.user_id, "display_name": r.display_name or "", "role": r.role,
             "role_name": ROLE_NAMES.get(r.role, r.role), "since": r.created_at} for r in rows]


def remove_store_member(principal: Principal, store_id: int, user_id: int) -> None:
    """Unbind a person from a store: an owner removes clerks; partner staff and HQ remove anyone. The person's
    tokens stop working on their next request (they log in again without the store)."""
    from app.accounts.services import remove_memberships

    above_store = _may_manage_members(principal, store_id)
    roles = dict(db.session.execute(sa.select(Membership.id, Membership.role).where(
        Membership.store_id == store_id, Membership.user_id == user_id)).all())
    if not above_store and any(role != STORE_CLERK for role in roles.values()):
        raise Forbidden("店主只能移除店员", code="out_of_scope", details={"action": "member.manage"})
    if not roles or not remove_memberships(user_id, list(roles)):
        raise NotFound("这个人不在这家门店", code="member_not_found")


def set_invite_qr(invite_id: int, png: bytes) -> None:
    db.session.execute(sa.update(Invite).where(Invite.id == invite_id).values(qr_png=png))
