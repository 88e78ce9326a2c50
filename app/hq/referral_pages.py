"""The console's referral rewards page (推荐奖励): HQ's policy (the on switch), the rewards ledger with filters
and totals, and recording a payout. The same use cases as the HQ API (`app.referrals`), with the console's caller;
a refusal comes back as a message, nothing changed."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from app.errors import AppError
from app.referrals import queries, services

STATUS_NAMES = {"pending": "冻结中", "available": "可提现", "cancelled": "已取消", "reversed": "已冲回"}
REASON_NAMES = {"returned": "退货", "daily_cap": "超过每日上限"}
POLICY_FIELDS = (("binding_days", "绑定有效天数"), ("purchase_window_days", "购买认定天数（门店售出后）"),
                 ("reward_fen", "一级奖励（分/件）"), ("freeze_days", "冻结天数"),
                 ("daily_cap_fen", "每人每日上限（分）"), ("levels", "奖励级数（1 或 2）"),
                 ("level2_reward_fen", "二级奖励（分/件）"))
METHOD_NAMES = {"offline": "线下付款", "wechat_transfer": "微信转账"}
PAGE_SIZE = 50


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _whole(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def referrals_page():
    """The policy, then the ledger (newest first) filtered by status, level, referrer and business days."""
    args = request.args
    status = args.get("status") if args.get("status") in STATUS_NAMES else None
    level = _whole(args.get("level")) if args.get("level") in ("1", "2") else None
    referrer_id = _whole(args.get("referrer_id")) or None
    day_from, day_to = _day(args.get("from")), _day(args.get("to"))
    page = _whole(args.get("page")) or 1
    ledger = queries.hq_rewards(g.principal, status=status, level=level, referrer_id=referrer_id,
                                day_from=day_from, day_to=day_to, page=min(page, 100_000), page_size=PAGE_SIZE)
    filters = {"status": status or "", "level": level or "", "referrer_id": referrer_id or "",
               "from": day_from.isoformat() if day_from else "", "to": day_to.isoformat() if day_to else ""}
    pages = max(1, -(-ledger["total"] // PAGE_SIZE))
    return render_template("hq/referrals.html", policy=services.describe_policy(), policy_fields=POLICY_FIELDS,
                           ledger=ledger, filters=filters, page=page, pages=pages, status_names=STATUS_NAMES,
                           reason_names=REASON_NAMES, method_names=METHOD_NAMES)


def save_policy():
    values: dict[str, Any] = {"enabled": request.form.get("enabled") == "1"}
    for name, label in POLICY_FIELDS:
        value = _whole(request.form.get(name))
        if value is None:
            flash(f"{label}要是不小于 0 的整数", "error")
            return redirect(url_for("hq_pages.referrals_page"))
        values[name] = value
    try:
        services.update_policy(g.principal, **values)
        flash("推荐奖励规则已保存" + ("，活动已开启" if values["enabled"] else "，活动已关闭"), "ok")
    except AppError as err:
        fields_ = (err.details or {}).get("fields") or {}
        names = dict(POLICY_FIELDS)
        flash(err.message + "".join(f"；{names.get(k, k)}{'、'.join(v)}" for k, v in fields_.items()), "error")
    return redirect(url_for("hq_pages.referrals_page"))


def record_payout():
    form = request.form
    user_id, amount = _whole(form.get("user_id")), _whole(form.get("amount_fen"))
    if not user_id or not amount:
        flash("请填写推荐人编号和金额（分）", "error")
    else:
        try:
            services.record_payout(g.principal, user_id=user_id, amount_fen=amount, method=form.get("method", ""),
                                   reference=form.get("reference", "")[:64], note=form.get("note", "")[:200])
            flash("付款已登记", "ok")
        except AppError as err:
            flash(err.message, "error")
    return redirect(url_for("hq_pages.referrals_page"))


def add_routes(bp: Blueprint, login_required) -> None:
    """Mount these pages on the console's blueprint."""
    bp.add_url_rule("/referrals", "referrals_page", login_required(referrals_page), methods=["GET"])
    bp.add_url_rule("/referral-policy", "referral_policy", login_required(save_policy), methods=["POST"])
    bp.add_url_rule("/referral-payouts", "referral_payout", login_required(record_payout), methods=["POST"])
