"""The console's registrations page in Chromium, on the demo: conflicts first, the policy holds (no blocked
script or style), and a reassignment made through the form as a person would."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_registrations_page_reassign_in_the_browser(app, demo, browser, serve, screenshots):
    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")
    page.click("text=客户报备")
    page.wait_for_url(f"{base}/hq/registrations")
    cards = page.locator("div.card h2").all_inner_texts()
    assert cards[0].startswith("报备冲突") and cards[1].startswith("保护中"), cards
    conflict_row = page.locator("div.card").first.locator("tr").nth(1)
    assert "深圳南山分销" in conflict_row.inner_text() and "杭州西湖分销" in conflict_row.inner_text()
    page.screenshot(path=str(screenshots / "registrations.png"), full_page=True)
    # Reassign D1's demo shop to the partner that was refused (preselected in the form), with a reason.
    conflict_row.locator("input[name=reason]").fill("D1 一个月没有跟进")
    conflict_row.locator("button").click()
    page.wait_for_url(f"{base}/hq/registrations")
    assert "已改派" in page.inner_text("div.flash")
    protected = page.locator("div.card").nth(1).inner_text()
    assert "湖滨茶饮小铺" in protected and "深圳南山分销" in protected
    page.screenshot(path=str(screenshots / "registrations-reassigned.png"), full_page=True)
    context.close()
    assert not problems, problems
