"""Serials and the parser for whatever a phone scanned (no database here).

A serial is 65 random bits written as 13 Crockford base32 characters plus one Luhn mod-32 check character,
so a mistyped or made-up serial is refused before any lookup. Printed as the GS1 Digital Link
`{CODE_URL_BASE}/01/{gtin14}/21/{serial}`; WeChat hands the mini-program the same URL, URL-encoded in `q`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from app.catalog.gtin import is_valid_gtin

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford's reading rules: letters people confuse with digits mean the digit.
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
SERIAL_BODY = 13
SERIAL_LENGTH = SERIAL_BODY + 1
_SEPARATORS = re.compile(r"[\s\-_.]+")
_MAX_INPUT = 512


# Every `code` a ScanParseError can have (a scan refused for it says it as its reason).
PARSE_ERRORS = ("not_a_code", "serial_too_short", "serial_too_long", "bad_check_character", "unknown_url", "bad_gtin",
                "empty_code", "code_too_long")


class ScanParseError(ValueError):
    """What was scanned is not one of our codes; `code` is stable, `message` is for a person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_char(body: str) -> str:
    """The Luhn mod-32 check character: catches every single wrong character and most swaps of neighbours."""
    factor, total, n = 2, 0, 32
    for ch in reversed(body):
        addend = factor * _INDEX[ch]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_serial() -> str:
    """A fresh random serial with its check character."""
    while True:
        bits = secrets.randbits(SERIAL_BODY * 5)
        body = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(SERIAL_BODY))
        serial = body + check_char(body)
        if not serial.isdigit():  # an all-digit serial would read as a GTIN-14
            return serial


def new_serials(count: int) -> list[str]:
    """`count` fresh serials (duplicates within the list removed and replaced)."""
    out: set[str] = set()
    while len(out) < count:
        out.update(new_serial() for _ in range(count - len(out)))
    return list(out)


def grouped(serial: str) -> str:
    """A serial as people read it out: ABCD-EFGH-JKMN-PQ."""
    return "-".join(serial[i:i + 4] for i in range(0, len(serial), 4))


def normalize_serial(text: str) -> str:
    """The serial in canonical form, or ScanParseError saying what is wrong with it."""
    raw = _SEPARATORS.sub("", text).upper().translate(_READ_AS)
    if not raw or any(ch not in _INDEX for ch in raw):
        raise ScanParseError("not_a_code", "这不是本品牌的商品码")
    if len(raw) < SERIAL_LENGTH:
        raise ScanParseError("serial_too_short", "码太短了，可能没扫全，请重新扫码")
    if len(raw) > SERIAL_LENGTH:
        raise ScanParseError("serial_too_long", "码太长了，不是本品牌的商品码")
    if check_char(raw[:-1]) != raw[-1]:
        raise ScanParseError("bad_check_character", "码的校验位不对，可能输错了或是假码")
    return raw


def code_url(base: str, gtin14: str, serial: str) -> str:
    """The printed URL (GS1 Digital Link)."""
    return f"{base.rstrip('/')}/01/{gtin14}/21/{serial}"


@dataclass(frozen=True)
class Scanned:
    """What a scan resolved to: a serial (maybe with the GTIN printed beside it) or a bare GTIN."""

    serial: str | None = None
    gtin: str | None = None  # 14 digits


_DIGITAL_LINK = re.compile(r"(?:^|/)01/(\d{8,14})/21/([^/?#]+)/?$")


def _from_path(path: str) -> Scanned:
    m = _DIGITAL_LINK.search(unquote(path))
    if not m:
        raise ScanParseError("unknown_url", "这个链接不是本品牌的商品码")
    gtin, serial = m.group(1), m.group(2)
    if not is_valid_gtin(gtin):
        raise ScanParseError("bad_gtin", "商品条码的校验位不对")
    return Scanned(serial=normalize_serial(serial), gtin=gtin.rjust(14, "0"))


_CANONICAL = re.compile(f"[{ALPHABET}]{{{SERIAL_LENGTH}}}")


def parse_scan(text: object) -> Scanned:
    """Whatever the camera or a person gave us → a serial or a GTIN; anything else is refused with a reason."""
    if (type(text) is str and len(text) == SERIAL_LENGTH and _CANONICAL.fullmatch(text) and not text.isdigit()
            and check_char(text[:-1]) == text[-1]):
        return Scanned(serial=text)  # a serial as we print it: no spelling to undo (anything else is read below)
    if not isinstance(text, str):
        raise ScanParseError("not_a_code", "这不是本品牌的商品码")
    text = text.strip()
    if not text:
        raise ScanParseError("empty_code", "没有扫到内容，请重新扫码")
    if len(text) > _MAX_INPUT:
        raise ScanParseError("code_too_long", "扫到的内容太长，不是本品牌的商品码")
    # WeChat's "scan an ordinary QR code to open the mini-program" passes the URL encoded in `q`.
    if text.startswith("q=") or "?q=" in text or "&q=" in text:
        query = text.split("?", 1)[1] if "?" in text and not text.startswith("q=") else text
        values = parse_qs(query).get("q")
        if not values:
            raise ScanParseError("unknown_url", "这个链接不是本品牌的商品码")
        return parse_scan(values[0])
    if "%2F" in text.upper() and "://" not in text:
        text = unquote(text)
    if "://" in text or text.startswith("/"):
        parts = urlsplit(text)
        if parts.scheme and parts.scheme.lower() not in ("http", "https"):
            raise ScanParseError("unknown_url", "这个链接不是本品牌的商品码")
        return _from_path(parts.path)
    compact = _SEPARATORS.sub("", text)
    if compact.isascii() and compact.isdigit():
        if len(compact) in (8, 12, 13, 14):
            if not is_valid_gtin(compact):
                raise ScanParseError("bad_gtin", "商品条码的校验位不对，请重新扫码")
            return Scanned(gtin=compact.rjust(14, "0"))
        if len(compact) != SERIAL_LENGTH:
            raise ScanParseError("not_a_code", "这串数字不是商品条码，也不是本品牌的商品码")
    return Scanned(serial=normalize_serial(text))
