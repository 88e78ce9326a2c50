"""Consumer verification and the printed code's page."""

from __future__ import annotations

from urllib.parse import quote

from tests.scans.helpers import codes_in


def test_verify_counts_and_flags_repetition(client, demo):
    code = codes_in("S1")[0]
    first = client.get(f"/api/public/v1/verify?code={code.serial}").get_json()
    assert first["genuine"] and first["times_verified"] == 1 and first["first_verified_at"]
    assert first["product"]["name"] and first["status"] == "genuine"
    for _ in range(5):  # five more phones (a phone's own reload is not another check: test_repeat_checks.py)
        client.delete_cookie("vid")
        last = client.get(f"/api/public/v1/verify?code={code.serial}").get_json()
    assert last["suspicious"] and last["status"] == "suspicious" and last["times_verified"] == 6
    assert last["first_verified_at"] == first["first_verified_at"]


def test_verify_refuses_fakes_without_error(client, demo):
    code = codes_in("S1")[0]
    forged = code.serial[:-1] + ("0" if code.serial[-1] != "0" else "1")
    r = client.get(f"/api/public/v1/verify?code={forged}")
    assert r.status_code == 200 and r.get_json()["genuine"] is False and r.get_json()["status"] == "invalid"
    r = client.get("/api/public/v1/verify?code=" + quote("https://evil.example.com/x"))
    assert r.get_json()["genuine"] is False
    r = client.get("/api/public/v1/verify")
    assert r.status_code == 422


def test_printed_url_page_html_and_json(client, demo):
    from app.catalog.models import Sku
    from app.extensions import db

    code = codes_in("S1")[0]
    gtin = db.session.get(Sku, code.sku_id).gtin
    html = client.get(f"/c/01/{gtin}/21/{code.serial}")
    assert html.status_code == 200 and "正品" in html.get_data(as_text=True)
    js = client.get(f"/c/01/{gtin}/21/{code.serial}?s=1", headers={"Accept": "application/json"})
    assert js.get_json()["genuine"] and js.get_json()["times_verified"] == 1  # the same phone again
    client.delete_cookie("vid")
    js = client.get(f"/c/01/{gtin}/21/{code.serial}?s=1", headers={"Accept": "application/json"})
    assert js.get_json()["genuine"] and js.get_json()["times_verified"] == 2  # another phone
    bad = client.get("/c/01/123/21/XYZ", headers={"Accept": "application/json"})
    assert bad.status_code == 200 and bad.get_json()["genuine"] is False


def test_a_consumer_far_from_where_the_unit_was_shipped_raises_one_alert(client, demo, admin):
    """S1 is in Hangzhou: a check in Hangzhou (or just outside) is quiet; one in Shenzhen tells HQ, once."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.scans.models import DiversionAlert
    from tests.scans.helpers import store

    code = codes_in("S1")[0]
    serial, code_id = code.serial, code.id

    def check(lat, lng):
        r = client.get(f"/api/public/v1/verify?code={serial}&lat={lat}&lng={lng}")
        assert r.status_code == 200 and r.get_json()["genuine"], r.get_json()
        return r.get_json()

    def alerts():
        db.session.remove()
        return db.session.scalars(sa.select(DiversionAlert).where(DiversionAlert.code_id == code_id)).all()

    check(30.2741, 120.1551)  # West Lake, Hangzhou
    check(30.42, 120.30)  # Linping, on the city's edge
    check(48.8566, 2.3522)  # abroad: no trustworthy city
    assert alerts() == []
    answer = check(22.5431, 114.0579)  # Shenzhen
    assert "窜货" not in answer["message"]  # the consumer is told about the product, not about the channel
    check(22.55, 114.06)
    found = alerts()
    assert len(found) == 1
    a = found[0]
    assert (a.source, a.expected_region, a.actual_region, a.expected_store_id, a.actual_store_id) == (
        "consumer", "330100", "440300", store("S1").id, None)
    listed = client.get("/api/hq/v1/diversion-alerts?source=consumer", headers=admin).get_json()
    assert client.get("/api/hq/v1/diversion-alerts?source=sell", headers=admin).get_json()["total"] == 0
    assert [(i["serial"], i["source"], i["actual_region"]) for i in listed["items"]] == [(serial, "consumer", "440300")]


def test_a_location_needs_both_coordinates_in_range(client, demo):
    code = codes_in("S1")[0]
    for query in ("lat=30.27", "lng=120.1", "lat=91&lng=120", "lat=30&lng=abc"):
        r = client.get(f"/api/public/v1/verify?code={code.serial}&{query}")
        assert r.status_code == 422 and r.get_json()["error"]["code"] == "validation_failed", query


def test_a_case_code_is_not_called_a_fake(client, demo):
    case = codes_in("S1", kind="case") or codes_in("S1", state="in_transit", kind="case")
    assert case, "the demo ships cases to S1"
    r = client.get(f"/api/public/v1/verify?code={case[0].serial}").get_json()
    assert r["genuine"] is False and r["reason"] == "case_code" and "单件" in r["message"]
