"""China's administrative divisions (adcodes), read from the data file the `cpca` package ships.

Source: `cpca/resources/adcodes.csv` (3,511 province/city/district codes with coordinates), maintained in the
cpca project. We read the CSV directly rather than importing cpca, which would pull pandas into every process.
Codes there are 12 digits; we use the usual 6-digit adcode (e.g. 440300 深圳市).
"""

from __future__ import annotations

import csv
import importlib.resources
import math
from dataclasses import dataclass
from functools import cache

# Placeholder city rows of the municipalities (北京 110100 "市辖区"): their city is the province itself.
_PLACEHOLDER_CITY_NAMES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: str  # province | city | district
    lng: float
    lat: float

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"

    @property
    def city_code(self) -> str | None:
        return None if self.level == "province" else self.code[:4] + "00"


def _level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "district"


@cache
def all_regions() -> dict[str, Region]:
    """Every region by 6-digit code."""
    out: dict[str, Region] = {}
    with importlib.resources.files("cpca").joinpath("resources/adcodes.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            code = row["adcode"][:6]
            out[code] = Region(code=code, name=row["name"], level=_level(code),
                               lng=float(row["longitude"] or 0), lat=float(row["latitude"] or 0))
    return out


def get_region(code: str | None) -> Region | None:
    return all_regions().get((code or "")[:6]) if code else None


def region_name(code: str | None) -> str:
    """The name a person reads for a code; a municipality's placeholder city reads as the municipality."""
    region = get_region(code)
    if region is None:
        return code or ""
    if region.level == "city" and region.name in _PLACEHOLDER_CITY_NAMES:
        province = get_region(region.province_code)
        return province.name if province else region.name
    return region.name


def is_valid(code: str | None, level: str | None = None) -> bool:
    region = get_region(code)
    return region is not None and (level is None or region.level == level)


def split(code: str) -> tuple[str, str | None, str | None]:
    """(province, city, district) codes for any region code."""
    region = get_region(code)
    if region is None:
        raise KeyError(code)
    province = region.province_code
    city = region.city_code
    district = region.code if region.level == "district" else None
    return province, city, district


def provinces() -> list[Region]:
    return sorted((r for r in all_regions().values() if r.level == "province"), key=lambda r: r.code)


def children(code: str) -> list[Region]:
    """The cities of a province, or the districts of a city."""
    parent = get_region(code)
    if parent is None:
        return []
    if parent.level == "province":
        return sorted((r for r in all_regions().values() if r.level == "city" and r.code[:2] == code[:2]),
                      key=lambda r: r.code)
    if parent.level == "city":
        return sorted((r for r in all_regions().values() if r.level == "district" and r.code[:4] == code[:4]),
                      key=lambda r: r.code)
    return []


def picker_choices(code: str | None) -> dict:
    """What a province → city → district picker shows for a chosen code: the options of each level (the cities of
    the chosen province, the districts of the chosen city) and which one of each is chosen."""
    region = get_region(code)
    province = city = district = None
    if region is not None:
        province, city, district = split(region.code)
    return {"provinces": provinces(), "province": province, "city": city, "district": district,
            "cities": children(province) if province else [], "districts": children(city) if city else []}


def _km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2)
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


@cache
def _places() -> tuple[tuple[float, float, str], ...]:
    """(lat, lng, city code) of every city and district centre: a point's city is the city of the nearest one."""
    return tuple((r.lat, r.lng, r.city_code) for r in all_regions().values()
                 if r.level != "province" and r.city_code and (r.lat or r.lng))


def locate_city(lat: float, lng: float) -> tuple[str, float] | None:
    """The city a point is in, by the nearest city or district centre, with the distance to it in km.

    Good to a district's width: enough to tell Hangzhou from Shenzhen, not to draw a border street by street.
    """
    best = min(_places(), key=lambda p: (p[0] - lat) ** 2 + ((p[1] - lng) * math.cos(math.radians(lat))) ** 2,
               default=None)
    return None if best is None else (best[2], _km(lat, lng, best[0], best[1]))


def km_to_city(lat: float, lng: float, city_code: str) -> float | None:
    """How far a point is from a city: the distance to the nearest of its centre and its districts' centres."""
    distances = [_km(lat, lng, p[0], p[1]) for p in _places() if p[2] == city_code]
    return min(distances) if distances else None
