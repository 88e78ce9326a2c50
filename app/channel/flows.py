"""Channel use cases: each one transaction; WeChat calls happen outside it."""

from __future__ import annotations

from app.channel import services
from app.channel.models import Invite
from app.core.security import Principal
from app.core.tx import transaction
from app.errors import NotFound
from app.extensions import db
from app.integrations.wechat import get_wechat

INVITE_PAGE = "pages/invite/index"


def invite_qr_png(principal: Principal, invite_id: int, *, store_id: int | None = None) -> bytes:
    """The invite's mini-program code, made once through WeChat and kept (`store_id`: only an invite into that
    store; another one is not found)."""
    invite = db.session.get(Invite, invite_id)
    if invite is None or (store_id is not None and invite.store_id != store_id):
        raise NotFound("找不到这个邀请", code="invite_not_found")
    services.check_invite_target(principal, invite.role, invite.store_id, invite.partner_id)
    if invite.qr_png:
        return invite.qr_png
    token = invite.token
    db.session.rollback()  # no transaction open while we wait on WeChat
    png = get_wechat().get_wxa_code_unlimited(token, page=INVITE_PAGE)
    with transaction():
        services.set_invite_qr(invite_id, png)
    return png


def create_invite(principal: Principal, **kwargs) -> Invite:
    with transaction():
        invite = services.create_invite(principal, **kwargs)
    return invite


def store_members(principal: Principal, store_id: int) -> list[dict]:
    return services.store_members(principal, store_id)


def remove_store_member(principal: Principal, store_id: int, user_id: int) -> None:
    with transaction():
        services.remove_store_member(principal, store_id, user_id)


def revoke_invite(principal: Principal, invite_id: int, *, store_id: int | None = None) -> Invite:
    with transaction():
        return services.revoke_invite(principal, invite_id, store_id=store_id)
