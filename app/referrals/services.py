"""Consumer referral rewards, off unless HQ switches them on (CHANNEL.md §9).

Rules, each kept by the database rather than by a read followed by a write:
- A consumer shares a link only after a genuine check of a unit in the mini-program recorded against them.
- Binding: first touch wins (one row per consumer; a new link binds only once the old binding has expired), it
  lasts the policy's days, never oneself, never a loop: the whole live chain above the referrer is walked, so
  A→B→A and A→B→C→A are both refused. Bindings are written under the policy row's lock (PostgreSQL; on SQLite
  the write transaction is the lock), so two opposite bindings at once cannot make a loop between them.
- Reward: a bound consumer's check of a unit a store sold within the purchase window earns their referrer the
  reward (level 2: the referrer's own live referrer earns the second level's), once per unit and level (a unique
  index), `pending` until `frozen_until`, then `available` (`release_due`, scheduled in app/cron.py).
- Daily cap per referrer and business day (Asia/Shanghai): a compare-and-set on a counter row. A reward over the
  cap is written `cancelled` (`daily_cap`), so the unit stays used and HQ sees it.
- A return or an undone sale of the unit (`sale_reversed`, in the scan's own transaction) cancels a pending
  reward. After it became available it is `reversed`: the available balance is reduced by the reward but never
  below zero; what had already been paid out is not clawed back, and the ledger entry records it as
  `unrecovered_fen` for HQ. No balance ever goes below zero (check constraints as well).
- Payout: HQ records what it paid (offline, or a WeChat Pay transfer with its reference); the available balance
  falls only by a recorded payout, by a compare-and-set that refuses more than is available.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.codes.models import Code
from app.core.clock import business_day, business_day_start, now_utc
from app.core.db import dialect_insert, on_postgres
from app.core.security import Principal, authorize_action
from app.core.tx import require_transaction, transaction
from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.referrals.models import (
    ConsumerVerification,
    ReferralAccount,
    ReferralBinding,
    ReferralDailyTotal,
    ReferralLedger,
    ReferralLink,
    ReferralPayout,
    ReferralPolicy,
    ReferralReward,
)

DEFAULTS: dict[str, Any] = {"enabled": False, "binding_days": 30, "purchase_window_days": 7, "reward_fen": 500,
                            "freeze_days": 7, "daily_cap_fen": 5000, "levels": 1, "level2_reward_fen": 0}
BOUNDS = {"binding_days": (1, 365), "purchase_window_days": (1, 90), "reward_fen": (0, 100_000),
          "freeze_days": (0, 90), "daily_cap_fen": (0, 10_000_000), "levels": (1, 2),
          "level2_reward_fen": (0, 100_000)}
PAYOUT_METHODS = ("offline", "wechat_transfer")
STATUSES = ("pending", "available", "cancelled", "reversed")

_codes = Code.__table__  # a unit's state and when a store sold it

R, B, A = ReferralReward.__table__, ReferralBinding.__table__, ReferralAccount.__table__


def referral_off() -> AppError:
    return AppError("推荐奖励活动未开启", code="referral_off", status=409)


# --- policy ------------------------------------------------------------------------------------------------

def describe_policy(policy: ReferralPolicy | None = None) -> dict[str, Any]:
    policy = policy or db.session.get(ReferralPolicy, 1)
    if policy is None:
        return dict(DEFAULTS, updated_at=None)
    return {**{k: getattr(policy, k) for k in DEFAULTS}, "updated_at": policy.updated_at}


def _live_policy(*, lock: bool = False) -> ReferralPolicy:
    stmt = sa.select(ReferralPolicy).where(ReferralPolicy.id == 1)
    policy = db.session.scalar(stmt.with_for_update() if lock else stmt)
    if policy is None or not policy.enabled:
        raise referral_off()
    return policy


def require_on() -> ReferralPolicy:
    """The policy in force, or `referral_off`."""
    return _live_policy()


def update_policy(principal: Principal, **values: Any) -> dict[str, Any]:
    """HQ sets the policy (fields left out keep their value); each value is checked against its bounds."""
    authorize_action(principal, "hq.write")
    problems: dict[str, list[str]] = {}
    for name, (low, high) in BOUNDS.items():
        value = values.get(name)
        if value is not None and (type(value) is not int or not low <= value <= high):
            problems[name] = [f"要在 {low} 到 {high} 之间"]
    if problems:
        raise ValidationFailed("推荐奖励规则填写有误", code="referral_policy_invalid", details={"fields": problems})
    with transaction():
        policy = db.session.scalar(sa.select(ReferralPolicy).where(ReferralPolicy.id == 1).with_for_update())
        if policy is None:
            policy = ReferralPolicy(id=1, **DEFAULTS)
            db.session.add(policy)
        for name in DEFAULTS:
            if values.get(name) is not None:
                setattr(policy, name, values[name])
        if policy.levels == 2 and not policy.level2_reward_fen:
            raise ValidationFailed("两级奖励要填写第二级的奖励金额", code="referral_policy_invalid",
                                   details={"fields": {"level2_reward_fen": ["两级时要大于 0"]}})
        policy.updated_by_id, policy.updated_at = principal.user_id, now_utc()
        db.session.flush()
        return describe_policy(policy)


# --- verifications and links -------------------------------------------------------------------------------

def record_verification(user_id: int, code_id: int, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """A consumer's genuine check of a unit in the mini-program: record it (once per consumer and unit) and, when
    the policy is on, reward their referrers. Answers the rewards it wrote (amounts and levels only)."""
    now = now or now_utc()
    with transaction():
        t = ConsumerVerification.__table__
        db.session.execute(dialect_insert()(t).values(user_id=user_id, code_id=code_id, verified_at=now)
                           .on_conflict_do_nothing(index_elements=[t.c.user_id, t.c.code_id]))
        policy = db.session.get(ReferralPolicy, 1)
        if policy is None or not policy.enabled:
            return []
        return _reward(policy, user_id, code_id, now)


def create_link(principal: Principal) -> dict[str, Any]:
    """The caller's share link (made once; asking again answers the same)."""
    authorize_action(principal, "referral.use")
    with transaction():
        require_on()
        verified = db.session.scalar(sa.select(ConsumerVerification.id)
                                     .where(ConsumerVerification.user_id == principal.user_id).limit(1))
        if verified is None:
            raise Conflict("先在小程序里查验一件正品，才能分享推荐链接", code="verify_first")
        t = ReferralLink.__table__
        db.session.execute(dialect_insert()(t).values(token=secrets.token_urlsafe(16)[:22],
                                                      user_id=principal.user_id, created_at=now_utc())
                           .on_conflict_do_nothing(index_elements=[t.c.user_id]))
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.user_id == principal.user_id))
        return {"link": link.token, "path": f"pages/referral/bind?link={link.token}", "created_at": link.created_at}


