"""The console's channel pages in Chromium: the partner tree folds and unfolds; HQ finds a store by name, opens its
page, creates an invite for a clerk, sees the QR to print and revokes it after confirming. Every page opens with no
console error and no failed request. Screenshots: partners_*.png in $E2E_SCREENSHOT_DIR.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.channel.models import Invite, Partner, Store
from app.extensions import db
from tests.e2e.console_watch import Watch, login

pytestmark = pytest.mark.browser


def test_search_a_store_invite_a_clerk_print_the_qr_and_revoke_it(app, demo, browser, serve, screenshots):
    s1 = db.session.scalar(sa.select(Store).where(Store.code == "S1"))
    east = db.session.scalar(sa.select(Partner).where(Partner.code == "A1"))
    d1 = db.session.scalar(sa.select(Partner).where(Partner.code == "D1"))
    s1_id, east_id, d1_id = s1.id, east.id, d1.id
    db.session.remove()

    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page)
    login(page, base, "admin")

    # The partner tree: an agent folds its distributors away and shows them again.
    page.click("header nav >> text=伙伴")
    page.wait_for_url(f"{base}/hq/partners")
    d1_row = page.locator(f'tr[data-id="{d1_id}"]')
    assert d1_row.is_visible()
    page.screenshot(path=str(screenshots / "partners_tree.png"), full_page=True)
    page.click(f'tr[data-id="{east_id}"] button.tree-toggle')
    assert not d1_row.is_visible()
    page.click(f'tr[data-id="{east_id}"] button.tree-toggle')
    assert d1_row.is_visible()
    page.click(f'tr[data-id="{d1_id}"] >> text=杭州西湖分销')
    page.wait_for_url(f"{base}/hq/partners/{d1_id}")
    assert "老王便利店" in page.inner_text("main")
    page.screenshot(path=str(screenshots / "partners_partner_page.png"), full_page=True)

    # Find the store by a part of its name, open its page.
    page.click("header nav >> text=门店 >> nth=-1")
    page.wait_for_url(f"{base}/hq/stores")
    page.fill("input[name=q]", "老王")
    page.click("form.filters button.primary")
    page.wait_for_url("**/hq/stores?**q=**")
    assert page.locator("table.stores tr").count() == 2  # the header and S1
    page.screenshot(path=str(screenshots / "partners_store_search.png"), full_page=True)
    page.click("table.stores >> text=老王便利店")
    page.wait_for_url(f"{base}/hq/stores/{s1_id}")
    assert "王建国" in page.inner_text("#people")
    assert "近 30 天销量" in page.inner_text("#sales")
    page.screenshot(path=str(screenshots / "partners_store_page.png"), full_page=True)

    # Invite a clerk: the invite's page shows its QR to print.
    page.select_option("#new-invite select[name=role]", "store_clerk")
    page.select_option("#new-invite select[name=ttl_days]", "7")
    page.click("#new-invite button.primary")
    page.wait_for_url(f"{base}/hq/invites/*")
    invite_id = int(page.url.rsplit("/", 1)[1])
    qr = page.locator("#invite-qr svg")
    assert qr.is_visible()
    box = qr.bounding_box()
    assert box["width"] >= 200 and box["height"] >= 200
    assert "待使用" in page.inner_text("#invite-status")
    assert page.locator("button[data-print]").is_visible()
    page.screenshot(path=str(screenshots / "partners_invite_qr.png"), full_page=True)
    page.emulate_media(media="print")
    assert not page.locator("header").is_visible() and not page.locator("#revoke-invite").is_visible()
    page.screenshot(path=str(screenshots / "partners_invite_print.png"), full_page=True)
    page.emulate_media(media="screen")

    # Revoke: dismissing the confirm changes nothing; accepting it revokes.
    page.once("dialog", lambda d: d.dismiss())
    page.click("#revoke-invite button")
    assert "待使用" in page.inner_text("#invite-status")
    page.once("dialog", lambda d: d.accept())
    page.click("#revoke-invite button")
    page.wait_for_selector("text=邀请已撤销")
    assert "已撤销" in page.inner_text("#invite-status")
    assert page.locator("#invite-qr").count() == 0
    page.screenshot(path=str(screenshots / "partners_invite_revoked.png"), full_page=True)
    db.session.expire_all()
    assert db.session.get(Invite, invite_id).revoked_at is not None

    page.click("header nav >> text=邀请")
    page.wait_for_url(f"{base}/hq/invites")
    assert "已撤销" in page.inner_text("table.invites")
    page.screenshot(path=str(screenshots / "partners_invites.png"), full_page=True)
    assert watch.problems == []
    context.close()
