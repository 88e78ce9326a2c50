"""The console's targets page: the month's targets beside actuals; setting one needs the CSRF token; a refusal
shows in Chinese beside the form; the export link gives the same figures."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
import sqlalchemy as sa

from app.analytics.target_models import PartnerTarget
from app.channel.models import Partner
from app.extensions import db


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def console(client, demo):
    html = client.get("/hq/login").get_data(as_text=True)
    resp = client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": _csrf(html)})
    assert resp.status_code == 302
    return client


def test_set_a_target_and_see_it_with_its_actual(console):
    d5 = db.session.scalar(sa.select(Partner.id).where(Partner.code == "D5"))
    html = console.get("/hq/targets?period=2031-07").get_data(as_text=True)
    assert "目标与达成" in html
    form = {"partner_id": str(d5), "period": "2031-07", "metric": "active_stores", "value": "4"}
    assert console.post("/hq/targets", data=form).status_code in (400, 403)  # no CSRF token
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PartnerTarget)
                             .where(PartnerTarget.period == "2031-07")) == 0
    resp = console.post("/hq/targets", data=form | {"csrf": _csrf(html)}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "第 1 版" in page and "动销门店数" in page
    link = re.search(r'href="([^"]*targets\?period=2031-07&amp;format=xlsx)"', page).group(1).replace("&amp;", "&")
    sheet = openpyxl.load_workbook(io.BytesIO(console.get(link).data)).active
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(r[3], r[4], r[5], r[6]) for r in rows] == [("动销门店数", None, 4, 0)]  # no SKU group: all SKUs


def test_a_bad_value_is_refused_in_chinese_and_changes_nothing(console):
    d5 = db.session.scalar(sa.select(Partner.id).where(Partner.code == "D5"))
    html = console.get("/hq/targets").get_data(as_text=True)
    resp = console.post("/hq/targets", data={"partner_id": str(d5), "period": "2100-01", "metric": "new_stores",
                                             "value": "3", "csrf": _csrf(html)})
    assert resp.status_code == 422 and "月份要写成" in resp.get_data(as_text=True)
    resp = console.post("/hq/targets", data={"partner_id": str(d5), "period": "2031-08", "metric": "new_stores",
                                             "value": "-3", "csrf": _csrf(html)})
    assert resp.status_code == 422 and "不小于 0" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PartnerTarget)
                             .where(PartnerTarget.period.in_(("2100-01", "2031-08")))) == 0
