"""In Chromium: issue a small code batch from the console, watch its progress bar finish, download its labels, put
it away, and trace one of its codes by typing its printed URL into the search box. No page logs a console error
and no request fails.

Jobs run on the app's thread pool here (as on the demo server), so the batch page really polls a job that is
running beside it.
"""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest

from tests.helpers import aborted_by_navigation

pytestmark = pytest.mark.browser


def _watch(page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed",
            lambda r: aborted_by_navigation(r) or problems.append(f"request failed: {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


def test_issue_watch_download_put_away_and_trace(app, demo, browser, serve, screenshots, monkeypatch):
    from app.codes import services

    # The job waits until the batch page is open, so the page is seen following a job that has not finished.
    page_open = threading.Event()
    make = services.generate_batch

    def generate_when_watched(batch_id):
        page_open.wait(15)
        time.sleep(0.5)
        make(batch_id)

    monkeypatch.setattr(services, "generate_batch", generate_when_watched)
    monkeypatch.setitem(app.config, "JOBS_MODE", "thread")
    _run(app, browser, serve, screenshots, page_open)


def _run(app, browser, serve, screenshots, page_open):
    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    _watch(page, problems)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/hq/api/code-batches/" in r.url else None)

    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")
    # The overview's quantities are per unit: 提 and 组 are never added together.
    sold = page.inner_text(".kpi .value.units-by-unit")
    assert " 提" in sold and " · " in sold, sold
    page.screenshot(path=str(screenshots / "overview-units.png"), full_page=False)

    # The issue form: choosing the SKU fills in its case pack (static JS); 12 unit codes in cases of 6.
    page.goto(f"{base}/hq/code-batches")
    page.select_option("#sku_id", label="山泉纯牛奶（每箱 6 提）")
    assert page.input_value("#case_size") == "6"
    page.fill("#quantity", "12")
    page.screenshot(path=str(screenshots / "codes-issue-form.png"), full_page=True)
    page.click("form.issue-form button[type=submit]")
    page.wait_for_url(f"{base}/hq/code-batches/*")
    batch_url = page.url
    batch_id = int(batch_url.rstrip("/").split("/")[-1])

    # The batch is queued: the bar is empty and says so; then the job runs and the bar follows it to the end.
    assert page.get_attribute("#batch-progress", "value") == "0"
    assert page.inner_text("#batch-status-tag") == "排队中"
    assert page.is_hidden("#batch-done")
    page.screenshot(path=str(screenshots / "codes-batch-pending.png"), full_page=True)
    page_open.set()
    page.wait_for_function(
        "() => { const b = document.getElementById('batch-progress');"
        " return b && b.value === b.max && b.max === 12 && b.dataset.status === 'done'; }", timeout=20_000)
    page.wait_for_selector("#batch-done:not([hidden])", timeout=20_000)
    assert page.inner_text("#batch-status-tag") == "已完成"
    assert page.inner_text("#batch-count") == "12/12"
    page.screenshot(path=str(screenshots / "codes-batch-done.png"), full_page=True)

    # The label links download: a PDF sheet and the line printer's CSV.
    pdf_href = page.get_attribute("#labels-pdf", "href")
    csv_href = page.get_attribute("#labels-csv", "href")
    pdf = context.request.get(base + pdf_href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body()[:4] == b"%PDF"
    labels = context.request.get(base + csv_href)
    assert labels.status == 200 and labels.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(labels.text())))
    units = [r for r in rows if r.get("kind") == "unit"]
    assert len(units) == 12 and len(rows) == 14, rows[:3]
    url = units[0]["url"]

    # Put the batch away into the Hangzhou warehouse.
    page.select_option("#warehouse_id", label="杭州分仓")
    page.click("form.put-away button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "已入仓：12 个码" in page.inner_text(".flash.ok")

    # Trace: type the printed URL into the search box, as a scanner would.
    page.goto(f"{base}/hq/code-batches")
    page.fill("#trace-code", url)
    page.press("#trace-code", "Enter")
    page.wait_for_selector("#timeline")
    steps = page.locator("#timeline li .what").all_inner_texts()
    assert steps == ["入仓"], steps
    where = page.locator("#timeline li .where").all_inner_texts()
    assert where == ["杭州分仓"], where
    assert "在仓" in page.inner_text(".trace-head")
    page.screenshot(path=str(screenshots / "codes-trace.png"), full_page=True)

    # A paste that is not one of our codes: the message beside the box, no failed request but that answer.
    page.fill("#trace-code", "https://elsewhere.example.com/01/00000000000000/21/NOPE")
    page.press("#trace-code", "Enter")
    page.wait_for_selector("#trace-code-error")
    assert "找不到" in page.inner_text("#trace-code-error")
    page.screenshot(path=str(screenshots / "codes-trace-refused.png"), full_page=True)
    refused = [p for p in problems if "/hq/codes/trace" in p or "404" in p]
    problems[:] = [p for p in problems if p not in refused]
    assert refused, "the refused trace answers 404"

    assert any(f"/hq/api/code-batches/{batch_id}" in u for u in polls), polls
    assert problems == [], problems
    context.close()


def test_every_console_page_opens_without_a_console_error_or_a_failed_request(app, demo, browser, serve,
                                                                              screenshots):
    base = serve(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    _watch(page, problems)
    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")
    pages = ["/hq/", "/hq/sell-through", "/hq/sell-through?group_by=day", "/hq/sell-through?group_by=sku",
             "/hq/store-stock", "/hq/alerts", "/hq/plans", "/hq/code-batches", "/hq/code-batches/1",
             "/hq/codes/trace", "/hq/?lang=en", "/hq/code-batches", "/hq/?lang=zh"]
    for path in pages:
        resp = page.goto(base + path, wait_until="networkidle")
        assert resp is not None and resp.status == 200, (path, resp and resp.status)
    # The trace of one of the demo batch's first codes, from the batch page's link.
    page.goto(f"{base}/hq/code-batches/1", wait_until="networkidle")
    trace_link = page.locator("a", has_text="追溯").first.get_attribute("href")
    page.goto(base + trace_link, wait_until="networkidle")
    assert page.locator("#timeline li").count() >= 1
    page.screenshot(path=str(screenshots / "codes-trace-demo-unit.png"), full_page=True)
    assert problems == [], problems
    context.close()
