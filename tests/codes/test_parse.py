"""The scan parser and the serial check character (no database)."""

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.codes.parse import (
    ALPHABET,
    SERIAL_LENGTH,
    ScanParseError,
    check_char,
    grouped,
    new_serial,
    normalize_serial,
    parse_scan,
)

GTIN = "06901234567892"


def test_serials_are_long_random_and_valid():
    serials = {new_serial() for _ in range(2000)}
    assert len(serials) == 2000
    for s in serials:
        assert len(s) == SERIAL_LENGTH and normalize_serial(s) == s


def test_every_accepted_spelling():
    s = new_serial()
    url = f"https://q.example.com/01/{GTIN}/21/{s}"
    assert parse_scan(url).serial == s and parse_scan(url).gtin == GTIN
    assert parse_scan(url + "?utm=x&y=1").serial == s
    assert parse_scan("q=" + quote(url, safe="")).serial == s
    assert parse_scan("pages/scan/index?q=" + quote(url, safe="") + "&scancode_time=1").serial == s
    assert parse_scan(grouped(s).lower()).serial == s
    assert parse_scan(" ".join(grouped(s).split("-"))).serial == s
    assert parse_scan("6901234567892").gtin == GTIN
    assert parse_scan(GTIN).gtin == GTIN


@pytest.mark.parametrize("text,code", [
    ("", "empty_code"),
    ("hello world!", "not_a_code"),
    ("6901234567893", "bad_gtin"),
    ("https://evil.example.com/some/page", "unknown_url"),
    ("ftp://q.example.com/01/06901234567892/21/ABC", "unknown_url"),
    ("ABCD", "serial_too_short"),
    ("ABCDEFGHJKMNPQRST", "serial_too_long"),
    ("x" * 600, "code_too_long"),
    ("12345", "not_a_code"),
])
def test_refusals_say_why(text, code):
    with pytest.raises(ScanParseError) as err:
        parse_scan(text)
    assert err.value.code == code and err.value.message


def test_non_string_is_refused():
    with pytest.raises(ScanParseError):
        parse_scan(None)


@given(st.integers(min_value=0, max_value=SERIAL_LENGTH - 1), st.sampled_from(ALPHABET))
def test_any_single_wrong_character_is_caught(pos, ch):
    s = "0123456789ABC"
    s = s + check_char(s)
    if s[pos] == ch:
        return
    typo = s[:pos] + ch + s[pos + 1:]
    with pytest.raises(ScanParseError) as err:
        normalize_serial(typo)
    assert err.value.code == "bad_check_character"


def test_swapped_neighbours_mostly_caught():
    caught = total = 0
    for _ in range(300):
        s = new_serial()
        for i in range(len(s) - 1):
            if s[i] == s[i + 1]:
                continue
            total += 1
            swapped = s[:i] + s[i + 1] + s[i] + s[i + 2:]
            try:
                normalize_serial(swapped)
            except ScanParseError:
                caught += 1
    assert caught / total > 0.95
