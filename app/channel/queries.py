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


# --- the console's channel pages: the partner tree, the store finder, a store's people, invites --------------

def _region_prefix_condition(code: str) -> sa.ColumnElement[bool]:
    """Stores in a region (a province, a city or a district, by adcode) and everything inside it."""
    code = code[:6]
    if code.endswith("0000"):
        return Store.province_code == code
    if code.endswith("00"):
        return Store.city_code == code
    return Store.district_code == code


def partner_tree(principal: Principal, *, at: datetime | None = None) -> list[dict]:
    """The partners the caller may see in tree order (HQ, its agents, their distributors), each with its depth,
    level, the regions it holds now, its territory count (valid now) and its store count (stores it serves or,
    for an agent or HQ, that its distributors serve)."""
    from app.channel.models import Territory
    from app.core.clock import now_utc
    from app.core.regions import region_name
    from app.core.security import authorize_action

    authorize_action(principal, "partner.read")
    authorize_action(principal, "channel.read")
    at = at or now_utc()
    partners = list(db.session.scalars(list_partners(principal)))
    ids = [p.id for p in partners]
    if not ids:
        return []
    valid = sa.and_(Territory.valid_from <= at, sa.or_(Territory.valid_to.is_(None), Territory.valid_to > at))
    regions_of: dict[int, list[str]] = {}
    for partner_id, code in db.session.execute(
            sa.select(Territory.partner_id, Territory.region_code)
            .where(Territory.partner_id.in_(ids), valid).order_by(Territory.region_code)):
        regions_of.setdefault(partner_id, []).append(code)
    direct = dict(db.session.execute(
        sa.select(Store.distributor_id, sa.func.count()).group_by(Store.distributor_id)).all())
    by_id = {p.id: p for p in partners}
    stores: dict[int, int] = dict.fromkeys(ids, 0)
    for distributor_id, count in direct.items():
        node = by_id.get(distributor_id)
        for pid in (node.path.strip("/").split("/") if node is not None else ()):
            if pid.isdigit() and int(pid) in stores:
                stores[int(pid)] += count
    children: dict[int, int] = {}
    for p in partners:
        if p.parent_id is not None:
            children[p.parent_id] = children.get(p.parent_id, 0) + 1
    top = min(p.path.count("/") for p in partners)
    return [{"id": p.id, "code": p.code, "name": p.name, "kind": p.kind, "level": p.level, "path": p.path,
             "parent_id": p.parent_id if p.parent_id in by_id else None, "depth": p.path.count("/") - top,
             "regions": [region_name(c) for c in regions_of.get(p.id, [])],
             "territory_count": len(regions_of.get(p.id, [])), "store_count": stores[p.id],
             "child_count": children.get(p.id, 0)} for p in partners]


def partner_staff(principal: Principal, partner_id: int) -> list[dict]:
    """The people bound to a partner and their roles (no phone numbers), for a caller who may read the channel."""
    from app.accounts.models import Membership, User
    from app.accounts.roles import ROLE_NAMES
    from app.core.security import authorize_action

    authorize_action(principal, "channel.read")
    get_partner_for(principal, partner_id)
    rows = db.session.execute(
        sa.select(Membership.user_id, User.display_name, User.username, Membership.role, Membership.created_at)
        .join(User, User.id == Membership.user_id)
        .where(Membership.partner_id == partner_id).order_by(Membership.id)).all()
    return [{"user_id": r.user_id, "display_name": r.display_name or r.username or "", "role": r.role,
             "role_name": ROLE_NAMES.get(r.role, r.role), "since": r.created_at} for r in rows]


def search_stores(principal: Principal, *, q: str | None = None, region: str | None = None,
                  distributor_id: int | None = None, under_partner_id: int | None = None,
                  industry: str | None = None) -> sa.Select:
    """Stores the caller may see (the channel's readers: HQ, analysts in their region, partners in their subtree),
    found by name, code or phone (`q`, a part of any), in a region (and inside it), served by a distributor or by
    any distributor under a partner, of an industry; in a stable order (by id). Rows: (Store, distributor name)."""
    from app.core.security import authorize_action

    authorize_action(principal, "channel.read")
    stmt = (sa.select(Store, Partner.name.label("distributor_name"))
            .join(Partner, Partner.id == Store.distributor_id)
            .where(visible_stores_condition(principal, "channel.read")).order_by(Store.id))
    if q:
        like = f"%{like_text(q)}%"
        stmt = stmt.where(sa.or_(Store.name.like(like, escape="\\"), Store.code.like(like, escape="\\"),
                                 Store.phone.like(like, escape="\\")))
    if region:
        stmt = stmt.where(_region_prefix_condition(region))
    if distributor_id is not None:
        stmt = stmt.where(Store.distributor_id == distributor_id)
    if under_partner_id is not None:
        path = db.session.scalar(sa.select(Partner.path).where(Partner.id == under_partner_id))
        stmt = stmt.where(Partner.path.startswith(path, autoescape=True) if path else sa.false())
    if industry:
        stmt = stmt.where(Store.industry == industry)
    return stmt


