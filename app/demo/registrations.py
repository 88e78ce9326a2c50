"""Demo registrations: two shops under protection, one that became a store (S6), one whose protection ran out,
and one refused attempt (D2 on D1's shop) for HQ's conflict list."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.accounts.roles import DISTRIBUTOR_STAFF
from app.channel import identity, registrations
from app.channel.registration_models import Registration, RegistrationEvent, RegistrationIdentity
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import AppError
from app.extensions import db


def _staff(ctx, openid: str | None, partner_code: str) -> Principal:
    partner = ctx.partners[partner_code]
    user_id = ctx.users[openid].id if openid else None
    return Principal(user_id, "mp", (Binding(DISTRIBUTOR_STAFF, partner_id=partner.id,  # type: ignore[arg-type]
                                             partner_path=partner.path),))


def seed(ctx) -> None:
    """Through the real use cases where they exist; S6's registration is history (it predates the store)."""
    d1 = _staff(ctx, "demo_distributor", "D1")
    d2 = _staff(ctx, "demo_distributor_2", "D2")
    registrations.create_registration(d1, request_id="demo-reg-1", name="湖滨茶饮小铺", phone="139 0000 0011",
                                      address="杭州市上城区湖滨路 20 号", industry="convenience")
    registrations.create_registration(d2, request_id="demo-reg-2", name="科技园鲜果店", phone="13900000012",
                                      address="深圳市南山区科苑路 8 号", region_code="440305", industry="convenience",
                                      licence_no="91440300MA5F00001A")
    try:  # D2 tries D1's shop: refused, and HQ sees both partners
        registrations.create_registration(d2, request_id="demo-reg-3", name="湖滨茶饮", phone="13900000011",
                                          address="杭州市上城区湖滨路 20 号", industry="convenience")
    except AppError:
        pass
    # D4's shop, registered 35 days ago and never converted: the expiry job ends it.
    d4 = _staff(ctx, None, "D4")
    late = registrations.create_registration(d4, request_id="demo-reg-4", name="天河路口小卖部",
                                             phone="13900000013", address="广州市天河区天河北路 5 号",
                                             industry="convenience")
    with transaction():
        db.session.execute(sa.update(Registration).where(Registration.id == late.id).values(
            protected_until=now_utc() - timedelta(days=5), created_at=now_utc() - timedelta(days=35)))
    registrations.expire_registrations()
    _converted_s6(ctx)


def _converted_s6(ctx) -> None:
    """D2 registered 福田社区店 before it was set up as S6; its first order converted it."""
    store, partner = ctx.stores["S6"], ctx.partners["D2"]
    now = now_utc()
    registered, converted = now - timedelta(days=60), now - timedelta(days=45)
    with transaction():
        reg = Registration(request_id="demo-reg-s6", created_by_id=ctx.users["demo_distributor_2"].id,
                           partner_id=partner.id, agent_id=ctx.partners["A2"].id, name=store.name, phone=store.phone,
                           address=store.address, region_code=store.district_code, industry="convenience",
                           status="converted", protected_until=registered + timedelta(days=30), store_id=store.id,
                           converted_at=converted, converted_via="first_order", created_at=registered)
        reg.identities = [RegistrationIdentity(kind=k, value=v) for k, v in identity.identity_keys(
            phone=store.phone, name=store.name, area=store.district_code, licence=None)]
        reg.events = [RegistrationEvent(from_status=None, to_status="protected", action="register",
                                        user_id=ctx.users["demo_distributor_2"].id, at=registered),
                      RegistrationEvent(from_status="protected", to_status="converted", action="first_order",
                                        reason="门店首次下单", at=converted)]
        db.session.add(reg)
