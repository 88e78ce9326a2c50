"""The consumer page and the public verify API tell a consumer what a consumer should see, and no more.

Genuine or not, the brand and the product, whether it was sold, when and in which city, when it was first checked
and how often, the brand's service contact: yes. The store that sold it (its name, code, address), its owner's
name or phone, the distributor, the district, internal ids of any row: never.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.catalog.models import Sku
from app.channel.models import Partner
from app.extensions import db
from tests.scans.helpers import body, codes_in, store

ALLOWED = {"genuine", "status", "reason", "message", "serial", "serial_grouped", "product", "state", "sold",
           "sold_at", "sold_city", "service_contact", "first_verified_at", "times_verified", "suspicious"}
PRODUCT = {"name", "product_name", "brand", "specification", "gtin"}


def keys_of(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix + k
            yield from keys_of(v, prefix + k + ".")
    elif isinstance(value, list):
        for v in value:
            yield from keys_of(v, prefix)


def secrets_of(store_code: str) -> list[str]:
    s = store(store_code)
    distributor = db.session.get(Partner, s.distributor_id)
    return [v for v in (s.name, s.owner_name, s.phone, s.address, s.code, distributor.name, distributor.code,
                        distributor.contact_phone) if v]


@pytest.fixture()
def sold_unit(client, owner):
    """A unit of S1, sold by its owner (so every field a sale fills is filled)."""
    code = codes_in("S1")[0]
    gtin = db.session.get(Sku, code.sku_id).gtin
    assert client.post("/api/mp/v1/scans", json=body(code.serial), headers=owner).get_json()["status"] == "accepted"
    return code.serial, gtin


def _reveals(secret: str, text: str) -> bool:
    """The secret as a token of its own: a short store code such as "D1" may occur inside a random serial."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


def _check(answer: dict, text: str) -> None:
    keys = set(keys_of(answer))
    top = {k for k in keys if "." not in k}
    assert top <= ALLOWED, top - ALLOWED
    assert {k.split(".", 1)[1] for k in keys if k.startswith("product.")} <= PRODUCT, keys
    assert not [k for k in keys if k.split(".")[-1] == "id" or k.endswith("_id")], keys
    for secret in secrets_of("S1"):
        assert not _reveals(secret, text), secret


def test_verify_api_answers_no_store_owner_and_no_internal_ids(client, sold_unit):
    serial, _gtin = sold_unit
    for url in (f"/api/public/v1/verify?code={serial}", f"/api/public/v1/verify?code={serial}&lat=22.54&lng=114.06"):
        resp = client.get(url)
        answer = resp.get_json()
        assert answer["genuine"] and answer["sold"] and answer["product"]["name"]
        _check(answer, resp.get_data(as_text=True))


def test_consumer_page_html_and_json_show_no_store_owner_and_no_internal_ids(client, sold_unit):
    serial, gtin = sold_unit
    js = client.get(f"/c/01/{gtin}/21/{serial}", headers={"Accept": "application/json"})
    _check(js.get_json(), js.get_data(as_text=True))
    html = client.get(f"/c/01/{gtin}/21/{serial}").get_data(as_text=True)
    assert "正品" in html
    for secret in secrets_of("S1"):
        assert not _reveals(secret, html), secret
    sku = db.session.get(Sku, db.session.scalar(sa.select(Sku.id).where(Sku.gtin == gtin)))
    assert f'"{sku.id}"' not in html and f">{sku.id}<" not in html


def test_the_city_is_told_and_the_store_is_not(client, sold_unit):
    """The consumer learns the city the unit was sold in (S1: Hangzhou), not the store, its district or address."""
    from app.core.regions import region_name

    serial, gtin = sold_unit
    s1 = store("S1")
    city = region_name(s1.city_code)
    answer = client.get(f"/api/public/v1/verify?code={serial}").get_json()
    assert answer["sold_city"] == city == "杭州市" and answer["sold_at"]
    html = client.get(f"/c/01/{gtin}/21/{serial}").get_data(as_text=True)
    assert f"在{city}售出" in html
    told = [answer["sold_city"], html]
    if s1.district_code and region_name(s1.district_code) not in city:
        assert all(region_name(s1.district_code) not in t for t in told), "the district narrows it to the store"
    for secret in secrets_of("S1"):
        assert all(not _reveals(secret, t) for t in told), secret


def test_unknown_and_case_codes_answer_no_more(client, demo):
    case = codes_in("S1", kind="case") or codes_in("S1", state="in_transit", kind="case")
    for code in ("ZZZZZZZZZZZZ", case[0].serial if case else "X"):
        resp = client.get(f"/api/public/v1/verify?code={code}")
        _check(resp.get_json(), resp.get_data(as_text=True))
