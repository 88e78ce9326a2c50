"""The console's referral rewards page: the policy form switches it on, the ledger shows rewards with totals and
filters, a payout is recorded through a CSRF-guarded form and never beyond the available balance."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.referrals.services import release_due
from tests.referrals.helpers import account, bind, consumer, sharer, sold_unit, verify

FORM = {"binding_days": "30", "purchase_window_days": "7", "reward_fen": "600", "freeze_days": "7",
        "daily_cap_fen": "5000", "levels": "1", "level2_reward_fen": "0"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def console(client, demo):
    html = client.get("/hq/login").get_data(as_text=True)
    resp = client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": _csrf(html)})
    assert resp.status_code == 302
    return client


def test_the_page_switches_it_on_lists_rewards_and_records_a_payout(console, owner):
    html = console.get("/hq/referrals").get_data(as_text=True)
    assert "推荐奖励" in html and "未开启" in html
    csrf = _csrf(html)
    resp = console.post("/hq/referral-policy", data={**FORM, "enabled": "1", "levels": "3", "csrf": csrf},
                        follow_redirects=True)
    assert "推荐奖励规则填写有误" in resp.get_data(as_text=True)
    resp = console.post("/hq/referral-policy", data={**FORM, "enabled": "1", "csrf": csrf}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "活动已开启" in page and "已开启" in page
    _a, a_id, token = sharer(console, "shopper_a")
    b, _ = consumer(console, "shopper_b")
    bind(console, b, token)
    verify(console, b, sold_unit(console, owner))
    page = console.get("/hq/referrals?status=pending").get_data(as_text=True)
    assert "冻结中" in page and "¥6.00" in page
    assert "¥6.00" not in console.get("/hq/referrals?status=available&level=1").get_data(as_text=True)
    console.get("/hq/referrals?from=bad&to=2026-99-99&level=x&page=0")  # bad filters are ignored, not a 500
    resp = console.post("/hq/referral-payouts", data={"user_id": str(a_id), "amount_fen": "600",
                                                      "method": "offline", "reference": "收据001", "csrf": csrf},
                        follow_redirects=True)
    assert "可提现余额不足" in resp.get_data(as_text=True)  # still frozen
    release_due(datetime.now(UTC) + timedelta(days=8))
    resp = console.post("/hq/referral-payouts", data={"user_id": str(a_id), "amount_fen": "600",
                                                      "method": "offline", "reference": "收据001", "csrf": csrf},
                        follow_redirects=True)
    assert "付款已登记" in resp.get_data(as_text=True) and account(a_id) == (0, 0, 600)
    assert console.post("/hq/referral-payouts", data={"user_id": str(a_id)}).status_code == 400  # no CSRF
