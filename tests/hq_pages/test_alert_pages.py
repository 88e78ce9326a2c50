"""The console's alerts: filters (with the region picker) and their refusals beside the fields, one alert's page
with its history, handling it through the forms (CSRF, illegal steps refused beside the field, nothing changed),
the export link; the picker's JSON and markup."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from app.channel.models import Store
from app.codes.models import Code
from app.core.tx import transaction
from app.extensions import db
from app.scans.models import DiversionAlert, DiversionAlertEvent


def login(client, username="admin", password="admin"):
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    return client.post("/hq/login", data={"username": username, "password": password, "csrf": csrf})


@pytest.fixture()
def console_alerts(client, demo):
    stores = dict(db.session.execute(sa.select(Store.code, Store.id)).all())
    with transaction():
        made = []
        for actual, expected in (("S1", "S3"), ("S2", "S6")):
            s = db.session.get(Store, stores[actual])
            code = db.session.scalar(sa.select(Code).where(Code.store_id == s.id, Code.kind == "unit"))
            made.append(DiversionAlert(code_id=code.id, sku_id=code.sku_id, source="sell", policy="alert",
                                       expected_store_id=stores[expected], actual_store_id=s.id,
                                       actual_region=s.district_code or s.city_code,
                                       expected_region=db.session.get(Store, stores[expected]).city_code))
        db.session.add_all(made)
    ids = [a.id for a in made]
    db.session.remove()
    assert login(client).status_code == 302
    return ids


def _csrf(client) -> str:
    with client.session_transaction() as s:
        return s["csrf"]


def test_the_list_filters_by_region_status_and_source(client, console_alerts):
    zj, gd = console_alerts
    html = client.get("/hq/alerts").get_data(as_text=True)
    assert f"/hq/alerts/{zj}" in html and f"/hq/alerts/{gd}" in html and "待处理" in html
    html = client.get("/hq/alerts?region=330000").get_data(as_text=True)
    assert f"/hq/alerts/{zj}" in html and f"/hq/alerts/{gd}" not in html
    # The picker shows the chosen province selected, its cities ready for the script.
    assert re.search(r'<option value="330000" selected>浙江省</option>', html)
    assert 'data-level="city"' in html and ">杭州市<" in html
    html = client.get("/hq/alerts?status=investigating").get_data(as_text=True)
    assert f"/hq/alerts/{zj}" not in html and "没有符合条件的窜货预警" in html
    assert f"/hq/alerts/{gd}" in client.get("/hq/alerts?source=sell&status=open").get_data(as_text=True)


def test_bad_filters_are_refused_beside_the_field(client, console_alerts):
    for query, field_text in (("status=closed", "没有这个状态"), ("region=999999", "没有这个地区"),
                              ("region=33", "地区代码是 6 位数字"), ("from=2026-13-01", ""),
                              ("from=2026-11-02&to=2026-11-01", "结束日期不能早于开始日期"),
                              ("sku_id=0", "")):
        resp = client.get(f"/hq/alerts?{query}")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422, query
        assert 'class="field-error"' in html and field_text in html, query
        assert "/hq/alerts/" + str(console_alerts[0]) not in html


def test_an_alert_handled_through_the_console(client, console_alerts):
    zj, _gd = console_alerts
    page = client.get(f"/hq/alerts/{zj}").get_data(as_text=True)
    assert "还没有人处理这条预警" in page and 'name="csrf"' in page
    # Without the CSRF token nothing changes.
    assert client.post(f"/hq/alerts/{zj}/status", data={"status": "investigating"}).status_code == 400
    assert db.session.get(DiversionAlert, zj).status == "open"
    resp = client.post(f"/hq/alerts/{zj}/status", data={"status": "investigating", "note": "电话核实中",
                                                         "csrf": _csrf(client)})
    assert resp.status_code == 302
    page = client.get(f"/hq/alerts/{zj}").get_data(as_text=True)
    assert "调查中" in page and "电话核实中" in page and "已改为「调查中」" in page
    # Closing without a note: the message beside the note, nothing changed, the typed status kept.
    resp = client.post(f"/hq/alerts/{zj}/status", data={"status": "dismissed", "note": "", "csrf": _csrf(client)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "这一步要写明原因" in html and 'class="field-error"' in html
    db.session.remove()
    assert db.session.get(DiversionAlert, zj).status == "investigating"
    # An illegal step (a stale form: back to open) is refused beside the status.
    resp = client.post(f"/hq/alerts/{zj}/status", data={"status": "open", "note": "x", "csrf": _csrf(client)})
    assert resp.status_code == 409 and "不能改为「待处理」" in resp.get_data(as_text=True)
    resp = client.post(f"/hq/alerts/{zj}/notes", data={"text": "  ", "csrf": _csrf(client)})
    assert resp.status_code == 422 and "请填写备注" in resp.get_data(as_text=True)
    resp = client.post(f"/hq/alerts/{zj}/notes", data={"text": "分销商已回复", "csrf": _csrf(client)})
    assert resp.status_code == 302
    assert client.post(f"/hq/alerts/{zj}/status", data={"status": "dismissed", "note": "同城调货",
                                                         "csrf": _csrf(client)}).status_code == 302
    db.session.remove()
    assert db.session.get(DiversionAlert, zj).status == "dismissed"
    events = db.session.scalars(sa.select(DiversionAlertEvent).where(DiversionAlertEvent.alert_id == zj)
                                .order_by(DiversionAlertEvent.id)).all()
    assert [(e.kind, e.to_status, e.note) for e in events] == [
        ("status", "investigating", "电话核实中"), ("note", "investigating", "分销商已回复"),
        ("status", "dismissed", "同城调货")]
    assert client.get("/hq/alerts?status=dismissed").get_data(as_text=True).count(f"/hq/alerts/{zj}") == 1
    assert client.get("/hq/alerts/999999").status_code == 404


def test_a_region_bound_analyst_cannot_open_or_handle_another_region(app, client, console_alerts):
    from app.accounts.services import create_hq_user

    _zj, gd = console_alerts
    with transaction():
        create_hq_user(username="analyst_zj", password="admin", role="hq_analyst", region_code="330000")
    db.session.remove()
    other = app.test_client()
    assert login(other, "analyst_zj").status_code == 302
    assert other.get(f"/hq/alerts/{gd}").status_code == 403
    with other.session_transaction() as s:
        csrf = s["csrf"]
    assert other.post(f"/hq/alerts/{gd}/status", data={"status": "investigating", "csrf": csrf}).status_code == 403
    assert db.session.get(DiversionAlert, gd).status == "open"


def test_the_export_link_downloads_the_filtered_alerts(client, console_alerts):
    zj, _gd = console_alerts
    html = client.get("/hq/alerts?region=330000&from=2026-01-01").get_data(as_text=True)
    link = re.search(r'href="(/hq/api/diversion-alerts\?[^"]*format=csv[^"]*)"', html).group(1).replace("&amp;", "&")
    assert "region=330000" in link and "from=2026-01-01T00%3A00%3A00%2B08%3A00" in link
    resp = client.get(link)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert [int(r["预警编号"]) for r in rows] == [zj]


def test_the_region_picker_json_and_every_filter_form_uses_it(client, console_alerts):
    provinces = client.get("/hq/api/regions").get_json()
    assert len(provinces) >= 31 and {"code": "330000", "name": "浙江省", "level": "province",
                                     "label": "浙江省"} in provinces
    cities = client.get("/hq/api/regions?parent=330000").get_json()
    assert {c["code"] for c in cities} >= {"330100", "330200"} and all(c["level"] == "city" for c in cities)
    beijing = client.get("/hq/api/regions?parent=110000").get_json()
    assert [(c["code"], c["label"]) for c in beijing] == [("110100", "北京市")]
    districts = client.get("/hq/api/regions?parent=330100").get_json()
    assert "330106" in {d["code"] for d in districts}
    for page in ("/hq/", "/hq/sell-through", "/hq/store-stock", "/hq/alerts"):
        html = client.get(page).get_data(as_text=True)
        assert "data-region-picker" in html and 'select name="region" data-level="province"' in html, page
        assert '/hq/static/regions.js' in html and 'name="region" value=' not in html, page
    # A district chosen: all three levels come back selected.
    html = client.get("/hq/sell-through?region=330106").get_data(as_text=True)
    assert all(re.search(rf'<option value="{c}" selected>', html) for c in ("330000", "330100", "330106"))
