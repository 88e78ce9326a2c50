"""The console's assessment pages (CHANNEL.md §8): a month's partners with score, tier and rebate; a partner's
statement explaining each figure down to its inputs; closing the month (HQ admins, with a confirmation typed in)
and recomputing it with a reason. Over the same domain functions as the HQ API (`app.assessment`)."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from app.analytics.targets import METRIC_NAMES, check_period
from app.assessment import queries, services
from app.core.clock import BUSINESS_TZ, now_utc
from app.errors import AppError

PAGE_SIZE = 50


def _last_month() -> str:
    today = now_utc().astimezone(BUSINESS_TZ)
    return services.previous_period(today.strftime("%Y-%m"))


def _period() -> str:
    period = request.args.get("period", "").strip() or _last_month()
    check_period(period)
    return period


def assessments_page():
    """A month's assessed partners (score, tier, movement, rebate) and, before the close, its scheme."""
    period = _period()
    listing = queries.hq_assessments(g.principal, period)
    try:
        scheme = queries.scheme_of(g.principal, period)
    except AppError:
        scheme = None
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1
    items = listing["items"]
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(page, pages)
    return render_template("hq/assessments.html", period=period, listing=listing, scheme=scheme,
                           items=items[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], page=page, pages=pages,
                           can_write=g.principal.can("hq.write"))


def statement_page(period: str, partner_id: int):
    """One partner's statement: each figure, how it was reached, its inputs, the rebate ledger, tier history."""
    check_period(period)
    st = queries.statement(g.principal, partner_id, period)
    return render_template("hq/rebate_statement.html", period=period, st=st, metrics=METRIC_NAMES)


def close_page(period: str):
    """Close the month: the confirmation box must hold the month itself (so a stray click closes nothing)."""
    check_period(period)
    if request.form.get("confirm", "").strip() != period:
        flash(f"请在确认框里输入 {period} 再结算", "error")
        return redirect(url_for("hq_pages.assessments", period=period))
    try:
        close = services.close_period(g.principal, period)
        flash(f"{period} 已结算：{close.partners} 个伙伴，返点合计 {close.rebate_fen} 分", "ok")
    except AppError as err:
        flash(err.message, "error")
    return redirect(url_for("hq_pages.assessments", period=period))


def recompute_page(period: str):
    check_period(period)
    try:
        out = services.recompute_period(g.principal, period, request.form.get("reason", ""))
        flash(f"已重算：{out['changed']} 个伙伴有变化，调整 {out['difference_fen']} 分（第 {out['version']} 版）"
              if out["changed"] else "已重算：没有变化，未写入任何调整", "ok")
    except AppError as err:
        flash(err.message, "error")
    return redirect(url_for("hq_pages.assessments", period=period))


def add_routes(bp: Blueprint, login_required) -> None:
    """Mount these pages on the console's blueprint."""
    bp.add_url_rule("/assessments", "assessments", login_required(assessments_page), methods=["GET"])
    bp.add_url_rule("/assessments/<period>/partners/<int:partner_id>", "rebate_statement",
                    login_required(statement_page), methods=["GET"])
    bp.add_url_rule("/assessments/<period>/close", "close_period", login_required(close_page), methods=["POST"])
    bp.add_url_rule("/assessments/<period>/recompute", "recompute_period", login_required(recompute_page),
                    methods=["POST"])
