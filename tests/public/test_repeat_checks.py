"""The consumer page names the brand, the product, when and where (the city) the unit was sold and the brand's
service contact; a reload by the same phone (its first-party cookie) within 24 hours is not another check."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.catalog.models import Product, Sku
from app.extensions import db
from app.verification.models import VerifyViewer
from tests.scans.helpers import body, codes_in


def _count(client, serial):
    resp = client.get(f"/api/public/v1/verify?code={serial}")
    assert resp.status_code == 200
    return resp.get_json()["times_verified"]


def test_a_reload_by_the_same_phone_is_not_another_check(app, client, demo):
    serial = codes_in("S1")[0].serial
    assert [_count(client, serial) for _ in range(4)] == [1, 1, 1, 1]
    other = app.test_client()  # another phone
    assert _count(other, serial) == 2 and _count(other, serial) == 2
    assert _count(client, serial) == 2
    # The cookie: random, HttpOnly, SameSite=Lax, for the whole site; only its hash is kept.
    cookie = client.get_cookie("vid")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax" and len(cookie.value) >= 16
    keys = set(db.session.scalars(sa.select(VerifyViewer.viewer)))
    assert len(keys) == 2 and cookie.value not in keys and all(len(k) == 64 for k in keys)


def test_the_same_phone_counts_again_after_the_window(client, demo):
    from app.verification.services import REPEAT_WINDOW

    serial = codes_in("S1")[0].serial
    assert _count(client, serial) == 1
    for seen in db.session.scalars(sa.select(VerifyViewer)):  # the last counted check, 24 hours and a second ago
        seen.counted_at = seen.counted_at - REPEAT_WINDOW - timedelta(seconds=1)
    db.session.commit()
    assert _count(client, serial) == 2 and _count(client, serial) == 2


def test_a_bad_cookie_is_replaced_and_each_unit_counts_once_per_phone(client, demo):
    a, b = (c.serial for c in codes_in("S1", n=2))
    client.set_cookie("vid", "x")  # not one of ours: a new one is given
    assert _count(client, a) == 1
    assert client.get_cookie("vid").value != "x"
    assert _count(client, b) == 1 and _count(client, a) == 1 and _count(client, b) == 1


def test_the_page_names_brand_product_sale_and_service_contact(app, client, owner):
    code = codes_in("S1")[0]
    sku = db.session.get(Sku, code.sku_id)
    product = db.session.get(Product, sku.product_id)
    page = client.get(f"/c/01/{sku.gtin}/21/{code.serial}").get_data(as_text=True)
    assert "尚未售出" in page and f"品牌：{product.brand}" in page and sku.name in page
    assert app.config["BRAND_SERVICE_CONTACT"] in page
    assert client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner).get_json()["status"] == "accepted"
    answer = client.get(f"/c/01/{sku.gtin}/21/{code.serial}", headers={"Accept": "application/json"}).get_json()
    assert answer["sold"] and answer["sold_city"] == "杭州市" and answer["product"]["brand"] == product.brand
    assert answer["service_contact"] == app.config["BRAND_SERVICE_CONTACT"]
    page = client.get(f"/c/01/{sku.gtin}/21/{code.serial}").get_data(as_text=True)
    assert "在杭州市售出" in page and "年" in page.split("在杭州市售出")[0][-20:]


def test_a_product_without_a_brand_shows_hqs_brand_setting(app, client, demo):
    code = codes_in("S1")[0]
    sku = db.session.get(Sku, code.sku_id)
    db.session.execute(sa.update(Product).where(Product.id == sku.product_id).values(brand=""))
    db.session.commit()
    answer = client.get(f"/api/public/v1/verify?code={code.serial}").get_json()
    assert answer["product"]["brand"] == app.config["BRAND_NAME"]


def test_hq_sets_the_brand_and_service_contact_the_page_shows(app, client, demo):
    from tests.conftest import hq_login

    admin = hq_login(client)
    url = "/api/hq/v1/consumer-settings"
    assert client.get(url, headers=admin).get_json() == {"brand_name": app.config["BRAND_NAME"],
                                                        "service_contact": app.config["BRAND_SERVICE_CONTACT"]}
    for bad in ({"brand_name": "", "service_contact": "x"}, {"brand_name": "x"},
                {"brand_name": "x", "service_contact": "y" * 201}):
        assert client.put(url, json=bad, headers=admin).status_code == 422, bad
    assert client.put(url, json={"brand_name": "x", "service_contact": "y"},
                      headers=hq_login(client, "analyst")).status_code == 403
    assert client.get(url, headers=admin).get_json()["service_contact"] == app.config["BRAND_SERVICE_CONTACT"]
    new = {"brand_name": "清泉乳业", "service_contact": "客服电话 400-123-4567（工作日 9:00–18:00）"}
    assert client.put(url, json=new, headers=admin).get_json() == new
    code = codes_in("S1")[0]
    sku = db.session.get(Sku, code.sku_id)
    db.session.execute(sa.update(Product).where(Product.id == sku.product_id).values(brand=""))
    db.session.commit()
    page = client.get(f"/c/01/{sku.gtin}/21/{code.serial}").get_data(as_text=True)
    assert "品牌：清泉乳业" in page and new["service_contact"] in page
