"""The console's assessment pages: the month's list, closing with a typed confirmation (and the CSRF token), the
statement explaining each figure, recompute with a reason; Chinese throughout."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.assessment.models import PeriodClose, RebateEntry
from app.channel.models import Partner
from app.extensions import db

SCHEME = {"period": "2024-05", "weights": {"attainment": 40, "rating": 30, "training": 30},
          "tiers": [{"name": "铜牌", "min_score": 0, "rebate_bp": 50},
                    {"name": "金牌", "min_score": 90, "rebate_bp": 300}],
          "base": "sell_in"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def console(client, demo, admin):
    assert client.put("/api/hq/v1/assessment-scheme", json=SCHEME, headers=admin).status_code == 200
    html = client.get("/hq/login").get_data(as_text=True)
    resp = client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": _csrf(html)})
    assert resp.status_code == 302
    return client


def test_close_needs_the_typed_month_then_lists_partners_and_explains_a_statement(console):
    html = console.get("/hq/assessments?period=2024-05").get_data(as_text=True)
    assert "考核与返点" in html and "还没有结算" in html and "结算 2024-05" in html
    csrf = _csrf(html)
    assert console.post("/hq/assessments/2024-05/close", data={"confirm": "2024-05"}).status_code in (400, 403)
    page = console.post("/hq/assessments/2024-05/close", data={"confirm": "", "csrf": csrf},
                        follow_redirects=True).get_data(as_text=True)
    assert "请在确认框里输入 2024-05" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PeriodClose)
                             .where(PeriodClose.period == "2024-05")) == 0
    page = console.post("/hq/assessments/2024-05/close", data={"confirm": "2024-05", "csrf": csrf},
                        follow_redirects=True).get_data(as_text=True)
    assert "2024-05 已结算" in page and "华东区域代理" in page and "首次评定" in page
    d1 = db.session.scalar(sa.select(Partner.id).where(Partner.code == "D1"))
    st = console.get(f"/hq/assessments/2024-05/partners/{d1}")
    text = st.get_data(as_text=True)
    assert st.status_code == 200 and "返点结算单" in text and "每一项怎么算的" in text and "四舍五入到分" in text
    page = console.post("/hq/assessments/2024-05/recompute", data={"reason": "核对", "csrf": csrf},
                        follow_redirects=True).get_data(as_text=True)
    assert "没有变化" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RebateEntry)
                             .where(RebateEntry.kind == "adjust", RebateEntry.period == "2024-05")) == 0
    again = console.post("/hq/assessments/2024-05/close", data={"confirm": "2024-05", "csrf": csrf},
                         follow_redirects=True).get_data(as_text=True)
    assert "已经结算过了" in again


def test_a_bad_month_is_a_page_in_chinese_not_a_500(console):
    resp = console.get("/hq/assessments?period=2024-13")
    assert resp.status_code == 422 and "YYYY-MM" in resp.get_data(as_text=True)
    assert console.get("/hq/assessments/2024-05/partners/999999").status_code == 404
