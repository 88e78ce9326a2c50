"""HQ's management of users: log a user out everywhere, deactivate them, take a role away (logging in is
`app.sessions.flows`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.accounts import services
from app.accounts.models import User
from app.accounts.roles import HQ_ADMIN
from app.core.security import Principal
from app.core.tx import transaction
from app.errors import Conflict, Forbidden, NotFound
from app.extensions import db


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
