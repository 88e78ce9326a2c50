"""Reads about the channel."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.catalog import queries as catalog_queries
from app.channel.models import Invite, Partner, Store
from app.core.security import Principal, StoreScope, authorize, authorize_store
from app.errors import NotFound
from app.extensions import db
from app.inventory import queries as inventory_queries


def get_store_scope(store_id: int) -> StoreScope | None:
    """What the scope check needs about a store, in one query."""
    row = db.session.execute(
        sa.select(Store.id, Partner.path, Store.province_code, Store.city_code, Store.district_code)
        .join(Partner, Partner.id == Store.distributor_id)
        .where(Store.id == store_id)
    ).first()
    if row is None:
        return None
    return StoreScope(store_id=row[0], distributor_path=row[1],
                      region_codes=tuple(c for c in row[2:] if c))


def get_store(store_id: int) -> Store | None:
    return db.session.get(Store, store_id)


def get_store_location(store_id: int) -> int:
    """The stock location of a store, or 404."""
    location_id = db.session.scalar(sa.select(Store.location_id).where(Store.id == store_id))
    if location_id is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return location_id


def list_store_stock(principal: Principal, store_id: int) -> list[dict]:
    """The store's stock per SKU (on hand, reserved, available), for a caller who may read it."""
    authorize_store(principal, "stock.read", store_id)
    return inventory_queries.list_location_stock(get_store_location(store_id))


def list_store_movements(principal: Principal, store_id: int, sku_id: int | None = None) -> sa.Select:
    """The store's stock ledger, newest first, for a caller who may read its stock."""
    authorize_store(principal, "stock.read", store_id)
    return inventory_queries.list_movements(get_store_location(store_id), sku_id)


def list_store_catalog(principal: Principal, store_id: int) -> list[dict]:
    """The SKUs the store can order, at its price tier's prices."""
    authorize_store(principal, "catalog.read", store_id)
    store = get_store(store_id)
    if store is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return catalog_queries.catalog_for_tier(store.price_tier_id)


def get_store_by_code(code: str) -> Store | None:
    return db.session.scalar(sa.select(Store).where(Store.code == code))


def get_partner(partner_id: int) -> Partner | None:
    return db.session.get(Partner, partner_id)


def get_partner_for(principal: Principal, partner_id: int, action: str = "partner.read") -> Partner:
    """A partner the caller may read, or 404 / 403."""
    partner = db.session.get(Partner, partner_id)
    if partner is None:
        raise NotFound("找不到这个伙伴", code="partner_not_found")
    authorize(principal, action, partner_path=partner.path)
    return partner


def get_store_for(principal: Principal, store_id: int, action: str = "store.read") -> Store:
    """A store the caller may read, or 404 / 403."""
    authorize_store(principal, action, store_id)
    return db.session.get(Store, store_id)


def get_invite_by_token(token: str) -> Invite | None:
    return db.session.scalar(sa.select(Invite).where(Invite.token == token))


def list_store_invites(principal: Principal, store_id: int) -> sa.Select:
    """A store's invites, newest first, for those who may invite there (404 / 403 otherwise). A store owner
    sees the clerks' invites only: an owner's invite is the partner's or HQ's to hand out."""
    from app.accounts.roles import PERMISSIONS, STORE_CLERK, STORE_ROLES

    authorize_store(principal, "invite.create", store_id)
    stmt = sa.select(Invite).where(Invite.store_id == store_id).order_by(Invite.id.desc())
    if not any(b.role not in STORE_ROLES and "invite.create" in PERMISSIONS.get(b.role, ())
               for b in principal.bindings):
        stmt = stmt.where(Invite.role == STORE_CLERK)
    return stmt


def invite_status(invite: Invite) -> str:
    """`redeemed`, `revoked`, `expired` or `open`."""
    from app.core.clock import now_utc

    if invite.redeemed_at is not None:
        return "redeemed"
    if invite.revoked_at is not None:
        return "revoked"
    return "expired" if invite.expires_at < now_utc() else "open"


def visible_stores_condition(principal: Principal, action: str = "store.read") -> sa.ColumnElement[bool]:
    """A WHERE clause over `Store` (joined to its distributor as `Partner`) for the stores the caller may see."""
    from app.accounts.roles import HQ_ADMIN, HQ_ANALYST, PARTNER_ROLES, PERMISSIONS, STORE_ROLES, WAREHOUSE_OPERATOR

    clauses: list[sa.ColumnElement[bool]] = []
    for b in principal.bindings:
        if action not in PERMISSIONS.get(b.role, ()):
            continue
        if b.role in STORE_ROLES and b.store_id is not None:
            clauses.append(Store.id == b.store_id)
        elif b.role in PARTNER_ROLES and b.partner_path:
            clauses.append(Store.distributor_id.in_(
                sa.select(Partner.id).where(Partner.path.startswith(b.partner_path))))
        elif b.role in (HQ_ADMIN, HQ_ANALYST, WAREHOUSE_OPERATOR):
            if not b.region_code:
                return sa.true()
            code = b.region_code[:6]
            prefix = code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
            column = Store.province_code if code.endswith("0000") else Store.city_code if code.endswith("00") \
                else Store.district_code
            clauses.append(column.startswith(prefix))
    return sa.or_(*clauses) if clauses else sa.false()


