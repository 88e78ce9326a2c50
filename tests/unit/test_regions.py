"""China's administrative divisions."""

from __future__ import annotations

import pytest

from app.core import regions


def test_names():
    assert regions.region_name("330000") == "浙江省"
    assert regions.region_name("330100") == "杭州市"
    assert regions.region_name("330106") == "西湖区"
    assert regions.region_name("440300") == "深圳市"


@pytest.mark.parametrize(("placeholder", "municipality"), [
    ("110100", "北京市"), ("120100", "天津市"), ("310100", "上海市"), ("500100", "重庆市"),
])
def test_municipality_placeholder_cities_read_as_the_municipality(placeholder, municipality):
    assert regions.get_region(placeholder).name == "市辖区"
    assert regions.region_name(placeholder) == municipality


def test_unknown_code_reads_as_itself():
    assert regions.region_name("999999") == "999999"
    assert regions.region_name(None) == ""


def test_levels_and_validity():
    assert regions.is_valid("330000", "province") and regions.is_valid("330100", "city")
    assert regions.is_valid("330106", "district") and not regions.is_valid("330106", "city")
    assert not regions.is_valid("330199") and not regions.is_valid("") and not regions.is_valid(None)


def test_split():
    assert regions.split("330106") == ("330000", "330100", "330106")
    assert regions.split("330100") == ("330000", "330100", None)
    assert regions.split("110101") == ("110000", "110100", "110101")
    with pytest.raises(KeyError):
        regions.split("999999")


def test_children():
    provinces = regions.provinces()
    assert len(provinces) >= 31 and all(p.level == "province" for p in provinces)
    cities = regions.children("330000")
    assert {c.code for c in cities} >= {"330100", "330200"} and all(c.code.startswith("33") for c in cities)
    districts = regions.children("330100")
    assert "330106" in {d.code for d in districts} and all(d.level == "district" for d in districts)
    assert regions.children("330106") == [] and regions.children("999999") == []
    assert [c.code for c in regions.children("110000")] == ["110100"]


def test_api_lists_regions(client, owner):
    provinces = client.get("/api/hq/v1/regions", headers=owner).get_json()
    assert {"code": "330000", "name": "浙江省", "level": "province", "label": "浙江省"} in provinces
    cities = client.get("/api/hq/v1/regions?parent=330000", headers=owner).get_json()
    assert any(c["code"] == "330100" for c in cities)
    assert client.get("/api/hq/v1/regions?parent=33", headers=owner).status_code == 422
    assert client.get("/api/hq/v1/regions").status_code == 401
