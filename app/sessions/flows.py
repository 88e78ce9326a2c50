"""Who is calling, as a session: logging in (mini-program through WeChat, console with a password), the answer a
login gives (a bearer token for the user's current roles and the user with their store and partner), binding
through an invite, binding the phone, logging out. Above both the accounts (users, role bindings, tokens) and
the channel (the stores and partners those bindings name); the edges call these. WeChat is called with no
transaction open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.accounts import services
from app.accounts.models import Membership, User
from app.accounts.roles import ROLE_NAMES
from app.channel import services as channel_services
from app.channel.models import Partner, Store
from app.core.security import Binding, Principal, issue_token
from app.core.tx import transaction
from app.errors import AppError, Unauthorized
from app.extensions import db
from app.integrations.wechat import get_wechat


def bindings_for(user_id: int) -> list[Binding]:
    rows = db.session.execute(
        sa.select(Membership.role, Membership.store_id, Membership.partner_id, Partner.path,
                  Membership.warehouse_id, Membership.region_code)
        .outerjoin(Partner, Partner.id == Membership.partner_id)
        .where(Membership.user_id == user_id).order_by(Membership.id)
    ).all()
    return [Binding(*row) for row in rows]


def token_for(user: User, kind: str) -> dict[str, Any]:
    ttl = current_app.config["MP_TOKEN_TTL_SECONDS" if kind == "mp" else "HQ_TOKEN_TTL_SECONDS"]
    version = user.token_version or 0
    token, exp = issue_token(user_id=user.id, kind=kind, bindings=bindings_for(user.id), ttl_seconds=ttl,
                             token_version=version)
    return {"token": token, "expires_at": exp}


def session_answer(user: User, kind: str) -> dict[str, Any]:
    """What a login answers: a fresh bearer token for the user's current roles, its expiry, and the user."""
    token = token_for(user, kind)
    return {"token": token["token"], "expires_at": datetime.fromtimestamp(token["expires_at"], UTC).isoformat(),
            "user": describe_user(user.id)}


def login_with_wechat(js_code: str) -> dict[str, Any]:
    """Mini-program login: WeChat's code → our user and a bearer token."""
    session = get_wechat().code_to_session(js_code)
    with transaction():
        user = services.login_mini_program(openid=session["openid"], session_key=session["session_key"],
                                           unionid=session.get("unionid"))
    return session_answer(user, "mp")


def login_as_consumer(js_code: str) -> dict[str, Any]:
    """Mini-program login of a shopper: WeChat's code → our user, who holds the consumer role from now on (to
    verify units and take part in referral rewards), and a bearer token for their roles."""
    session = get_wechat().code_to_session(js_code)
    with transaction():
        user = services.login_mini_program(openid=session["openid"], session_key=session["session_key"],
                                           unionid=session.get("unionid"))
        services.grant_consumer(user)
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


def redeem_invite(principal: Principal, token: str) -> dict[str, Any]:
    """Bind the caller through an invite, and hand back a token that carries the new role."""
    with transaction():
        channel_services.redeem_invite(user_id=principal.user_id, token=token)
    user = db.session.get(User, principal.user_id)
    return session_answer(user, "mp")
