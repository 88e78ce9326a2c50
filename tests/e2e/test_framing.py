"""A page on another origin cannot frame the console, even for a user who is logged in.

The console is served on a free port; a second tiny server on another port (another origin of the same site,
so the browser sends the console's SameSite=Lax cookie into the frame: the worst case) serves a page that
embeds the console in an iframe. Chromium must refuse to show it (frame-ancestors 'none', X-Frame-Options).
As a control, the same console with those two headers taken off *is* shown in the same kind of frame, so the
test would see a console that can be framed.
"""

from __future__ import annotations

import pytest

from tests.helpers import aborted_by_navigation

pytestmark = pytest.mark.browser

ATTACKER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>领奖页面</title></head>
<body><h1>点击领取奖品</h1>
<iframe id="victim" src="{target}" width="1000" height="560"></iframe>
</body></html>"""


def attacker_site(target: str):
    """A WSGI app serving a page that frames `target`."""
    body = ATTACKER_PAGE.format(target=target).encode()

    def app(_environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def without_frame_guards(wsgi_app):
    """The same app with its anti-framing headers removed (the control)."""

    def app(environ, start_response):
        def _start(status, headers, exc_info=None):
            kept = [(k, v) for k, v in headers if k.lower() not in ("content-security-policy", "x-frame-options")]
            return start_response(status, kept, exc_info)

        return wsgi_app(environ, _start)

    return app


def _victim_frame(page):
    frames = page.main_frame.child_frames
    assert len(frames) == 1, [f.url for f in page.frames]
    return frames[0]


def _frame_text(frame) -> str:
    try:
        return frame.evaluate("() => document.body ? document.body.innerText : ''")
    except Exception as exc:  # an error page the browser put in place of a blocked frame
        return f"<unreadable: {type(exc).__name__}>"


def test_a_page_on_another_origin_cannot_frame_the_console(app, demo, browser, serve, screenshots):
    console = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()

    # Log in as a person would.
    page.goto(f"{console}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{console}/hq/")
    assert "总览" in page.inner_text("body")
    page.screenshot(path=str(screenshots / "console-logged-in.png"), full_page=False)

    # The attacker's page on another origin frames the console.
    answers = []
    attacker = serve(attacker_site(f"{console}/hq/"))
    evil = context.new_page()
    evil.on("response", lambda r: answers.append((r.url, r.status, r.headers)))
    evil.goto(attacker, wait_until="load")
    frame = _victim_frame(evil)
    text = _frame_text(frame)
    evil.screenshot(path=str(screenshots / "framed-console-blocked.png"))
    # The console did answer (logged in), with its guards; the browser would not show it.
    console_answer = [a for a in answers if a[0] == f"{console}/hq/"]
    assert console_answer and console_answer[0][1] == 200, answers
    assert "frame-ancestors 'none'" in console_answer[0][2].get("content-security-policy", "")
    assert console_answer[0][2].get("x-frame-options") == "DENY"
    assert "总览" not in text and "品牌总部控制台" not in text, text
    assert not frame.url.startswith(console), frame.url  # the browser's error page, not the console
    assert "点击领取奖品" in evil.inner_text("body")

    # Control: the same console without the two headers is shown in the same frame, logged in.
    unguarded = serve(without_frame_guards(app))
    control = context.new_page()
    control.goto(serve(attacker_site(f"{unguarded}/hq/")), wait_until="load")
    control_text = _frame_text(_victim_frame(control))
    control.screenshot(path=str(screenshots / "framed-console-control-unguarded.png"))
    assert "总览" in control_text, control_text
    context.close()


def test_every_kind_of_page_shows_under_its_policy_with_no_violation(app, demo, browser, serve, screenshots):
    """The console, the consumer page and the API docs look as they should with the policy on: the browser
    reports no blocked script, style or image, and each page's stylesheet took effect."""
    from app.catalog.models import Sku
    from app.extensions import db
    from tests.scans.helpers import codes_in

    code = codes_in("S1")[0]
    gtin = db.session.get(Sku, code.sku_id).gtin
    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("requestfailed", lambda r: aborted_by_navigation(r) or problems.append(f"failed: {r.url}"))

    page.goto(f"{base}/hq/login")
    # hq.css applied: the login card is centred and narrow.
    assert page.evaluate("() => getComputedStyle(document.querySelector('.login')).maxWidth") == "360px"
    page.screenshot(path=str(screenshots / "console-login.png"))

    page.goto(f"{base}/c/01/{gtin}/21/{code.serial}")
    assert "正品" in page.inner_text("body")
    assert page.evaluate("() => getComputedStyle(document.querySelector('h1')).fontSize") == "28px"
    page.screenshot(path=str(screenshots / "consumer-page.png"))

    page.goto(f"{base}/api/docs")
    assert "API" in page.title()
    assert page.evaluate("() => getComputedStyle(document.querySelector('header')).color") == "rgb(255, 255, 255)"
    page.screenshot(path=str(screenshots / "api-docs.png"))
    context.close()
    assert not problems, problems
