"""The identity of a shop for registrations: licence number (with its check character), mobile, name in district."""

from __future__ import annotations

import pytest

from app.channel import identity
from app.errors import ValidationFailed

# Published credit codes (their check characters computed by their issuers).
REAL_CODES = ["91110108551385082Q", "91330100716105852F", "914403001922038216", "91310000607216596U",
              "9144030071526726XG"]


@pytest.mark.parametrize("code", REAL_CODES)
def test_published_codes_pass_their_check(code):
    assert identity.licence_check_char(code[:17]) == code[17]
    assert identity.normalize_licence(code) == code


def test_licence_is_normalized():
    assert identity.normalize_licence(" 9111 0108-5513 8508 2q ") == "91110108551385082Q"
    assert identity.normalize_licence("９１１１０１０８５５１３８５０８２Ｑ") == "91110108551385082Q"  # full-width


@pytest.mark.parametrize("bad", [
    "91110108551385082A",  # wrong check character
    "91110108551385082",  # 17 characters
    "91110108551385082QQ",  # 19
    "9111010855138508IQ",  # I is not in the alphabet
    "91110108551385O82Q",  # nor O
    "",
])
def test_bad_licences_are_refused(bad):
    with pytest.raises(ValidationFailed) as err:
        identity.normalize_licence(bad)
    assert err.value.code == "licence_invalid" and err.value.status == 422


def test_every_single_character_change_is_caught():
    code = REAL_CODES[0]
    for i in range(17):
        for c in identity.LICENCE_ALPHABET:
            if c != code[i]:
                changed = code[:i] + c + code[i + 1:]
                assert identity.licence_check_char(changed[:17]) != changed[17] or changed == code


@pytest.mark.parametrize(("raw", "phone"), [
    ("13800000001", "13800000001"), ("+86 138 0000 0001", "13800000001"), ("86-138-0000-0001", "13800000001"),
    ("0086 13800000001", "13800000001"), ("(+86)19912345678", "19912345678"), ("１３８０００００００１", "13800000001"),
])
def test_mobiles_are_normalized(raw, phone):
    assert identity.normalize_phone(raw) == phone


@pytest.mark.parametrize("bad", ["1380000000", "138000000011", "12800000001", "0571-88888888", "abc", "",
                                 "+1 13800000001"])
def test_bad_mobiles_are_refused(bad):
    with pytest.raises(ValidationFailed) as err:
        identity.normalize_phone(bad)
    assert err.value.code == "phone_invalid"


def test_names_in_district_compare_after_normalizing():
    a = identity.name_key("老王 便利店（西湖店）", "330106")
    b = identity.name_key("老王便利店(西湖店)", "330106")
    c = identity.name_key("ＬＡＯ ＷＡＮＧ Mart!", "330106")
    assert a == b == "330106:老王便利店西湖店"
    assert c == "330106:laowangmart"
    assert identity.name_key("老王便利店西湖店", "330105") != a
    with pytest.raises(ValidationFailed) as err:
        identity.name_key(" ！！ ", "330106")
    assert err.value.code == "name_invalid"


@pytest.mark.parametrize(("address", "code"), [
    ("杭州市西湖区文三路 88 号", "330106"), ("杭州市上城区湖滨路 20 号", "330102"),
    ("广州市天河区天河北路 5 号", "440106"), ("北京市朝阳区建国路 1 号", "110105"),
    ("浙江省宁波市海曙区中山西路", "330203"), ("深圳南山区南海大道", "440305"), ("上海市浦东新区世纪大道", "310115"),
    ("某某路 1 号", None), ("", None),
])
def test_region_is_read_from_the_address(address, code):
    assert identity.parse_region(address) == code


def test_region_given_must_be_a_city_or_district():
    assert identity.resolve_region("330106", "") == "330106"
    assert identity.resolve_region("330100", "") == "330100"
    for bad in ("330000", "999999", "33010", "abcdef"):
        with pytest.raises(ValidationFailed) as err:
            identity.resolve_region(bad, "杭州市西湖区")
        assert err.value.code == "region_invalid"
    with pytest.raises(ValidationFailed):
        identity.resolve_region(None, "某某路 1 号")


def test_keys_licence_first():
    keys = identity.identity_keys(phone="13800000001", name="老王", area="330106", licence="91110108551385082Q")
    assert keys == [("licence", "91110108551385082Q"), ("phone", "13800000001"), ("name_district", "330106:老王")]
