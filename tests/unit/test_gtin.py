"""GS1 check digits for GTIN-8/12/13/14."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.catalog.gtin import check_digit, is_valid_gtin, make_gtin, normalize_gtin


@pytest.mark.parametrize("gtin", [
    "96385074",          # GTIN-8
    "036000291452",      # GTIN-12 (UPC-A)
    "4006381333931",     # GTIN-13 (EAN-13)
    "6901234567892",     # GTIN-13, Chinese prefix
    "10614141000415",    # GTIN-14
    "00012345600012",    # GTIN-14 with leading zeros
])
def test_valid(gtin):
    assert is_valid_gtin(gtin)
    assert normalize_gtin(gtin) == gtin.rjust(14, "0")


@pytest.mark.parametrize("gtin", [
    "4006381333932",     # wrong check digit
    "96385075",
    "036000291453",
    "10614141000416",
    "400638133393",      # 12 digits but not a valid UPC
    "1234567",           # 7 digits
    "123456789",         # 9 digits
    "12345678901",       # 11 digits
    "123456789012345",   # 15 digits
    "",
    "40063813339A1",
    "4006381333931 ",
    " 4006381333931",
    "-400638133393",
    "４００６３８１３３３９３１",  # full-width digits are digits to str.isdigit, not to us
    "٤٠٠٦٣٨١٣٣٣٩٣١",
])
def test_invalid(gtin):
    assert not is_valid_gtin(gtin)
    if gtin.strip() != gtin.strip(" "):
        return
    if gtin != gtin.strip():
        assert normalize_gtin(gtin) == gtin.strip().rjust(14, "0")  # surrounding spaces are forgiven
        return
    with pytest.raises(ValueError):
        normalize_gtin(gtin)


def test_not_a_string():
    assert not is_valid_gtin(4006381333931)  # type: ignore[arg-type]
    assert not is_valid_gtin(None)  # type: ignore[arg-type]


def test_make_gtin():
    assert make_gtin("400638133393") == "4006381333931"
    assert check_digit("400638133393") == 1


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(0, 9))
def test_exactly_one_check_digit_fits(body, digit):
    assert is_valid_gtin(body + str(digit)) == (digit == check_digit(body))


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), st.integers(0, 12), st.integers(1, 9))
def test_any_single_digit_error_is_caught(gtin_body, position, shift):
    gtin = make_gtin(gtin_body[:12])
    wrong = gtin[:position] + str((int(gtin[position]) + shift) % 10) + gtin[position + 1:]
    assert not is_valid_gtin(wrong)
