"""Who is calling and what they may touch.

A bearer token is a signed, expiring statement of the caller's role bindings, so most checks need no
database read; it also carries its user's token version, and stops working once that version is raised
(logout, a role removed: `app.accounts.revocation`, which checks it without a database read on the hot path).
`authorize` is the one place that decides whether a principal may take an action on an object; every object
route goes through it (or through `load_store`, which calls it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from app.core.types import BIGINT_MAX
from app.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class RoleTable:
    """What each role may do and how its scope is read; the accounts domain's (`app.accounts.roles`)."""

    permissions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    store_roles: tuple[str, ...] = ()  # scoped to their store
    partner_roles: tuple[str, ...] = ()  # scoped to their partner's subtree
    region_roles: tuple[str, ...] = ()  # HQ staff: a region, or everywhere
    warehouse_role: str = ""  # any store; their warehouse for warehouse work


# Core imports no domain: `create_app` hands over the role table and the store-scope lookup (`provide`).
# Until then no role allows anything.
_roles = RoleTable()
_load_store_scope: Callable[[int], StoreScope | None] | None = None


def provide(*, roles: RoleTable, load_store_scope: Callable[[int], StoreScope | None]) -> None:
    """Take the role table and the lookup of a store's scope (`app.channel.queries.get_store_scope`)."""
    global _roles, _load_store_scope
    _roles, _load_store_scope = roles, load_store_scope


@dataclass(frozen=True)
class Binding:
    """One role held in one scope."""

    role: str
    store_id: int | None = None
    partner_id: int | None = None
    partner_path: str | None = None
    warehouse_id: int | None = None
    region_code: str | None = None

    def to_list(self) -> list[Any]:
        return [self.role, self.store_id, self.partner_id, self.partner_path, self.warehouse_id, self.region_code]


@dataclass(frozen=True)
class Principal:
    user_id: int
    kind: str  # "mp" (mini-program) or "hq" (console)
    bindings: tuple[Binding, ...] = field(default_factory=tuple)
    expires_at: int = 0
    token_version: int = 0  # the user's version when the token was issued (app/accounts/revocation.py)

    @property
    def roles(self) -> list[str]:
        return sorted({b.role for b in self.bindings})

    @property
    def store_id(self) -> int | None:
        return next((b.store_id for b in self.bindings if b.store_id is not None), None)

    @property
    def partner_id(self) -> int | None:
        return next((b.partner_id for b in self.bindings if b.partner_id is not None), None)

    def can(self, action: str) -> bool:
        """Whether any role allows the action somewhere (scope is `authorize`'s business)."""
        return any(action in _roles.permissions.get(b.role, ()) for b in self.bindings)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="bearer-token")


def issue_token(*, user_id: int, kind: str, bindings: list[Binding], ttl_seconds: int,
                token_version: int = 0) -> tuple[str, int]:
    """A signed token and its expiry (unix seconds); it works while the user's token version is this one."""
    exp = int(time.time()) + ttl_seconds
    payload = {"u": user_id, "k": kind, "b": [b.to_list() for b in bindings], "e": exp, "v": token_version}
    return _serializer().dumps(payload), exp


def read_token(token: str) -> Principal:
    """The caller a token names, if it is signed, unexpired and not revoked (checked on every request)."""
    app = current_app._get_current_object()  # one context lookup, not two: this runs on every request
    principal = _signed_principal(app.config["SECRET_KEY"], token)
    if principal is None or principal.expires_at < time.time():
        raise Unauthorized("登录已过期，请重新登录", code="token_expired")
    if app.extensions["token_versions"].current(principal.user_id) != principal.token_version:
        raise Unauthorized("登录已失效，请重新登录", code="token_revoked")
    return principal


@lru_cache(maxsize=4096)
def _signed_principal(secret_key: str, token: str) -> Principal | None:
    """What a token states once its signature checks out (None when it states nothing usable).

    A token's statement never changes, so a phone's next request skips the HMAC and the JSON; the expiry is
    still checked on every request by the caller. Per key, so a changed SECRET_KEY verifies afresh.
    """
    try:
        data = URLSafeSerializer(secret_key, salt="bearer-token").loads(token)
    except BadSignature:
        raise Unauthorized("登录已失效，请重新登录", code="invalid_token") from None
    if not isinstance(data, dict) or not data.get("e"):
        return None
    if not _well_typed(data):  # signed by us, but not in the shape we issue (an old format, or a bug): no entry
        raise Unauthorized("登录已失效，请重新登录", code="invalid_token")
    return Principal(user_id=data["u"], kind=data["k"], bindings=tuple(Binding(*b) for b in data.get("b", [])),
                     expires_at=data["e"], token_version=data.get("v", 0))


def _is_id(value: Any) -> bool:
    return type(value) is int and 0 < value <= BIGINT_MAX


# What each position of a binding may hold: role, store_id, partner_id, partner_path, warehouse_id, region_code.
_BINDING_TYPES = (str, int, int, str, int, str)


