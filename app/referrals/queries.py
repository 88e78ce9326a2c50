"""Reads of referral rewards: a consumer's own, and HQ's ledger with filters and totals."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from app.core.pagination import paginate
from app.core.security import Principal, authorize_action
from app.extensions import db
from app.referrals.models import ReferralAccount, ReferralReward
from app.referrals.services import day_bounds, require_on

R = ReferralReward.__table__
_users = sa.table("users", sa.column("id"), sa.column("display_name"), sa.column("phone"))
_codes = sa.table("codes", sa.column("id"), sa.column("serial"), sa.column("sku_id"))
_skus = sa.table("skus", sa.column("id"), sa.column("name"))


def _balance(user_id: int) -> dict[str, int]:
    account = db.session.get(ReferralAccount, user_id)
    return {"pending_fen": account.pending_fen if account else 0,
            "available_fen": account.available_fen if account else 0,
            "paid_fen": account.paid_fen if account else 0}


def _masked(phone: str | None) -> str | None:
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 7 else None


def _rows(stmt: sa.Select, page: int, page_size: int) -> dict[str, Any]:
    result = paginate(stmt, page=page, page_size=page_size, scalars=False)
    result["items"] = [dict(row._mapping) for row in result["items"]]
    return result


def _select() -> sa.Select:
    return (sa.select(R.c.id, R.c.level, R.c.amount_fen, R.c.status, R.c.cancel_reason, R.c.frozen_until,
                      R.c.created_at, R.c.settled_at, R.c.referrer_id, R.c.consumer_id, _codes.c.serial,
                      _skus.c.name.label("sku_name"))
            .join(_codes, _codes.c.id == R.c.code_id).join(_skus, _skus.c.id == _codes.c.sku_id))


def my_rewards(principal: Principal, *, status: str | None = None, page: int = 1,
               page_size: int = 20) -> dict[str, Any]:
    """The caller's rewards as a referrer, newest first, and their balances."""
    authorize_action(principal, "referral.use")
    require_on()
    stmt = _select().where(R.c.referrer_id == principal.user_id)
    if status:
        stmt = stmt.where(R.c.status == status)
    result = _rows(stmt.order_by(R.c.id.desc()), page, page_size)
    for item in result["items"]:
        item.pop("consumer_id")  # a referrer learns a reward came, not who checked the unit
    result["balance"] = _balance(principal.user_id)
    return result


def hq_rewards(principal: Principal, *, status: str | None = None, referrer_id: int | None = None,
               level: int | None = None, day_from: date | None = None, day_to: date | None = None,
               page: int = 1, page_size: int = 20) -> dict[str, Any]:
    """HQ's ledger of rewards (readable while the policy is off: what is owed stays visible), filtered, with
    totals by status over the whole filter."""
    authorize_action(principal, "hq.read")
    where = []
    if status:
        where.append(R.c.status == status)
    if referrer_id:
        where.append(R.c.referrer_id == referrer_id)
    if level:
        where.append(R.c.level == level)
    start, end = day_bounds(day_from, day_to)
    if start is not None:
        where.append(R.c.created_at >= start)
    if end is not None:
        where.append(R.c.created_at < end)
    referrer = _users.alias("referrer")
    stmt = (_select().add_columns(referrer.c.display_name.label("referrer_name"),
                                  referrer.c.phone.label("referrer_phone"))
            .join(referrer, referrer.c.id == R.c.referrer_id).where(*where).order_by(R.c.id.desc()))
    result = _rows(stmt, page, page_size)
    for item in result["items"]:
        item["referrer_phone"] = _masked(item["referrer_phone"])
    totals = dict(db.session.execute(sa.select(R.c.status, sa.func.coalesce(sa.func.sum(R.c.amount_fen), 0))
                                     .where(*where).group_by(R.c.status)).all())
    result["totals"] = {s: int(totals.get(s, 0)) for s in ("pending", "available", "cancelled", "reversed")}
    result["totals"]["count"] = result["total"]
    accounts = ReferralAccount.__table__
    paid = db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(accounts.c.paid_fen), 0),
                                        sa.func.coalesce(sa.func.sum(accounts.c.available_fen), 0))).one()
    result["totals"]["paid_out_fen"], result["totals"]["payable_fen"] = int(paid[0]), int(paid[1])
    return result
