"""The console's channel pages through the test client: partners as a tree, the store finder (search, region,
distributor and industry filters, server-side paging in a stable order), a store's page (stock and scans paged,
sales by SKU, its people), and invites (create, QR, revoke). Scope: an HQ admin writes, an analyst reads only, a
warehouse operator is refused; every write needs the form's CSRF token; bad input gets the console's Chinese
page with its status and changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from app.accounts.models import Membership
from app.channel.models import Invite, Partner, Store
from app.channel.services import redeem_invite
from app.core.clock import now_utc
from app.core.tx import transaction
from app.extensions import db
from app.hq import channel_pages
from tests.hq_pages.console_forms import HUGE, field_error, login


def _store(code: str) -> Store:
    return db.session.scalar(sa.select(Store).where(Store.code == code))


def _partner(code: str) -> Partner:
    return db.session.scalar(sa.select(Partner).where(Partner.code == code))


def _invites(store_id: int) -> list[Invite]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Invite).where(Invite.store_id == store_id).order_by(Invite.id)))


def _store_codes(html: str) -> list[str]:
    table = html.split('<table class="stores">', 1)[1].split("</table>", 1)[0] if 'class="stores"' in html else ""
    return re.findall(r'<td class="mono">(S\d+)</td>', table)


@pytest.fixture()
def console(client, demo):
    client.csrf = login(client)
    return client


@pytest.fixture()
def analyst_console(client, demo):
    client.csrf = login(client, "analyst")
    return client


# --- partners -----------------------------------------------------------------------------------------------

def test_partners_read_as_a_tree_with_their_figures(console):
    hq, east, d1 = _partner("HQ"), _partner("A1"), _partner("D1")
    html = console.get("/hq/partners").get_data(as_text=True)
    # HQ first, then each agent followed by its distributors, each row naming its parent.
    order = re.findall(r'<tr data-id="(\d+)"', html)
    assert order[0] == str(hq.id) and order.index(str(east.id)) < order.index(str(d1.id))
    assert f'<tr data-id="{d1.id}" data-parent="{east.id}">' in html
    assert f'<tr data-id="{east.id}" data-parent="{hq.id}">' in html
    row = html.split(f'<tr data-id="{d1.id}"', 1)[1].split("</tr>", 1)[0]
    cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    d1_stores = db.session.scalar(sa.select(sa.func.count()).select_from(Store).where(Store.distributor_id == d1.id))
    assert cells[1] == "分销商" and cells[3] == "杭州市" and cells[4] == "1" and cells[5] == str(d1_stores)
    # An agent's stores are its distributors' stores.
    east_row = html.split(f'<tr data-id="{east.id}"', 1)[1].split("</tr>", 1)[0]
    east_cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", east_row, re.S)]
    assert int(east_cells[5]) > d1_stores
    assert 'class="tree-toggle"' in html and "channel.js" in html


def test_an_agents_and_hqs_sales_are_their_distributors_sum(console):
    html = console.get("/hq/partners").get_data(as_text=True)

    def last_30(code):
        row = html.split(f'<tr data-id="{_partner(code).id}"', 1)[1].split("</tr>", 1)[0]
        cell = re.findall(r'<td class="n">([^<]*)</td>', row)[-1]
        return int(cell.replace("¥", "").replace(",", "").replace(".", ""))

    assert last_30("A1") == last_30("D1") + last_30("D3") > 0
    assert last_30("HQ") == last_30("A1") + last_30("A2") + last_30("D5")


def test_a_partners_page_lists_its_stores_territories_staff_and_links(console):
    d1 = _partner("D1")
    html = console.get(f"/hq/partners/{d1.id}").get_data(as_text=True)
    assert "杭州西湖分销" in html and "老王便利店" in html and "杭州市" in html
    assert "/hq/targets" in html and "/hq/registrations" in html and "/hq/consumer-orders" in html
    assert f"/hq/orders?distributor_id={d1.id}" in html
    east = _partner("A1")
    html = console.get(f"/hq/partners/{east.id}").get_data(as_text=True)
    assert "下级伙伴" in html and "杭州西湖分销" in html and "宁波甬城分销" in html
    assert console.get("/hq/partners/999999").status_code == 404
    assert console.get(f"/hq/partners/{HUGE}").status_code == 404


# --- stores -------------------------------------------------------------------------------------------------

def test_stores_search_by_name_code_and_phone(console):
    s1 = _store("S1")
    assert _store_codes(console.get("/hq/stores?q=老王").get_data(as_text=True)) == ["S1"]
    assert "S1" in _store_codes(console.get(f"/hq/stores?q={s1.phone}").get_data(as_text=True))
    assert _store_codes(console.get("/hq/stores?q=S10").get_data(as_text=True)) in ([], ["S10"])
    # A LIKE wildcard typed is a character, not "anything".
    assert _store_codes(console.get("/hq/stores?q=%25").get_data(as_text=True)) == []
    assert "没有符合条件的门店" in console.get("/hq/stores?q=nothing-like-this").get_data(as_text=True)


def test_stores_filter_by_region_distributor_and_industry(console):
    all_codes = _store_codes(console.get("/hq/stores").get_data(as_text=True))
    hangzhou = {s.code for s in db.session.scalars(sa.select(Store).where(Store.city_code == "330100"))}
    zhejiang = {s.code for s in db.session.scalars(sa.select(Store).where(Store.province_code == "330000"))}
    assert hangzhou and hangzhou < zhejiang < set(all_codes)
    assert set(_store_codes(console.get("/hq/stores?region=330100").get_data(as_text=True))) == hangzhou
    assert set(_store_codes(console.get("/hq/stores?region=330000").get_data(as_text=True))) == zhejiang
    html = console.get("/hq/stores?region=330100").get_data(as_text=True)
    assert 'data-region-picker' in html and 'value="330000" selected' in html  # the picker shows the choice
    d2 = _partner("D2")
    served = {s.code for s in db.session.scalars(sa.select(Store).where(Store.distributor_id == d2.id))}
    assert set(_store_codes(console.get(f"/hq/stores?distributor_id={d2.id}").get_data(as_text=True))) == served
    s2 = _store("S2")
    s2.industry = "supermarket"
    db.session.commit()
    html = console.get("/hq/stores?industry=supermarket").get_data(as_text=True)
    assert _store_codes(html) == ["S2"] and ">超市</option>" in html
    assert "S2" not in _store_codes(console.get("/hq/stores?industry=convenience").get_data(as_text=True))


def test_stores_are_paged_on_the_server_in_a_stable_order(console, monkeypatch):
    monkeypatch.setattr(channel_pages, "STORE_PAGE_SIZE", 3)
    ids = list(db.session.scalars(sa.select(Store.code).order_by(Store.id)))
    seen = []
    for page in range(1, -(-len(ids) // 3) + 1):
        html = console.get(f"/hq/stores?page={page}").get_data(as_text=True)
        assert f"第 {page} / {-(-len(ids) // 3)} 页" in html
        seen += _store_codes(html)
    assert seen == ids
    # The filters stay in the pager's links.
    html = console.get("/hq/stores?region=330000&page=1").get_data(as_text=True)
    assert "region=330000&amp;page=2" in html or "第 1 / 1 页" in html


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/hq/stores?region=33", 422, "地区代码是 6 位数字"),
    ("/hq/stores?region=999999", 422, "没有这个地区"),
    ("/hq/stores?page=0", 422, "筛选条件有误"),
    (f"/hq/stores?distributor_id={HUGE}", 422, "筛选条件有误"),
    ("/hq/stores?q=" + "长" * 51, 422, "搜索词最多 50 个字"),
    ("/hq/stores/999999", 404, "找不到这家门店"),
    (f"/hq/stores/{HUGE}", 404, None),
    ("/hq/invites/999999", 404, "找不到这个邀请"),
    ("/hq/invites?status=bogus", 422, "筛选条件有误"),
])
def test_bad_urls_get_the_consoles_chinese_error_page(console, path, status, text):
    resp = console.get(path)
    assert resp.status_code == status, (path, resp.status_code)
    html = resp.get_data(as_text=True)
    assert 'lang="zh-CN"' in html and "empty error" in html
    if text:
        assert text in html


def test_a_stores_page_shows_stock_sales_orders_scans_and_people(console, monkeypatch):
    s1 = _store("S1")
    html = console.get(f"/hq/stores/{s1.id}").get_data(as_text=True)
    for part in ('id="stock"', 'id="sales"', 'id="orders"', 'id="scans"', 'id="people"', "近 30 天销量",
                 "近 90 天销量", "王建国", "店主", "店员", f"/hq/orders?store_id={s1.id}"):
        assert part in html, part
    # Stock paged: two SKUs a page, every SKU on exactly one page.
    monkeypatch.setattr(channel_pages, "STOCK_PAGE_SIZE", 2)
    monkeypatch.setattr(channel_pages, "SCAN_PAGE_SIZE", 4)
    first = console.get(f"/hq/stores/{s1.id}").get_data(as_text=True)
    second = console.get(f"/hq/stores/{s1.id}?stock_page=2").get_data(as_text=True)

    def stock_skus(page_html):
        part = page_html.split('id="stock"', 1)[1].split("</table>", 1)[0]
        return re.findall(r'<span class="muted mono">(\w+)</span></td><td class="n">', part)

    assert len(stock_skus(first)) == 2 and stock_skus(second) and not set(stock_skus(first)) & set(
        stock_skus(second))
    assert "stock_page=2" in first
    # Scans paged, latest first; the stock page stays when paging the scans.
    scans = console.get(f"/hq/stores/{s1.id}?stock_page=2&scan_page=2").get_data(as_text=True)
    assert "stock_page=2&amp;scan_page=1" in scans or "stock_page=2&amp;scan_page=3" in scans
    times = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d)</td><td>(?:收货|售出|退货|撤销)",
                       first.split('id="scans"', 1)[1])
    assert len(times) == 4 and times == sorted(times, reverse=True)


# --- invites ------------------------------------------------------------------------------------------------

def test_admin_creates_an_invite_sees_its_qr_and_revokes_it(console):
    s1 = _store("S1")
    resp = console.post(f"/hq/stores/{s1.id}/invites", data={"role": "store_clerk", "ttl_days": "7",
                                                              "csrf": console.csrf})
    assert resp.status_code == 302
    invite = _invites(s1.id)[-1]
    assert invite.role == "store_clerk" and invite.revoked_at is None and invite.created_by_id
    assert resp.headers["Location"].endswith(f"/hq/invites/{invite.id}")
    assert timedelta(days=6, hours=23) < invite.expires_at - now_utc() <= timedelta(days=7)
    html = console.get(f"/hq/invites/{invite.id}").get_data(as_text=True)
    assert '<div class="qr" id="invite-qr"><svg' in html and "店员" in html and "老王便利店" in html
    assert "data-confirm" in html and "撤销邀请" in html and "待使用" in html
    listed = console.get(f"/hq/stores/{s1.id}").get_data(as_text=True)
    assert "查看二维码" in listed
    assert "老王便利店" in console.get("/hq/invites?status=open").get_data(as_text=True)
    # Revoke: the QR is gone, the status says so, the list filters by it.
    resp = console.post(f"/hq/invites/{invite.id}/revoke", data={"csrf": console.csrf})
    assert resp.status_code == 302
    assert _invites(s1.id)[-1].revoked_at is not None
    html = console.get(f"/hq/invites/{invite.id}").get_data(as_text=True)
    assert "<svg" not in html and "已撤销" in html and "撤销邀请" not in html
    assert f"/hq/invites/{invite.id}" in console.get("/hq/invites?status=revoked").get_data(as_text=True)
    assert f"/hq/invites/{invite.id}" not in console.get("/hq/invites?status=open").get_data(as_text=True)


def test_a_used_invite_cannot_be_revoked(console):
    s1 = _store("S1")
    console.post(f"/hq/stores/{s1.id}/invites", data={"role": "store_owner", "ttl_days": "1", "csrf": console.csrf})
    invite = _invites(s1.id)[-1]
    user_id = db.session.scalar(sa.select(Membership.user_id).where(Membership.store_id == _store("S2").id))
    with transaction():
        redeem_invite(user_id=user_id, token=invite.token)
    resp = console.post(f"/hq/invites/{invite.id}/revoke", data={"csrf": console.csrf}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "邀请已经被使用，不能撤销" in html and "已使用" in html and "<svg" not in html
    assert _invites(s1.id)[-1].revoked_at is None


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"role": "", "ttl_days": "3"}, "role", "请选择邀请的角色（店主或店员）"),
    ({"role": "hq_admin", "ttl_days": "3"}, "role", "请选择邀请的角色（店主或店员）"),
    ({"role": "store_clerk", "ttl_days": "0"}, "ttl_days", "请选择有效期"),
    ({"role": "store_clerk", "ttl_days": "99999999999999999999"}, "ttl_days", "请选择有效期"),
])
def test_a_bad_invite_form_is_refused_beside_the_field(console, form, field, message):
    s1 = _store("S1")
    before = len(_invites(s1.id))
    resp = console.post(f"/hq/stores/{s1.id}/invites", data={**form, "csrf": console.csrf})
    assert resp.status_code == 422
    assert message in field_error(resp.get_data(as_text=True))
    assert len(_invites(s1.id)) == before


def test_invite_writes_need_the_forms_csrf_token(console):
    s1 = _store("S1")
    for data in ({"role": "store_clerk", "ttl_days": "3"}, {"role": "store_clerk", "ttl_days": "3", "csrf": "x"}):
        resp = console.post(f"/hq/stores/{s1.id}/invites", data=data)
        assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
    assert _invites(s1.id) == []
    console.post(f"/hq/stores/{s1.id}/invites", data={"role": "store_clerk", "ttl_days": "3", "csrf": console.csrf})
    invite = _invites(s1.id)[-1]
    resp = console.post(f"/hq/invites/{invite.id}/revoke", data={})
    assert resp.status_code == 400
    assert _invites(s1.id)[-1].revoked_at is None


def test_analyst_reads_but_cannot_write(client, demo):
    s1 = _store("S1")
    admin_csrf = login(client)
    client.post(f"/hq/stores/{s1.id}/invites", data={"role": "store_clerk", "ttl_days": "3", "csrf": admin_csrf})
    invite = _invites(s1.id)[-1]
    client.post("/hq/logout", data={"csrf": admin_csrf})
    csrf = login(client, "analyst")
    for path in ("/hq/partners", "/hq/stores", f"/hq/stores/{s1.id}", "/hq/invites", f"/hq/invites/{invite.id}"):
        assert client.get(path).status_code == 200, path
    store_html = client.get(f"/hq/stores/{s1.id}").get_data(as_text=True)
    assert 'id="new-invite"' not in store_html and "待使用" in store_html
    html = client.get(f"/hq/invites/{invite.id}").get_data(as_text=True)
    assert "<svg" not in html and "revoke-invite" not in html  # no QR to hand out, no revoke
    resp = client.post(f"/hq/stores/{s1.id}/invites", data={"role": "store_clerk", "ttl_days": "3", "csrf": csrf})
    assert resp.status_code == 403 and "<header>" in resp.get_data(as_text=True)
    assert client.post(f"/hq/invites/{invite.id}/revoke", data={"csrf": csrf}).status_code == 403
    assert len(_invites(s1.id)) == 1 and _invites(s1.id)[0].revoked_at is None


def test_a_warehouse_operator_sees_none_of_these(client, demo):
    s1 = _store("S1")
    csrf = login(client, "warehouse")
    assert "/hq/partners" not in client.get("/hq/orders").get_data(as_text=True)  # no nav links either
    for path in ("/hq/partners", f"/hq/partners/{_partner('D1').id}", "/hq/stores", f"/hq/stores/{s1.id}",
                 "/hq/invites"):
        resp = client.get(path)
        assert resp.status_code == 403, path
        assert "<header>" in resp.get_data(as_text=True)
    resp = client.post(f"/hq/stores/{s1.id}/invites", data={"role": "store_clerk", "ttl_days": "3", "csrf": csrf})
    assert resp.status_code == 403 and _invites(s1.id) == []


def test_the_nav_links_to_the_new_pages(console):
    html = console.get("/hq/").get_data(as_text=True)
    assert 'href="/hq/partners"' in html and 'href="/hq/stores"' in html and 'href="/hq/invites"' in html
