"""Login use cases that cross WeChat and the database. WeChat is called with no transaction open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.accounts import services
from app.accounts.models import User
from app.accounts.roles import HQ_ADMIN, ROLE_NAMES
from app.channel.models import Partner, Store
from app.core.security import Principal
from app.core.tx import transaction
from app.errors import AppError, Conflict, Forbidden, NotFound, Unauthorized
from app.extensions import db
from app.integrations.wechat import get_wechat


def session_answer(user: User, kind: str) -> dict[str, Any]:
    """What a login answers: a fresh bearer token for the user's current roles, its expiry, and the user."""
    token = services.token_for(user, kind)
    return {"token": token["token"], "expires_at": datetime.fromtimestamp(token["expires_at"], UTC).isoformat(),
            "user": describe_user(user.id)}


def login_with_wechat(js_code: str) -> dict[str, Any]:
    """Mini-program login: WeChat's code → our user and a bearer token."""
    session = get_wechat().code_to_session(js_code)
    with transaction():
        user = services.login_mini_program(openid=session["openid"], session_key=session["session_key"],
                                           unionid=session.get("unionid"))
    return session_answer(user, "mp")


def login_console(username: str, password: str) -> dict[str, Any]:
    """HQ console login with a password."""
    failure: AppError | None = None
    with transaction():
        try:
            user = services.login_hq(username=username, password=password)
        except AppError as exc:
            # The failed-attempt counter and the lock must be committed, not rolled back with the error.
            failure = exc
    if failure is not None:
        raise failure
    return session_answer(user, "hq")


def bind_phone(user_id: int, phone_code: str) -> dict[str, Any]:
    """Ask WeChat for the phone number behind a getPhoneNumber code and keep it."""
    info = get_wechat().get_phone_number(phone_code)
    with transaction():
        services.set_phone(user_id=user_id, phone=info["pure_phone"])
    return describe_user(user_id)


def describe_user(user_id: int) -> dict[str, Any]:
    """The caller as `GET /me` shows them."""
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthorized()
    memberships = [{"role": m.role, "role_name": ROLE_NAMES.get(m.role, m.role), "store_id": m.store_id,
                    "partner_id": m.partner_id} for m in user.memberships]
    store_id = next((m["store_id"] for m in memberships if m["store_id"]), None)
    partner_id = next((m["partner_id"] for m in memberships if m["partner_id"]), None)
    store = db.session.get(Store, store_id) if store_id else None
    partner = db.session.get(Partner, partner_id) if partner_id else None
    return {
        "id": user.id,
        "roles": sorted({m["role"] for m in memberships}),
        "store_id": store_id,
        "partner_id": partner_id,
        "phone": user.phone,
        "display_name": user.display_name or "",
        "store": {"id": store.id, "code": store.code, "name": store.name, "city_code": store.city_code}
        if store else None,
        "partner": {"id": partner.id, "code": partner.code, "name": partner.name, "kind": partner.kind}
        if partner else None,
        "memberships": memberships,
    }


def logout_everywhere(user_id: int) -> None:
    """The caller logs out: every token they hold, on every phone or browser, stops working."""
    with transaction():
        services.revoke_tokens(user_id)


def _user_admin(principal: Principal, user_id: int) -> User:
    """Managing users is for HQ admins of the whole country, on someone else."""
    if not any(b.role == HQ_ADMIN and b.region_code is None for b in principal.bindings):
        raise Forbidden("只有总部管理员可以管理用户", code="out_of_scope", details={"action": "user.manage"})
    if user_id == principal.user_id:
        raise Conflict("不能对自己的账号这样操作", code="cannot_change_yourself")
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("找不到这个用户", code="user_not_found")
    return user


def revoke_user_sessions(principal: Principal, user_id: int) -> None:
    """HQ logs a user out everywhere (a lost phone)."""
    with transaction():
        _user_admin(principal, user_id)
        services.revoke_tokens(user_id)


def deactivate_user(principal: Principal, user_id: int) -> dict[str, Any]:
    with transaction():
        _user_admin(principal, user_id)
        user = services.deactivate_user(user_id)
        answer = {"id": user.id, "is_active": user.is_active}
    return answer


def remove_membership(principal: Principal, user_id: int, membership_id: int) -> None:
    """HQ takes one role away from a user."""
    with transaction():
        _user_admin(principal, user_id)
        if not services.remove_memberships(user_id, [membership_id]):
            raise NotFound("这个用户没有这个角色", code="membership_not_found")


def user_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id))) or 0