def _live_referrer(consumer_id: int, now: datetime) -> int | None:
    return db.session.scalar(sa.select(B.c.referrer_id).where(B.c.consumer_id == consumer_id, B.c.expires_at > now))


def bind(principal: Principal, token: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Bind the caller to the consumer whose link they opened: first touch wins, never oneself, never a loop."""
    authorize_action(principal, "referral.use")
    me = principal.user_id
    with transaction():
        now = now or now_utc()
        policy = _live_policy(lock=True)  # bindings one at a time (PostgreSQL), so two cannot close a loop
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.token == token[:32]))
        if link is None:
            raise NotFound("找不到这个推荐链接", code="referral_link_not_found")
        referrer = link.user_id
        if referrer == me:
            raise Conflict("不能绑定自己的推荐链接", code="self_referral")
        current = db.session.execute(sa.select(B).where(B.c.consumer_id == me)).first()
        if current is not None and current.expires_at > now:
            return {"status": "already_bound", "bound_at": current.bound_at, "expires_at": current.expires_at,
                    "mine": current.referrer_id == referrer}
        seen, up = set(), referrer
        while up is not None and up not in seen:  # the whole live chain above the referrer
            if up == me:
                raise Conflict("不能互相推荐（会形成循环）", code="referral_loop")
            seen.add(up)
            up = _live_referrer(up, now)
        expires = now + timedelta(days=policy.binding_days)
        values = {"referrer_id": referrer, "link_id": link.id, "bound_at": now, "expires_at": expires}
        if current is not None:
            done = db.session.execute(sa.update(B).where(B.c.consumer_id == me, B.c.expires_at <= now)
                                      .values(**values)).rowcount
        else:
            done = db.session.execute(dialect_insert()(B).values(consumer_id=me, **values)
                                      .on_conflict_do_nothing(index_elements=[B.c.consumer_id])
                                      .returning(B.c.id)).first() is not None
        if not done:
            raise Conflict("刚刚已经绑定过了，请刷新", code="already_bound")
        return {"status": "bound", "bound_at": now, "expires_at": expires, "mine": True}


# --- rewards -----------------------------------------------------------------------------------------------

def _reward(policy: ReferralPolicy, consumer_id: int, code_id: int, now: datetime) -> list[dict[str, Any]]:
    code = db.session.execute(sa.select(_codes.c.state, _codes.c.sold_at).where(_codes.c.id == code_id)).first()
    window_start = now - timedelta(days=policy.purchase_window_days)
    if code is None or code.state != "sold" or code.sold_at is None or code.sold_at < window_start:
        return []
    written = []
    first = _live_referrer(consumer_id, now)
    if first is None:
        return []
    if policy.reward_fen > 0:
        written.append(_earn(policy, 1, first, consumer_id, code_id, policy.reward_fen, now))
    if policy.levels == 2 and policy.level2_reward_fen > 0:
        second = _live_referrer(first, now)
        if second is not None and second != consumer_id:
            written.append(_earn(policy, 2, second, consumer_id, code_id, policy.level2_reward_fen, now))
    return [w for w in written if w is not None]


def _ensure_account(user_id: int) -> None:
    db.session.execute(dialect_insert()(A).values(user_id=user_id, pending_fen=0, available_fen=0, paid_fen=0)
                       .on_conflict_do_nothing(index_elements=[A.c.user_id]))


def _ledger(user_id: int, kind: str, now: datetime, *, reward_id: int | None = None, payout_id: int | None = None,
            pending: int = 0, available: int = 0, unrecovered: int = 0) -> None:
    db.session.add(ReferralLedger(user_id=user_id, kind=kind, reward_id=reward_id, payout_id=payout_id,
                                  pending_delta_fen=pending, available_delta_fen=available,
                                  unrecovered_fen=unrecovered, created_at=now))


def _within_cap(referrer_id: int, day: date, amount: int, cap: int) -> bool:
    """Count `amount` against the referrer's day, unless it would pass the cap: one compare-and-set."""
    t = ReferralDailyTotal.__table__
    db.session.execute(dialect_insert()(t).values(referrer_id=referrer_id, day=day, earned_fen=0)
                       .on_conflict_do_nothing(index_elements=[t.c.referrer_id, t.c.day]))
    done = db.session.execute(sa.update(t).where(t.c.referrer_id == referrer_id, t.c.day == day,
                                                 t.c.earned_fen + amount <= cap)
                              .values(earned_fen=t.c.earned_fen + amount))
    return done.rowcount == 1


def _earn(policy: ReferralPolicy, level: int, referrer_id: int, consumer_id: int, code_id: int, amount: int,
          now: datetime) -> dict[str, Any] | None:
    rid = db.session.execute(
        dialect_insert()(R).values(code_id=code_id, level=level, referrer_id=referrer_id, consumer_id=consumer_id,
                                   amount_fen=amount, status="pending", created_at=now,
                                   frozen_until=now + timedelta(days=policy.freeze_days))
        .on_conflict_do_nothing(index_elements=[R.c.code_id, R.c.level]).returning(R.c.id)).scalar()
    if rid is None:
        return None  # this unit has already earned its reward at this level
    if not _within_cap(referrer_id, business_day(now), amount, policy.daily_cap_fen):
        db.session.execute(sa.update(R).where(R.c.id == rid)
                           .values(status="cancelled", cancel_reason="daily_cap", settled_at=now))
        return {"id": rid, "level": level, "amount_fen": amount, "status": "cancelled"}
    _ensure_account(referrer_id)
    db.session.execute(sa.update(A).where(A.c.user_id == referrer_id).values(pending_fen=A.c.pending_fen + amount))
    _ledger(referrer_id, "earned", now, reward_id=rid, pending=amount)
    return {"id": rid, "level": level, "amount_fen": amount, "status": "pending"}


def _cancel_pending(reward: sa.Row, reason: str, now: datetime) -> bool:
    done = db.session.execute(sa.update(R).where(R.c.id == reward.id, R.c.status == "pending")
                              .values(status="cancelled", cancel_reason=reason, settled_at=now)).rowcount
    if done:
        db.session.execute(sa.update(A).where(A.c.user_id == reward.referrer_id)
                           .values(pending_fen=A.c.pending_fen - reward.amount_fen))
        _ledger(reward.referrer_id, "cancelled", now, reward_id=reward.id, pending=-reward.amount_fen)
    return bool(done)


def _reverse_available(reward: sa.Row, now: datetime) -> bool:
    done = db.session.execute(sa.update(R).where(R.c.id == reward.id, R.c.status == "available")
                              .values(status="reversed", cancel_reason="returned", settled_at=now)).rowcount
    if not done:
        return False
    stmt = sa.select(A.c.available_fen).where(A.c.user_id == reward.referrer_id)
    available = db.session.scalar(stmt.with_for_update() if on_postgres() else stmt) or 0
    take = min(available, reward.amount_fen)
    db.session.execute(sa.update(A).where(A.c.user_id == reward.referrer_id)
                       .values(available_fen=A.c.available_fen - take))
    _ledger(reward.referrer_id, "reversed", now, reward_id=reward.id, available=-take,
            unrecovered=reward.amount_fen - take)
    return True


def sale_reversed(code_ids: list[int], *, now: datetime | None = None) -> int:
    """A store's sale of these units was returned or undone (called in the scan's transaction): their pending
    rewards are cancelled, their available ones reversed (never below a zero balance)."""
    require_transaction("sale_reversed")
    if not code_ids:
        return 0
    now = now or now_utc()
    rows = db.session.execute(sa.select(R.c.id, R.c.referrer_id, R.c.amount_fen, R.c.status)
                              .where(R.c.code_id.in_(code_ids), R.c.status.in_(("pending", "available")))
                              .order_by(R.c.id).with_for_update(skip_locked=False)).all()
    changed = 0
    for row in rows:
        changed += _cancel_pending(row, "returned", now) if row.status == "pending" else _reverse_available(row, now)
    return changed


def release_due(now: datetime | None = None, *, batch: int = 500) -> int:
    """Scheduled: pending rewards past `frozen_until` become available (a unit no longer sold is cancelled)."""
    now = now or now_utc()
    released = 0
    while True:
        with transaction():
            rows = db.session.execute(
                sa.select(R.c.id, R.c.referrer_id, R.c.amount_fen, _codes.c.state)
                .join(_codes, _codes.c.id == R.c.code_id)
                .where(R.c.status == "pending", R.c.frozen_until <= now).order_by(R.c.id).limit(batch)).all()
            for row in rows:
                if row.state != "sold":
                    _cancel_pending(row, "returned", now)
                    continue
                done = db.session.execute(sa.update(R).where(R.c.id == row.id, R.c.status == "pending")
                                          .values(status="available", settled_at=now)).rowcount
                if done:
                    db.session.execute(sa.update(A).where(A.c.user_id == row.referrer_id).values(
                        pending_fen=A.c.pending_fen - row.amount_fen,
                        available_fen=A.c.available_fen + row.amount_fen))
                    _ledger(row.referrer_id, "released", now, reward_id=row.id, pending=-row.amount_fen,
                            available=row.amount_fen)
                    released += 1
        if len(rows) < batch:
            return released


# --- payouts -----------------------------------------------------------------------------------------------

def record_payout(principal: Principal, *, user_id: int, amount_fen: int, method: str, reference: str,
                  note: str = "") -> dict[str, Any]:
    """HQ records a payout it made; refused (`insufficient_balance`) beyond the available balance."""
    authorize_action(principal, "hq.write")
    reference = (reference or "").strip()
    if method not in PAYOUT_METHODS or not reference or amount_fen <= 0:
        raise ValidationFailed("付款记录填写有误", code="payout_invalid")
    now = now_utc()
    with transaction():
        done = db.session.execute(sa.update(A).where(A.c.user_id == user_id, A.c.available_fen >= amount_fen)
                                  .values(available_fen=A.c.available_fen - amount_fen,
                                          paid_fen=A.c.paid_fen + amount_fen)).rowcount
        if not done:
            raise Conflict("可提现余额不足", code="insufficient_balance")
        if db.session.scalar(sa.select(ReferralPayout.id).where(ReferralPayout.method == method,
                                                                ReferralPayout.reference == reference)):
            raise Conflict("这笔付款已经登记过了", code="payout_duplicate")
        payout = ReferralPayout(user_id=user_id, amount_fen=amount_fen, method=method, reference=reference,
                                note=(note or "")[:200], recorded_by_id=principal.user_id, created_at=now)
        db.session.add(payout)
        try:
            db.session.flush()
        except sa.exc.IntegrityError:  # the same reference recorded at this very moment by someone else
            raise Conflict("这笔付款已经登记过了", code="payout_duplicate") from None
        _ledger(user_id, "paid_out", now, payout_id=payout.id, available=-amount_fen)
        return {"id": payout.id, "user_id": user_id, "amount_fen": amount_fen, "method": method,
                "reference": reference, "created_at": now}


def day_bounds(day_from: date | None, day_to: date | None) -> tuple[datetime | None, datetime | None]:
    return (business_day_start(day_from) if day_from else None,
            business_day_start(day_to + timedelta(days=1)) if day_to else None)
