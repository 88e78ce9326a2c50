"""Referral rewards: HQ's policy, the consumers' verifications, share links, bindings, rewards, the per-referrer
account with its ledger, the daily counter and payouts."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db


class ReferralPolicy(db.Model):
    """HQ's one row (id 1); absent means off."""

    __tablename__ = "referral_policies"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    binding_days: Mapped[int] = mapped_column(sa.Integer)
    purchase_window_days: Mapped[int] = mapped_column(sa.Integer)
    reward_fen: Mapped[int] = mapped_column(sa.Integer)
    freeze_days: Mapped[int] = mapped_column(sa.Integer)
    daily_cap_fen: Mapped[int] = mapped_column(sa.Integer)
    levels: Mapped[int] = mapped_column(sa.SmallInteger)
    level2_reward_fen: Mapped[int] = mapped_column(sa.Integer)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class ConsumerVerification(db.Model):
    """A logged-in consumer's genuine check of a unit in the mini-program (once per consumer and unit)."""

    __tablename__ = "consumer_verifications"
    __table_args__ = (sa.UniqueConstraint("user_id", "code_id", name="uq_consumer_verifications_user_id_code_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    code_id: Mapped[int] = mapped_column(sa.ForeignKey("codes.id"), index=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralLink(db.Model):
    """A consumer's share link (one per consumer; asking again answers the same)."""

    __tablename__ = "referral_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(32), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralBinding(db.Model):
    """A consumer bound to the referrer whose link they opened first, until `expires_at` (one row per consumer;
    after it expires, the next link opened binds afresh)."""

    __tablename__ = "referral_bindings"
    __table_args__ = (sa.CheckConstraint("consumer_id <> referrer_id", name="not_self"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    referrer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    link_id: Mapped[int] = mapped_column(sa.ForeignKey("referral_links.id"))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralReward(db.Model):
    """One reward for one unit at one level (a unique index: once per unit and level).

    status: `pending` (frozen until `frozen_until`), `available`, `cancelled` (a return before it was available, or
    over the referrer's daily cap: `cancel_reason`), `reversed` (a return after it was available).
    """

    __tablename__ = "referral_rewards"
    __table_args__ = (
        sa.UniqueConstraint("code_id", "level", name="uq_referral_rewards_code_id_level"),
        sa.CheckConstraint("level IN (1, 2)", name="level_1_or_2"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        sa.Index("ix_referral_rewards_status_frozen_until", "status", "frozen_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_id: Mapped[int] = mapped_column(sa.ForeignKey("codes.id"))
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    referrer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    consumer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    amount_fen: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16))
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(32))
    frozen_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReferralAccount(db.Model):
    """A referrer's balances (fen): pending (frozen), available (may be paid out), paid (paid out). None below 0."""

    __tablename__ = "referral_accounts"
    __table_args__ = (
        sa.CheckConstraint("pending_fen >= 0 AND available_fen >= 0 AND paid_fen >= 0", name="not_negative"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    pending_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    available_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    paid_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReferralLedger(db.Model):
    """Every change of a referrer's balances: earned (+pending), released (pending→available), cancelled
    (-pending), reversed (-available, at most what is left; `unrecovered_fen` is what had been paid out), paid_out
    (-available)."""

    __tablename__ = "referral_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    reward_id: Mapped[int | None] = mapped_column(sa.ForeignKey("referral_rewards.id"), index=True)
    payout_id: Mapped[int | None] = mapped_column(sa.ForeignKey("referral_payouts.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    pending_delta_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    available_delta_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    unrecovered_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralDailyTotal(db.Model):
    """What a referrer earned on one business day (Asia/Shanghai): the daily cap is a compare-and-set on it."""

    __tablename__ = "referral_daily_totals"

    referrer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    earned_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReferralPayout(db.Model):
    """A payout HQ made (offline, or a WeChat Pay transfer with its reference) and recorded here."""

    __tablename__ = "referral_payouts"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint("method IN ('offline', 'wechat_transfer')", name="method_known"),
        sa.UniqueConstraint("method", "reference", name="uq_referral_payouts_method_reference"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    method: Mapped[str] = mapped_column(sa.String(16))
    reference: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