def _well_typed(data: dict) -> bool:
    """Whether a token's claims have the types `issue_token` writes (a JSON payload can hold anything)."""
    bindings = data.get("b", [])
    version = data.get("v", 0)  # a version claim, where tokens carry one, is a whole number too
    if not (_is_id(data.get("u")) and data.get("k") in ("mp", "hq") and _is_id(data.get("e"))
            and isinstance(bindings, list) and type(version) is int and 0 <= version <= BIGINT_MAX):
        return False
    for b in bindings:
        if not (isinstance(b, list) and 1 <= len(b) <= len(_BINDING_TYPES) and isinstance(b[0], str)):
            return False
        for value, kind in zip(b[1:], _BINDING_TYPES[1:], strict=False):
            if value is not None and not (_is_id(value) if kind is int else isinstance(value, str)):
                return False
    return True


def current_principal(optional: bool = False) -> Principal | None:
    """The caller from the `Authorization: Bearer` header (cached per request)."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    principal = None
    if header.startswith("Bearer ") and header[7:].strip():
        principal = read_token(header[7:].strip())
    elif not optional:
        raise Unauthorized()
    g.principal = principal
    return principal


def require(action: str, kind: str | None = None) -> Principal:
    """The caller, who must hold a role allowing `action` (anywhere); for routes with no single object."""
    principal = current_principal()
    assert principal is not None
    if kind and principal.kind != kind:
        raise Forbidden("这个入口不对你开放", code="wrong_audience")
    authorize_action(principal, action)
    return principal


def authorize_action(principal: Principal, action: str) -> None:
    """Raise Forbidden unless the caller holds a role allowing `action` somewhere: the check of a service whose
    object has no scope of its own (an allocation plan); `authorize` then narrows it to an object's scope."""
    if not principal.can(action):
        raise Forbidden(details={"action": action})


# --- scope -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoreScope:
    """What `authorize` needs to know about a store (or an object that belongs to one)."""

    store_id: int
    distributor_path: str
    region_codes: tuple[str, ...]  # province, city, district


def region_covers(scope_code: str, code: str | None) -> bool:
    """Whether a region adcode (province/city/district, 6 digits) contains another."""
    if not code:
        return False
    scope_code = scope_code[:6]
    if scope_code.endswith("0000"):
        return code[:2] == scope_code[:2]
    if scope_code.endswith("00"):
        return code[:4] == scope_code[:4]
    return code[:6] == scope_code


def _binding_covers_store(b: Binding, target: StoreScope) -> bool:
    if b.role in _roles.store_roles:
        return b.store_id == target.store_id
    if b.role in _roles.partner_roles:
        return bool(b.partner_path) and target.distributor_path.startswith(b.partner_path)
    if b.role in _roles.region_roles:
        return b.region_code is None or any(region_covers(b.region_code, c) for c in target.region_codes)
    # Warehouse operators ship to any store; their actions (not their scope) keep them out of store business.
    return b.role == _roles.warehouse_role


def _binding_covers_partner(b: Binding, partner_path: str) -> bool:
    if b.role in _roles.partner_roles:
        return bool(b.partner_path) and partner_path.startswith(b.partner_path)
    return b.role in _roles.region_roles and b.region_code is None


def authorize(principal: Principal, action: str, *, store: StoreScope | None = None,
              partner_path: str | None = None, warehouse_id: int | None = None) -> None:
    """Raise Forbidden unless one of the caller's bindings allows `action` on this object."""
    for b in principal.bindings:
        if action not in _roles.permissions.get(b.role, ()):
            continue
        if store is not None and not _binding_covers_store(b, store):
            continue
        if partner_path is not None and not _binding_covers_partner(b, partner_path):
            continue
        if (warehouse_id is not None and b.role == _roles.warehouse_role
                and b.warehouse_id not in (None, warehouse_id)):
            continue
        return
    raise Forbidden("这不在你的权限范围内", code="out_of_scope", details={"action": action})


def authorize_region(principal: Principal, action: str, region_code: str) -> None:
    """Raise Forbidden unless one of the caller's HQ bindings allows `action` in this region (HQ staff bound to a
    region act inside it only; unbound HQ staff everywhere)."""
    for b in principal.bindings:
        if action not in _roles.permissions.get(b.role, ()) or b.role not in _roles.region_roles:
            continue
        if b.region_code is None or region_covers(b.region_code, region_code):
            return
    raise Forbidden("这不在你的权限范围内", code="out_of_scope", details={"action": action})


def store_scope(store_id: int) -> StoreScope:
    """Load what scope checks need about a store, or 404."""
    if _load_store_scope is None:
        raise RuntimeError("app.core.security.provide() was not called: build the app with create_app()")
    scope = _load_store_scope(store_id)
    if scope is None:
        raise NotFound("找不到这家门店", code="store_not_found")
    return scope


def authorize_store(principal: Principal, action: str, store_id: int) -> StoreScope:
    """The one check for store-owned objects: the store exists and the caller may `action` there."""
    # A store user acting on their own store needs no database read.
    for b in principal.bindings:
        if b.role in _roles.store_roles and b.store_id == store_id and action in _roles.permissions[b.role]:
            return StoreScope(store_id=store_id, distributor_path="", region_codes=())
    scope = store_scope(store_id)
    authorize(principal, action, store=scope)
    return scope


def default_store_id(principal: Principal, store_id: int | None) -> int:
    """The store a request is about: the one given, else the caller's own."""
    if store_id is not None:
        return store_id
    if principal.store_id is None:
        from app.errors import ValidationFailed

        raise ValidationFailed("请指定门店", code="store_required", details={"fields": {"store_id": ["必填"]}})
    return principal.store_id
