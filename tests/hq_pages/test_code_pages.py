"""The console's code pages: issue a batch, its progress, put-away, labels, and the trace search (URL, q=, serial).

Every form refuses bad input with the message beside its field, a 4xx status, and nothing changed; a POST without
the session's CSRF token changes nothing either.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from app.catalog.models import Sku
from app.codes.models import Code, CodeBatch
from app.extensions import db
from app.inventory.models import Warehouse
from tests.helpers import assert_db_unchanged, console_login


@pytest.fixture()
def console(client, demo):
    assert console_login(client).status_code == 302
    return client


def _csrf(client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/hq/code-batches").get_data(as_text=True)).group(1)


def _sku(app, code="MILK250") -> Sku:
    with app.app_context():
        return db.session.scalar(sa.select(Sku).where(Sku.code == code))


def _beside(html: str, field: str) -> str:
    """The message shown beside a field (the span the field's aria-describedby names)."""
    assert f'aria-describedby="{field}-error"' in html, field
    found = re.search(rf'<span id="{field}-error" class="field-error" role="alert">([^<]+)</span>', html)
    assert found, (field, html[:3000])
    return found.group(1)


def test_the_batches_page_has_the_issue_form_the_trace_box_and_the_packs(console, app):
    html = console.get("/hq/code-batches").get_data(as_text=True)
    assert 'name="sku_id"' in html and 'name="quantity"' in html and 'name="case_size"' in html
    assert 'action="/hq/codes/trace"' in html and 'name="code"' in html
    assert "山泉纯牛奶（每箱 6 提）" in html and "散装苏打饼干" not in html  # only SKUs with codes
    assert 'src="/hq/static/issue.js"' in html and "style=" not in html and "<script>" not in html


def test_issue_a_batch_then_its_page_labels_and_put_away(console, app):
    sku, token = _sku(app), _csrf(console)
    resp = console.post("/hq/code-batches", data={"csrf": token, "sku_id": str(sku.id), "quantity": "12",
                                                  "case_size": "6"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    batch_id = int(resp.headers["Location"].rstrip("/").split("/")[-1])
    html = console.get(resp.headers["Location"]).get_data(as_text=True)
    assert '<progress id="batch-progress" max="12" value="12"' in html  # jobs run inline in tests
    assert f'data-url="/hq/api/code-batches/{batch_id}"' in html and "已完成" in html
    assert 'src="/hq/static/batch.js"' in html and "style=" not in html
    progress = console.get(f"/hq/api/code-batches/{batch_id}").get_json()
    assert progress["status"] == "done" and progress["units_made"] == 12 and progress["progress"] == 1.0

    pdf = console.get(f"/hq/api/code-batches/{batch_id}/labels.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    csv = console.get(f"/hq/api/code-batches/{batch_id}/labels.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert len(csv.get_data(as_text=True).strip().splitlines()) == 1 + 12 + 2  # header, units, cases

    with app.app_context():
        hz = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == "WH-HZ"))
        hz_id, hz_location = hz.id, hz.location_id
    resp = console.post(f"/hq/code-batches/{batch_id}/put-away",
                        data={"csrf": token, "warehouse_id": str(hz_id)}, follow_redirects=True)
    assert resp.status_code == 200 and "已入仓：12 个码" in resp.get_data(as_text=True)
    with app.app_context():
        states = db.session.execute(sa.select(Code.state, Code.location_id).where(Code.batch_id == batch_id)).all()
    assert {s for s, _ in states} == {"in_warehouse"} and {loc for _, loc in states} == {hz_location}
    assert len(states) == 14  # 12 units and their 2 cases

    # Again: nothing is left to put away; the refusal is on the page, nothing changes.
    with assert_db_unchanged("codes"):
        again = console.post(f"/hq/code-batches/{batch_id}/put-away", data={"csrf": token,
                                                                            "warehouse_id": str(hz_id)})
    assert again.status_code == 409 and "有码不能入仓" in again.get_data(as_text=True)


@pytest.mark.parametrize(("form", "field", "status", "text"), [
    ({}, "sku_id", 422, ""),
    ({"sku_id": "abc", "quantity": "12"}, "sku_id", 422, ""),
    ({"sku_id": "{milk}", "quantity": "0"}, "quantity", 422, ""),
    ({"sku_id": "{milk}", "quantity": "99999999999999999999999"}, "quantity", 422, ""),
    ({"sku_id": "{milk}", "quantity": "12", "case_size": "5"}, "case_size", 422, "整数倍"),
    ({"sku_id": "{milk}", "quantity": "12", "case_size": "-1"}, "case_size", 422, ""),
    ({"sku_id": "{bisc}", "quantity": "10"}, "sku_id", 422, "不按一物一码"),
    ({"sku_id": "987654321", "quantity": "10"}, "sku_id", 404, "找不到"),
])
def test_the_issue_form_refuses_bad_input_beside_the_field(console, app, form, field, status, text):
    ids = {"{milk}": str(_sku(app).id), "{bisc}": str(_sku(app, "BISC").id)}
    data = {"csrf": _csrf(console), **{k: ids.get(v, v) for k, v in form.items()}}
    with assert_db_unchanged("code_batches"):
        resp = console.post("/hq/code-batches", data=data)
    assert resp.status_code == status
    html = resp.get_data(as_text=True)
    message = _beside(html, field)
    assert message and text in message
    assert 'name="quantity"' in html  # the form is shown again, with what was typed
    if form.get("quantity"):
        assert f'value="{form["quantity"]}"' in html


def test_the_forms_need_the_csrf_token(console, app):
    sku = _sku(app)
    with assert_db_unchanged("code_batches", "codes"):
        resp = console.post("/hq/code-batches", data={"sku_id": str(sku.id), "quantity": "6"})
        assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
        resp = console.post("/hq/code-batches", data={"sku_id": str(sku.id), "quantity": "6", "csrf": "forged"})
        assert resp.status_code == 400
    token = _csrf(console)
    batch_id = int(console.post("/hq/code-batches", data={"csrf": token, "sku_id": str(sku.id), "quantity": "6",
                                                          "case_size": "6"}).headers["Location"].split("/")[-1])
    with app.app_context():
        wh = db.session.scalar(sa.select(Warehouse.id).where(Warehouse.code == "WH-HZ"))
    with assert_db_unchanged("codes"):
        resp = console.post(f"/hq/code-batches/{batch_id}/put-away", data={"warehouse_id": str(wh)})
    assert resp.status_code == 400


def test_the_put_away_form_refuses_bad_input_beside_the_field(console, app):
    token, sku = _csrf(console), _sku(app)
    batch_id = int(console.post("/hq/code-batches", data={"csrf": token, "sku_id": str(sku.id), "quantity": "6",
                                                          "case_size": "6"}).headers["Location"].split("/")[-1])
    for warehouse_id, status in (("", 422), ("x", 422), ("987654321", 404), ("99999999999999999999", 422)):
        with assert_db_unchanged("codes", "scan_events"):
            resp = console.post(f"/hq/code-batches/{batch_id}/put-away",
                                data={"csrf": token, "warehouse_id": warehouse_id})
        assert resp.status_code == status, (warehouse_id, resp.status_code)
        assert _beside(resp.get_data(as_text=True), "warehouse_id")
    assert console.post("/hq/code-batches/987654321/put-away", data={"csrf": token, "warehouse_id": "1"}
                        ).status_code == 404
    assert console.get("/hq/code-batches/987654321").status_code == 404


def test_a_batch_still_being_made_is_not_put_away(console, app):
    sku, token = _sku(app), _csrf(console)
    with app.app_context():
        batch = CodeBatch(sku_id=sku.id, quantity=6, case_size=6, status="running")
        db.session.add(batch)
        db.session.commit()
        batch_id = batch.id
        wh = db.session.scalar(sa.select(Warehouse.id).where(Warehouse.code == "WH-HZ"))
    html = console.get(f"/hq/code-batches/{batch_id}").get_data(as_text=True)
    assert 'value="0"' in html and "生成中" in html and '<div id="batch-done" hidden>' in html
    with assert_db_unchanged("codes"):
        resp = console.post(f"/hq/code-batches/{batch_id}/put-away", data={"csrf": token, "warehouse_id": str(wh)})
    assert resp.status_code == 409 and "还没生成完" in resp.get_data(as_text=True)


def _a_unit_in_store(app):
    with app.app_context():
        code, gtin = db.session.execute(sa.select(Code.serial, Sku.gtin).join(Sku, Sku.id == Code.sku_id).where(
            Code.kind == "unit", Code.state == "in_store").order_by(Code.id)).first()
    return code, f"https://q.example.com/01/{gtin}/21/{code}"


def test_trace_by_url_q_link_or_serial_shows_the_timeline(console, app):
    serial, url = _a_unit_in_store(app)
    grouped = "-".join(serial[i:i + 4] for i in range(0, len(serial), 4))
    for text in (url, f"https://q.example.com/scan?q={quote(url, safe='')}", serial, serial.lower(), grouped):
        resp = console.get("/hq/codes/trace", query_string={"code": text})
        assert resp.status_code == 200, (text, resp.status_code)
        html = resp.get_data(as_text=True)
        assert '<ol class="timeline" id="timeline">' in html, text
        steps = re.findall(r'<span class="what">([^<]+)</span>', html)
        assert steps[:3] == ["入仓", "发货", "门店收货"], steps  # in the order they happened
        places = re.findall(r'<span class="where">([^<]+)</span>', html)
        assert places[0] == "杭州分仓" and places[1].startswith("杭州分仓 → ") and places[2] == places[1][7:], places
        assert "在店" in html


@pytest.mark.parametrize(("text", "status"), [
    ("not a code", 404), ("https://evil.example.com/01/06901234567892/21/ABC", 404), ("0" * 14, 404),
    ("x" * 600, 422),
])
def test_trace_refuses_what_is_not_one_of_our_codes_beside_the_box(console, text, status):
    resp = console.get("/hq/codes/trace", query_string={"code": text})
    assert resp.status_code == status
    assert _beside(resp.get_data(as_text=True), "trace-code")


def test_the_trace_page_opens_empty(console):
    html = console.get("/hq/codes/trace").get_data(as_text=True)
    assert 'name="code"' in html and "timeline" not in html.split("</form>")[-1]


def test_put_away_can_book_the_units_into_the_warehouse_stock(console, app):
    from app.inventory.models import StockLevel

    sku, token = _sku(app), _csrf(console)
    batch_id = int(console.post("/hq/code-batches", data={"csrf": token, "sku_id": str(sku.id), "quantity": "12",
                                                          "case_size": "6"}).headers["Location"].split("/")[-1])
    with app.app_context():
        hz = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == "WH-HZ"))
        hz_id, loc = hz.id, hz.location_id

        def on_hand():
            db.session.remove()
            return db.session.scalar(sa.select(StockLevel.on_hand).where(
                StockLevel.location_id == loc, StockLevel.sku_id == sku.id)) or 0

        before = on_hand()
    resp = console.post(f"/hq/code-batches/{batch_id}/put-away",
                        data={"csrf": token, "warehouse_id": str(hz_id), "add_stock": "1"}, follow_redirects=True)
    assert "已入仓：12 个码，并记入仓库库存" in resp.get_data(as_text=True)
    with app.app_context():
        assert on_hand() == before + 12
