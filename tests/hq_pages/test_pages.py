"""The HQ console pages: login, every page renders with its key text, CSRF, exports, the plan flow; Chromium."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import threading

import pytest
from openpyxl import load_workbook
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def csrf_of(client):
    html = client.get("/hq/login").get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, username="admin", password="admin"):
    return client.post("/hq/login", data={"username": username, "password": password, "csrf": csrf_of(client)})


@pytest.fixture()
def console(client, demo):
    resp = login(client)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def test_pages_need_login(client, demo):
    resp = client.get("/hq/")
    assert resp.status_code == 302 and "/hq/login" in resp.headers["Location"]
    assert "品牌总部控制台" in client.get("/hq/login").get_data(as_text=True)


def test_wrong_password_and_missing_csrf(client, demo):
    resp = login(client, password="nope")
    assert resp.status_code == 401
    assert client.post("/hq/login", data={"username": "admin", "password": "admin"}).status_code == 400


def test_session_cookie_is_httponly_and_lax(client, demo):
    resp = login(client)
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(("path", "texts"), [
    ("/hq/", ["总览", "销量", "<svg", "深圳市", "畅销商品", "城市排行", "¥"]),
    ("/hq/sell-through?group_by=city", ["动销分析", "深圳市", "<svg", "导出 Excel", "分销商排行", "进货 vs 动销"]),
    ("/hq/sell-through?group_by=day", ["<polyline"]),
    ("/hq/sell-through?group_by=store&region=440300", ["李姐烟酒店"]),
    ("/hq/store-stock", ["门店库存", "可售天数", "老王便利店", "滞销门店"]),
    ("/hq/alerts", ["窜货预警"]),
    ("/hq/plans", ["调拨计划", "生成调拨计划", "分仓库存", "生产建议", "深圳分仓"]),
    ("/hq/code-batches", ["码批次"]),
    ("/hq/territories", ["区域分配", "杭州西湖分销", "独家", "共享", "成都市", "分配区域"]),
])
def test_every_page_renders(console, path, texts):
    resp = console.get(path)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for text in texts:
        assert text in html, (path, text)


def test_english_switch_is_remembered(console):
    assert "Overview" in console.get("/hq/?lang=en").get_data(as_text=True)
    assert "Sell-through" in console.get("/hq/sell-through").get_data(as_text=True)
    assert "总览" in console.get("/hq/?lang=zh").get_data(as_text=True)


def test_export_link_downloads_xlsx(console):
    resp = console.get("/hq/api/sell-through?group_by=city&format=xlsx")
    assert resp.status_code == 200
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert any(r[0] == "深圳市" for r in rows)
    assert console.get("/hq/api/nothing-here").status_code == 404


def test_plan_flow_in_the_console(console):
    token = re.search(r'name="csrf" value="([^"]+)"', console.get("/hq/plans").get_data(as_text=True)).group(1)
    assert console.post("/hq/plans", data={"target_cover_days": "21"}).status_code == 400  # no CSRF
    resp = console.post("/hq/plans", data={"target_cover_days": "21", "csrf": token})
    assert resp.status_code == 302
    plan_url = resp.headers["Location"]
    html = console.get(plan_url).get_data(as_text=True)
    assert "深圳分仓" in html and "批准并生成调拨单" in html
    plan_id = int(plan_url.rstrip("/").split("/")[-1])
    resp = console.post(f"/hq/plans/{plan_id}/approve", data={"csrf": token}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "已批准" in html and "确认收货" in html
    transfer_id = re.search(r'/hq/transfers/(\d+)/receive', html).group(1)
    html = console.post(f"/hq/transfers/{transfer_id}/receive", data={"csrf": token},
                        follow_redirects=True).get_data(as_text=True)
    assert "已收货" in html


def test_logout(console):
    token = re.search(r'name="csrf" value="([^"]+)"', console.get("/hq/").get_data(as_text=True)).group(1)
    console.post("/hq/logout", data={"csrf": token})
    assert console.get("/hq/").status_code == 302


class _LoginShim:
    """WSGI wrapper: /__test_login sets the console's session cookie (Chromium has no cookie flag), then /hq/."""

    def __init__(self, app, cookie_name):
        self.app, self.cookie_name, self.cookie = app, cookie_name, ""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__test_login":
            start_response("302 Found", [("Location", "/hq/"), (
                "Set-Cookie", f"{self.cookie_name}={self.cookie}; Path=/; HttpOnly; SameSite=Lax")])
            return [b""]
        return self.app(environ, start_response)


@pytest.fixture()
def live_server(app, demo):
    shim = _LoginShim(app, app.config.get("SESSION_COOKIE_NAME", "session"))
    server = make_server("127.0.0.1", 0, shim, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield shim, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_overview_in_headless_chromium(app, live_server, tmp_path):
    """The overview loads in a real browser with no console errors and shows the SVG chart."""
    from flask.sessions import SecureCookieSessionInterface

    from app.sessions.flows import login_console

    shim, base = live_server
    with app.test_request_context():
        token = login_console("admin", "admin")["token"]
        shim.cookie = SecureCookieSessionInterface().get_signing_serializer(app).dumps(
            {"hq_token": token, "csrf": "x", "user_name": "admin"})
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'p'}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--window-size=1366,900",
           "--dump-dom", f"{base}/__test_login"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom, log = out.stdout, out.stderr
    assert "<svg" in dom and "polyline" in dom, (dom[:2000], log[-2000:])
    assert "总览" in dom
    console_errors = [ln for ln in log.splitlines() if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    assert not console_errors, console_errors
    assert "Failed to load resource" not in log


def test_alerts_page_shows_a_region_bound_analyst_their_alerts_behind_200_others(app, client, demo):
    """The alerts of the analyst's region are found in the database, not among the 200 newest of the network."""
    import sqlalchemy as sa

    from app.accounts.services import create_hq_user
    from app.channel.models import Store
    from app.codes.models import Code
    from app.codes.parse import grouped
    from app.core.tx import transaction
    from app.extensions import db
    from app.scans.models import DiversionAlert

    with app.app_context():
        stores = dict(db.session.execute(sa.select(Store.code, Store.id)).all())
        with transaction():
            create_hq_user(username="analyst_zj", password="admin", role="hq_analyst", region_code="330000")
            mine, other = (db.session.scalar(sa.select(Code).where(Code.store_id == stores[s], Code.kind == "unit")
                                             .order_by(Code.id)) for s in ("S1", "S2"))
            serials = grouped(mine.serial), grouped(other.serial)
            # One alert in Zhejiang (S1, meant for S3), then 200 newer ones in Guangdong (S2, meant for S6).
            db.session.add(DiversionAlert(code_id=mine.id, sku_id=mine.sku_id, source="sell", policy="alert",
                                          expected_store_id=stores["S3"], actual_store_id=stores["S1"]))
            db.session.flush()
            db.session.add_all([DiversionAlert(code_id=other.id, sku_id=other.sku_id, source="sell", policy="alert",
                                               expected_store_id=stores["S6"], actual_store_id=stores["S2"])
                                for _ in range(200)])
        db.session.remove()
    assert login(client, "analyst_zj").status_code == 302
    html = client.get("/hq/alerts").get_data(as_text=True)
    assert serials[0] in html, "the Zhejiang alert is missing"
    assert serials[1] not in html, "a Guangdong alert is shown to the Zhejiang analyst"
