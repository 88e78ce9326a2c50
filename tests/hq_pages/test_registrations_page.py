"""The console's registrations page: conflicts first, then protections ending soonest; reassignment and the rules
through CSRF-guarded forms that call the same services as the HQ API."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.channel.models import Partner
from app.channel.registration_models import Registration
from app.extensions import db
from tests.conftest import mp_login

SHOP = {"name": "控制台测试店", "phone": "13977770001", "region_code": "330106", "industry": "convenience"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def console(client, foundation_demo):
    html = client.get("/hq/login").get_data(as_text=True)
    resp = client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": _csrf(html)})
    assert resp.status_code == 302
    return client


@pytest.fixture()
def conflict(client, foundation_demo):
    d1, d2 = mp_login(client, "demo_distributor"), mp_login(client, "demo_distributor_2")
    held = client.post("/api/mp/v1/registrations", json={"request_id": "p1", **SHOP}, headers=d1).get_json()
    client.post("/api/mp/v1/registrations", json={"request_id": "p2", **SHOP, "name": "别家店",
                                                  "phone": "13977770002"}, headers=d1)
    refused = client.post("/api/mp/v1/registrations", json={"request_id": "p3", **SHOP}, headers=d2)
    assert refused.status_code == 409
    return held


def test_page_shows_conflicts_first_with_both_partners(console, conflict):
    html = console.get("/hq/registrations").get_data(as_text=True)
    assert "客户报备" in html
    sections = [html.index(t) for t in ("报备冲突", "保护中", "休眠门店", "最近结束的报备", "报备规则")]
    assert sections == sorted(sections)
    conflicts = html[sections[0]:sections[1]]
    assert "深圳南山分销" in conflicts and "杭州西湖分销" in conflicts and "控制台测试店" in conflicts
    assert "手机号" in conflicts
    assert " style=" not in html and "onclick" not in html.lower() and "<script>" not in html


def test_reassign_form_needs_csrf_and_a_reason(console, conflict):
    html = console.get("/hq/registrations").get_data(as_text=True)
    d2 = db.session.scalar(sa.select(Partner.id).where(Partner.code == "D2"))
    db.session.remove()
    url = f"/hq/registrations/{conflict['id']}/reassign"
    assert console.post(url, data={"partner_id": d2, "reason": "x"}).status_code == 400  # no CSRF token
    resp = console.post(url, data={"partner_id": d2, "reason": "", "csrf": _csrf(html)}, follow_redirects=True)
    assert "请写明改派原因" in resp.get_data(as_text=True)
    assert db.session.get(Registration, conflict["id"]).status == "protected"
    resp = console.post(url, data={"partner_id": d2, "reason": "D1 放弃跟进", "csrf": _csrf(html)},
                        follow_redirects=True)
    assert "已改派" in resp.get_data(as_text=True)
    db.session.expire_all()
    old = db.session.get(Registration, conflict["id"])
    assert old.status == "reassigned" and old.events[-1].reason == "D1 放弃跟进"
    again = console.post(url, data={"partner_id": d2, "reason": "再来", "csrf": _csrf(html)}, follow_redirects=True)
    assert "不能改派" in again.get_data(as_text=True)


def test_rules_form(console, foundation_demo):
    html = console.get("/hq/registrations").get_data(as_text=True)
    form = {"protection_days": "20", "max_extensions": "2", "extension_days": "10", "default_quota": "5",
            "reminder_days": "3", "dormancy_days": "60", "quota_by_level": "gold=100，standard=8", "csrf": _csrf(html)}
    resp = console.post("/hq/registration-policy", data=form, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "报备规则已保存" in page and 'value="20"' in page and "gold=100, standard=8" in page
    bad = console.post("/hq/registration-policy", data={**form, "protection_days": "0"}, follow_redirects=True)
    assert "报备规则填写有误" in bad.get_data(as_text=True)
    bad = console.post("/hq/registration-policy", data={**form, "quota_by_level": "gold"}, follow_redirects=True)
    assert "级别=名额" in bad.get_data(as_text=True)
    assert console.get("/api/hq/v1/registration-policy").status_code == 401  # the API wants its bearer token
