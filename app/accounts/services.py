"""Login (mini-program and HQ console), phone binding, and the tokens they hand out."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from app.accounts import revocation
from app.accounts.models import Membership, User
from app.accounts.roles import CONSUMER, HQ_ROLES
from app.core.clock import now_utc
from app.errors import AppError, NotFound, Unauthorized, ValidationFailed
from app.extensions import db

_hasher = PasswordHasher()
# Verifying against this keeps an unknown username as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def use_fast_hashing() -> None:
    """Cheap argon2 parameters, for test suites only (never called by the app)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("not-a-real-password")


class AccountLocked(AppError):
    status, code, message = 429, "account_locked", "密码错误次数太多，请稍后再试"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# --- revocation: each of these raises the user's token version (app/accounts/revocation.py) -------------------

def revoke_tokens(user_id: int) -> None:
    """Log the user out everywhere: every token issued so far stops working after the commit."""
    if db.session.get(User, user_id) is None:
        raise NotFound("找不到这个用户", code="user_not_found")
    revocation.bump(user_id)


def deactivate_user(user_id: int) -> User:
    """The user can no longer log in, and their tokens stop working."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("找不到这个用户", code="user_not_found")
    user.is_active = False
    db.session.flush()
    revocation.bump(user_id)
    return user


def remove_memberships(user_id: int, membership_ids: list[int]) -> int:
    """Take these roles away from the user; tokens that still carry them stop working. Returns how many were
    removed (one DELETE: a concurrent removal of the same roles removes nothing here, and raises nothing)."""
    removed = db.session.execute(sa.delete(Membership).where(
        Membership.id.in_(membership_ids), Membership.user_id == user_id)).rowcount
    if removed:
        revocation.bump(user_id)
    return removed


def login_mini_program(*, openid: str, session_key: str, unionid: str | None = None) -> User:
    """Find or create the user behind a WeChat login; the session key stays here."""
    user = db.session.scalar(sa.select(User).where(User.openid == openid))
    if user is None:
        user = User(openid=openid, display_name="", is_active=True)  # column defaults apply only at flush
        db.session.add(user)
    if not user.is_active:
        raise Unauthorized("账号已停用，请联系总部", code="account_disabled")
    user.session_key = session_key
    user.unionid = unionid or user.unionid
    user.last_login_at = now_utc()
    db.session.flush()
    return user


def grant_consumer(user: User) -> None:
    """Give a mini-program user the consumer role (once; a user who already holds it keeps the one row)."""
    db.session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())  # one grant at a time
    held = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == user.id,
                                                            Membership.role == CONSUMER).with_for_update())
    if held is None:
        db.session.add(Membership(user_id=user.id, role=CONSUMER))
        db.session.flush()


def set_phone(*, user_id: int, phone: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthorized()
    user.phone = phone
    return user


def login_hq(*, username: str, password: str) -> User:
    """Check a console password; lock the account for a while after repeated failures."""
    cfg = current_app.config
    user = db.session.scalar(sa.select(User).where(User.username == username).with_for_update())
    now = now_utc()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(details={"locked_until": user.locked_until.isoformat()})
    try:
        ok = _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if user is None or not ok or not user.is_active:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= cfg["LOGIN_MAX_FAILURES"]:
                user.locked_until = now + timedelta(minutes=cfg["LOGIN_LOCK_MINUTES"])
                user.failed_logins = 0
        raise Unauthorized("用户名或密码不对", code="invalid_credentials")
    if not any(m.role in HQ_ROLES for m in user.memberships):
        raise Unauthorized("这个账号不能登录总部后台", code="not_hq_user")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def create_hq_user(*, username: str, password: str, role: str, display_name: str = "",
                   region_code: str | None = None, warehouse_id: int | None = None) -> User:
    if role not in HQ_ROLES:
        raise ValidationFailed("不是总部角色", code="invalid_role")
    if len(password) < 8 and current_app.config["APP_ENV"] == "production":
        raise ValidationFailed("密码至少 8 位", code="weak_password")
    user = User(username=username, password_hash=hash_password(password), display_name=display_name or username)
    user.memberships.append(Membership(role=role, region_code=region_code, warehouse_id=warehouse_id))
    db.session.add(user)
    db.session.flush()
    return user
