"""Diversion alerts handled to the end: the status machine, notes, who handled it, filters in SQL within the
caller's region, the names beside the ids, and the export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.services import create_hq_user
from app.catalog.models import Sku
from app.channel.models import Partner, Store
from app.codes.models import Code
from app.core.tx import transaction
from app.extensions import db
from app.scans.models import DiversionAlert, DiversionAlertEvent
from tests.conftest import hq_login

HQ = "/api/hq/v1"


@pytest.fixture()
def alerts(app, demo):
    """Alerts: S1 sold a unit meant for S3 (Zhejiang), S2 sold one meant for S6 (Guangdong) ten days ago, and a
    consumer in Shenzhen checked a unit shipped to S1; plus a Zhejiang analyst."""
    stores = dict(db.session.execute(sa.select(Store.code, Store.id)).all())
    with transaction():
        create_hq_user(username="analyst_zj", password="admin", role="hq_analyst", region_code="330000")
        c1, c2 = (db.session.scalar(sa.select(Code).where(Code.store_id == stores[s], Code.kind == "unit")
                                    .order_by(Code.id)) for s in ("S1", "S2"))
        s1, s2, s3, s6 = (db.session.get(Store, stores[s]) for s in ("S1", "S2", "S3", "S6"))
        made = [
            DiversionAlert(code_id=c1.id, sku_id=c1.sku_id, source="sell", policy="alert",
                           expected_store_id=s3.id, expected_distributor_id=s3.distributor_id,
                           expected_region=s3.city_code, actual_store_id=s1.id,
                           actual_distributor_id=s1.distributor_id, actual_region=s1.city_code),
            DiversionAlert(code_id=c2.id, sku_id=c2.sku_id, source="sell", policy="alert",
                           expected_store_id=s6.id, expected_region=s6.district_code or s6.city_code,
                           actual_store_id=s2.id, actual_region=s2.district_code or s2.city_code,
                           created_at=datetime.now(UTC) - timedelta(days=10)),
            DiversionAlert(code_id=c1.id, sku_id=c1.sku_id, source="consumer", policy="alert",
                           expected_store_id=s1.id, expected_region=s1.city_code, actual_region="440300"),
        ]
        db.session.add_all(made)
    ids = [a.id for a in made]
    db.session.remove()
    return {"ids": ids, "stores": stores}


def _status(client, headers, alert_id, status, note=""):
    return client.post(f"{HQ}/diversion-alerts/{alert_id}/status", json={"status": status, "note": note},
                       headers=headers)


def test_the_status_machine_legal_and_illegal_steps(client, alerts):
    admin = hq_login(client)
    a = alerts["ids"][0]
    resp = _status(client, admin, a, "investigating", "联系门店了解情况")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "investigating" and body["handled_by_name"] and body["handled_at"]
    assert body["allowed_next"] == ["confirmed", "dismissed"]
    assert [(e["from_status"], e["to_status"], e["note"]) for e in body["events"]] == [
        ("open", "investigating", "联系门店了解情况")]
    # Illegal: the same status again, and back to open: 409 with the steps allowed, nothing changed.
    for status in ("investigating", "open"):
        resp = _status(client, admin, a, status, "x")
        assert resp.status_code == 409
        err = resp.get_json()["error"]
        assert err["code"] == "alert_transition_refused" and err["details"]["allowed"] == ["confirmed", "dismissed"]
        assert "调查中" in err["message"]
    # Closing needs a note: 422 and still investigating.
    resp = _status(client, admin, a, "dismissed", "   ")
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "note_required"
    assert client.get(f"{HQ}/diversion-alerts/{a}", headers=admin).get_json()["status"] == "investigating"
    assert _status(client, admin, a, "dismissed", "同城调货，已核实").status_code == 200
    # Closed: only reopening (with a note) is allowed; confirmed → dismissed directly is not.
    assert _status(client, admin, a, "confirmed", "x").status_code == 409
    assert _status(client, admin, a, "investigating", "").status_code == 422
    assert _status(client, admin, a, "investigating", "又发现一箱").status_code == 200
    assert _status(client, admin, a, "confirmed", "确认窜货").status_code == 200
    # open → dismissed directly is a legal step.
    assert _status(client, admin, alerts["ids"][2], "dismissed", "顾客在外地旅游").status_code == 200
    events = db.session.scalars(sa.select(DiversionAlertEvent).where(DiversionAlertEvent.alert_id == a)
                                .order_by(DiversionAlertEvent.id)).all()
    assert [e.to_status for e in events] == ["investigating", "dismissed", "investigating", "confirmed"]
    assert {e.user_id for e in events} == {db.session.scalar(sa.select(User.id).where(User.username == "admin"))}


def test_bad_bodies_are_refused_and_change_nothing(client, alerts):
    admin = hq_login(client)
    a = alerts["ids"][0]
    for body in ({"status": "closed"}, {}, {"status": "investigating", "note": "x" * 1001}):
        resp = client.post(f"{HQ}/diversion-alerts/{a}/status", json=body, headers=admin)
        assert resp.status_code == 422, body
    assert client.post(f"{HQ}/diversion-alerts/{a}/notes", json={"text": ""}, headers=admin).status_code == 422
    assert client.post(f"{HQ}/diversion-alerts/999999/status", json={"status": "investigating"},
                       headers=admin).status_code == 404
    assert db.session.get(DiversionAlert, a).status == "open"
    assert not db.session.scalar(sa.select(sa.func.count(DiversionAlertEvent.id)))


def test_notes_are_kept_in_the_history_without_changing_the_status(client, alerts):
    admin = hq_login(client)
    a = alerts["ids"][0]
    resp = client.post(f"{HQ}/diversion-alerts/{a}/notes", json={"text": "已致电分销商"}, headers=admin)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["status"] == "open" and body["events"][-1]["kind"] == "note"
    assert body["events"][-1]["note"] == "已致电分销商" and body["events"][-1]["user_name"]


def test_a_region_bound_analyst_sees_and_handles_only_their_region(client, alerts):
    zj = hq_login(client, "analyst_zj")
    zj_alert, gd_alert, consumer_alert = alerts["ids"]
    listed = client.get(f"{HQ}/diversion-alerts", headers=zj).get_json()
    assert {i["id"] for i in listed["items"]} == {zj_alert, consumer_alert} and listed["total"] == 2
    assert client.get(f"{HQ}/diversion-alerts/{gd_alert}", headers=zj).status_code == 403
    resp = _status(client, zj, gd_alert, "investigating")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "out_of_scope"
    assert client.post(f"{HQ}/diversion-alerts/{gd_alert}/notes", json={"text": "x"}, headers=zj).status_code == 403
    assert _status(client, zj, zj_alert, "investigating").status_code == 200
    assert db.session.get(DiversionAlert, gd_alert).status == "open"
    # The warehouse operator reads alerts but does not handle them.
    wh = hq_login(client, "warehouse")
    assert client.get(f"{HQ}/diversion-alerts/{zj_alert}", headers=wh).status_code == 200
    assert _status(client, wh, zj_alert, "confirmed", "x").status_code == 403


def test_filters_in_sql_and_names_beside_ids(client, alerts):
    admin = hq_login(client)
    zj_alert, gd_alert, consumer_alert = alerts["ids"]

    def ids(query, headers=admin):
        resp = client.get(f"{HQ}/diversion-alerts?{query}", headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return {i["id"] for i in resp.get_json()["items"]}

    assert ids("region=330000") == {zj_alert, consumer_alert}   # a province takes in its cities
    assert ids("region=440000") == {gd_alert, consumer_alert}   # the consumer was in Shenzhen
    s2 = db.session.get(Store, alerts["stores"]["S2"])
    assert gd_alert in ids(f"region={s2.city_code}")            # a city takes in its districts
    assert ids("source=consumer") == {consumer_alert}
    assert ids(f"sku_id={db.session.get(DiversionAlert, gd_alert).sku_id}") >= {gd_alert}
    since = (datetime.now(UTC) - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert ids(f"from={since}") == {zj_alert, consumer_alert}
    assert ids(f"to={since}") == {gd_alert}
    _status(client, admin, zj_alert, "investigating")
    assert ids("status=investigating") == {zj_alert} and ids("status=open") == {gd_alert, consumer_alert}
    assert ids("status=open", hq_login(client, "analyst_zj")) == {consumer_alert}
    assert client.get(f"{HQ}/diversion-alerts?status=closed", headers=admin).status_code == 422
    assert client.get(f"{HQ}/diversion-alerts?region=33", headers=admin).status_code == 422

    item = next(i for i in client.get(f"{HQ}/diversion-alerts", headers=admin).get_json()["items"]
                if i["id"] == zj_alert)
    s1, s3 = (db.session.get(Store, alerts["stores"][c]) for c in ("S1", "S3"))
    assert item["actual_store_name"] == s1.name and item["expected_store_name"] == s3.name
    assert item["actual_distributor_name"] == db.session.get(Partner, s1.distributor_id).name
    assert item["sku_name"] == db.session.get(Sku, item["sku_id"]).name
    assert item["actual_region_name"] == "杭州市" and item["expected_region_name"]
    assert item["status"] == "investigating" and item["handled_by_name"]


def test_export_has_the_filtered_alerts_with_names(client, alerts):
    admin = hq_login(client)
    resp = client.get(f"{HQ}/diversion-alerts?format=csv&region=330000", headers=admin)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert sorted(int(r["预警编号"]) for r in rows) == sorted([alerts["ids"][0], alerts["ids"][2]])
    s1 = db.session.get(Store, alerts["stores"]["S1"])
    sold = next(r for r in rows if int(r["预警编号"]) == alerts["ids"][0])
    assert sold["实际门店"] == s1.name and sold["处理状态"] == "待处理" and sold["来源"] == "门店售出"
    assert sold["实际地区"] == "杭州市"
    xlsx = client.get(f"{HQ}/diversion-alerts?format=xlsx", headers=hq_login(client, "analyst_zj"))
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    values = list(sheet.values)
    assert values[0][0] == "预警编号" and {v[0] for v in values[1:]} == {alerts["ids"][0], alerts["ids"][2]}