def visible_partners_condition(principal: Principal, action: str = "partner.read") -> sa.ColumnElement[bool]:
    """A WHERE clause over `Partner` for the partners `authorize(..., partner_path=)` would let the caller see."""
    from app.accounts.roles import HQ_ADMIN, HQ_ANALYST, PARTNER_ROLES, PERMISSIONS

    clauses: list[sa.ColumnElement[bool]] = []
    for b in principal.bindings:
        if action not in PERMISSIONS.get(b.role, ()):
            continue
        if b.role in PARTNER_ROLES and b.partner_path:
            clauses.append(Partner.path.startswith(b.partner_path))
        elif b.role in (HQ_ADMIN, HQ_ANALYST) and b.region_code is None:
            return sa.true()
    return sa.or_(*clauses) if clauses else sa.false()


def list_partners(principal: Principal) -> sa.Select:
    """The partners the caller may see (a partner sees its own subtree), in tree order."""
    return sa.select(Partner).where(visible_partners_condition(principal)).order_by(Partner.path)


def list_partners_of_kinds(principal: Principal, kinds: tuple[str, ...]) -> list[Partner]:
    """The partners of these kinds the caller may see, in tree order (for pickers)."""
    return list(db.session.scalars(list_partners(principal).where(Partner.kind.in_(kinds))))


def list_stores(principal: Principal, *, region: str | None = None) -> sa.Select:
    stmt = sa.select(Store).where(visible_stores_condition(principal)).order_by(Store.id)
    if region:
        stmt = stmt.where(sa.or_(Store.province_code == region, Store.city_code == region,
                                 Store.district_code == region))
    return stmt


def stores_in_territory(region_code: str) -> sa.Select:
    return sa.select(Store).where(sa.or_(*(col.startswith(region_code[:n]) for col, n in (
        (Store.province_code, 2), (Store.city_code, 4), (Store.district_code, 6)))))


def visible_territories_condition(principal: Principal, action: str = "hq.read") -> sa.ColumnElement[bool]:
    """A WHERE clause over `Territory` for the assignments the caller may see: every one for unbound HQ staff; for
    HQ staff bound to a region, those of that region, inside it or covering it."""
    from app.accounts.roles import HQ_ADMIN, HQ_ANALYST, PERMISSIONS
    from app.channel.models import Territory

    clauses: list[sa.ColumnElement[bool]] = []
    for b in principal.bindings:
        if action not in PERMISSIONS.get(b.role, ()) or b.role not in (HQ_ADMIN, HQ_ANALYST):
            continue
        if not b.region_code:
            return sa.true()
        code = b.region_code[:6]
        prefix = code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
        above = sorted({code[:4] + "00", code[:2] + "0000"} - {code})
        clauses.append(sa.or_(Territory.region_code.startswith(prefix), Territory.region_code.in_(above)))
    return sa.or_(*clauses) if clauses else sa.false()


def list_territories(principal: Principal, *, region: str | None = None, partner_id: int | None = None,
                     active: bool | None = None, at: datetime | None = None) -> sa.Select:
    """Territory assignments the caller may see, by region (a region filter includes its children), then start.
    `active`: only those valid at `at` (now), or only those not valid then. Rows: (Territory, Partner)."""
    from app.channel.models import Territory
    from app.core.clock import now_utc
    from app.core.security import authorize_action

    authorize_action(principal, "hq.read")
    t = Territory
    stmt = (sa.select(t, Partner).join(Partner, Partner.id == t.partner_id)
            .where(visible_territories_condition(principal)).order_by(t.region_code, t.valid_from, t.id))
    if region:
        code = region[:6]
        prefix = code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
        stmt = stmt.where(t.region_code.startswith(prefix))
    if partner_id is not None:
        stmt = stmt.where(t.partner_id == partner_id)
    if active is not None:
        at = at or now_utc()
        valid = sa.and_(t.valid_from <= at, sa.or_(t.valid_to.is_(None), t.valid_to > at))
        stmt = stmt.where(valid if active else sa.not_(valid))
    return stmt


def get_territory(territory_id: int):
    from app.channel.models import Territory

    return db.session.get(Territory, territory_id)
