"""Consumer verification and the printed code's page."""

from __future__ import annotations

from urllib.parse import quote

from tests.scans.helpers import codes_in


def test_verify_counts_and_flags_repetition(client, demo):
    code = codes_in("S1")[0]
    first = client.get(f"/api/public/v1/verify?code={code.serial}").get_json()
    assert first["genuine"] and first["times_verified"] == 1 and first["first_verified_at"]
    assert first["product"]["name"] and first["status"] == "genuine"
    for _ in range(5):
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
    assert js.get_json()["genuine"] and js.get_json()["times_verified"] == 2
    bad = client.get("/c/01/123/21/XYZ", headers={"Accept": "application/json"})
    assert bad.status_code == 200 and bad.get_json()["genuine"] is False