def like_text(text: str) -> str:
    """Typed text for a LIKE pattern, its wildcards taken literally (escaped with a backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def store_industries(principal: Principal) -> list[str]:
    """The industries of the stores the caller may see (for a filter)."""
    from app.core.security import authorize_action

    authorize_action(principal, "channel.read")
    return list(db.session.scalars(
        sa.select(Store.industry).join(Partner, Partner.id == Store.distributor_id)
        .where(visible_stores_condition(principal, "channel.read"), Store.industry.is_not(None))
        .distinct().order_by(Store.industry)))


def store_people(principal: Principal, store_id: int) -> list[dict]:
    """The owners and clerks bound to a store and their roles (no phone numbers), for a channel reader."""
    from app.accounts.models import Membership, User
    from app.accounts.roles import ROLE_NAMES

    authorize_store(principal, "channel.read", store_id)
    rows = db.session.execute(
        sa.select(Membership.user_id, User.display_name, User.username, Membership.role, Membership.created_at)
        .join(User, User.id == Membership.user_id)
        .where(Membership.store_id == store_id).order_by(Membership.role, Membership.id)).all()
    return [{"user_id": r.user_id, "display_name": r.display_name or r.username or "", "role": r.role,
             "role_name": ROLE_NAMES.get(r.role, r.role), "since": r.created_at} for r in rows]


def list_invites(principal: Principal, *, store_id: int | None = None, status: str | None = None) -> sa.Select:
    """Store invites the caller may read (a channel reader, within the stores they may see), newest first, by
    store and by status (`open`, `redeemed`, `revoked`, `expired`). Rows: (Invite, store code, store name)."""
    from app.core.clock import now_utc
    from app.core.security import authorize_action

    authorize_action(principal, "channel.read")
    if store_id is not None:
        authorize_store(principal, "channel.read", store_id)
    stmt = (sa.select(Invite, Store.code, Store.name).join(Store, Store.id == Invite.store_id)
            .join(Partner, Partner.id == Store.distributor_id)
            .where(visible_stores_condition(principal, "channel.read")).order_by(Invite.id.desc()))
    if store_id is not None:
        stmt = stmt.where(Invite.store_id == store_id)
    now = now_utc()
    if status == "redeemed":
        stmt = stmt.where(Invite.redeemed_at.is_not(None))
    elif status == "revoked":
        stmt = stmt.where(Invite.redeemed_at.is_(None), Invite.revoked_at.is_not(None))
    elif status == "expired":
        stmt = stmt.where(Invite.redeemed_at.is_(None), Invite.revoked_at.is_(None), Invite.expires_at < now)
    elif status == "open":
        stmt = stmt.where(Invite.redeemed_at.is_(None), Invite.revoked_at.is_(None), Invite.expires_at >= now)
    return stmt


def get_invite_for(principal: Principal, invite_id: int) -> dict:
    """A store invite for a channel reader (404 when unknown or not a store's), with whether the caller may hand
    it out (show its QR, revoke it) and, if so and it is still open, its QR as inline SVG (the token, the scene
    the mini-program redeems)."""
    from app.channel.services import check_invite_target
    from app.core.security import authorize_action
    from app.errors import AppError

    authorize_action(principal, "channel.read")
    invite = db.session.get(Invite, invite_id)
    if invite is None or invite.store_id is None:
        raise NotFound("找不到这个邀请", code="invite_not_found")
    authorize_store(principal, "channel.read", invite.store_id)
    try:
        check_invite_target(principal, invite.role, invite.store_id, invite.partner_id)
        may_hand_out = True
    except AppError:
        may_hand_out = False
    status = invite_status(invite)
    svg = None
    if may_hand_out and status == "open":
        import segno

        svg = segno.make(invite.token, error="m").svg_inline(scale=9, border=2, title="邀请码")
    return {"invite": invite, "status": status, "store": db.session.get(Store, invite.store_id),
            "may_hand_out": may_hand_out, "qr_svg": svg}


def store_stock_page(principal: Principal, store_id: int, *, page: int, page_size: int) -> dict:
    """One page of the store's stock per SKU, for a caller who may read it."""
    authorize_store(principal, "stock.read", store_id)
    return inventory_queries.page_location_stock(get_store_location(store_id), page=page, page_size=page_size)
