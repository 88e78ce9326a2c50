"""What makes two registrations the same shop: a licence number, a mobile number, a name in a district.

Pure rules (no database): each key is normalized here so that the same shop written two ways gives the same key,
and a unique index on (kind, value) over the keys of active registrations lets only one partner hold a shop.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from app.core import regions
from app.errors import ValidationFailed

LICENCE = "licence"
PHONE = "phone"
NAME = "name_district"
KIND_NAMES = {LICENCE: "营业执照号", PHONE: "手机号", NAME: "店名和区县"}

# 统一社会信用代码 (GB 32100-2015): 18 characters from this alphabet (no I, O, S, V, Z); the 18th is a check
# character over the first 17, with weights 3^i mod 31.
LICENCE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_LICENCE_VALUE = {c: i for i, c in enumerate(LICENCE_ALPHABET)}
_LICENCE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_LICENCE_SHAPE = re.compile(f"[{LICENCE_ALPHABET}]{{18}}")
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Rows of the adcode list that name no place an address would mention (a municipality's "市辖区").
_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def licence_check_char(first17: str) -> str:
    """The check character of the first 17 characters of a credit code."""
    total = sum(_LICENCE_VALUE[c] * w for c, w in zip(first17, _LICENCE_WEIGHTS, strict=True))
    return LICENCE_ALPHABET[(31 - total % 31) % 31]


def normalize_licence(raw: str) -> str:
    """The credit code in upper case without spaces, or `licence_invalid` (wrong length, letters or check)."""
    text = unicodedata.normalize("NFKC", raw or "")
    code = re.sub(r"[\s\-]", "", text).upper()
    if not _LICENCE_SHAPE.fullmatch(code) or licence_check_char(code[:17]) != code[17]:
        raise ValidationFailed("营业执照号（统一社会信用代码）不对，请核对 18 位号码", code="licence_invalid",
                               details={"fields": {"licence_no": ["18 位统一社会信用代码，校验位不符"]}})
    return code


def normalize_phone(raw: str) -> str:
    """An 11-digit mainland mobile number (+86, spaces, dashes and brackets dropped), or `phone_invalid`."""
    text = unicodedata.normalize("NFKC", raw or "")
    digits = re.sub(r"[\s\-()]", "", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise ValidationFailed("手机号不对，请填 11 位手机号", code="phone_invalid",
                               details={"fields": {"phone": ["11 位手机号，1 开头"]}})
    return digits


def normalize_name(raw: str) -> str:
    """A shop name as a key: full-width to half-width (NFKC), lower case, no spaces or punctuation."""
    text = unicodedata.normalize("NFKC", raw or "").lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def name_key(name: str, area_code: str) -> str:
    """The name-in-district key: the district (or city) code and the normalized name."""
    normalized = normalize_name(name)
    if not normalized:
        raise ValidationFailed("店名不能只有空格或符号", code="name_invalid",
                               details={"fields": {"name": ["请填写店名"]}})
    return f"{area_code}:{normalized}"


def area_code(region_code: str) -> str:
    """The district of a region code, else its city (a municipality's district is its own)."""
    region = regions.get_region(region_code)
    assert region is not None
    return region.code if region.level == "district" else (region.city_code or region.code)


def resolve_region(region_code: str | None, address: str) -> str:
    """The registration's region: the code given (a city or district), else the district the address names;
    `region_invalid` when neither gives one."""
    if region_code:
        region = regions.get_region(region_code)
        if region is None or region.level == "province" or len(region_code) != 6:
            raise ValidationFailed("地区不对，请选到市或区县", code="region_invalid",
                                   details={"fields": {"region_code": ["找不到这个市或区县"]}})
        return region.code
    found = parse_region(address)
    if found is None:
        raise ValidationFailed("没能从地址认出区县，请选择地区", code="region_invalid",
                               details={"fields": {"region_code": ["请选择地区"]}})
    return found


_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市", "区", "县", "旗")


def _short(name: str) -> str | None:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


@cache
def _names() -> dict[str, list[tuple[str, str, int]]]:
    """(name, code, 2 for the full name or 1 for the name without its suffix) of every place, by level."""
    out: dict[str, list[tuple[str, str, int]]] = {"province": [], "city": [], "district": []}
    for region in regions.all_regions().values():
        if region.name in _PLACEHOLDERS:
            continue
        out[region.level].append((region.name, region.code, 2))
        short = _short(region.name)
        if short:
            out[region.level].append((short, region.code, 1))
    return out


def _named(text: str, level: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, code, score in _names()[level]:
        if name in text:
            found[code] = max(found.get(code, 0), score)
    return found


def _best(found: dict[str, int]) -> str | None:
    if not found:
        return None
    top = max(found.values())
    best = [code for code, score in found.items() if score == top]
    return best[0] if len(best) == 1 else None


def parse_region(address: str) -> str | None:
    """The district an address names (inside the province and city it names, when it names them), else its city;
    None when the address names none, or more than one that fits."""
    text = unicodedata.normalize("NFKC", address or "").replace(" ", "")
    if not text:
        return None
    provinces = set(_named(text, "province"))
    all_cities = _named(text, "city")
    # A province's short name can sit inside a street name (天河北路: 河北): a filter that leaves nothing is dropped.
    cities = {c: s for c, s in all_cities.items() if c[:2] + "0000" in provinces} or all_cities
    all_districts = _named(text, "district")
    districts = {}
    for wanted in ((lambda c: c[:4] + "00" in cities and c[:2] + "0000" in provinces),
                   (lambda c: c[:2] + "0000" in provinces), (lambda c: c[:4] + "00" in cities), (lambda c: True)):
        districts = {c: s for c, s in all_districts.items() if wanted(c)}
        if districts:
            break
    return _best(districts) or (None if districts else _best(cities))


def identity_keys(*, phone: str, name: str, area: str, licence: str | None) -> list[tuple[str, str]]:
    """Every key of one shop (already normalized phone and licence): the licence first, then phone, then name."""
    keys = [(LICENCE, licence)] if licence else []
    keys += [(PHONE, phone), (NAME, name_key(name, area))]
    return keys
