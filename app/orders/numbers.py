"""Order numbers a person can read out over the phone: the business date, six digits and a check digit.

`20261123-482915-7` is written without dashes (`202611234829157`, 15 digits) so WeChat Pay takes it as the
out_trade_no as it is; the check digit (Luhn) catches one mistyped or two swapped digits when it is read back.
"""

from __future__ import annotations

import secrets
from datetime import date


def luhn_digit(digits: str) -> int:
    """The Luhn check digit for a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def make_order_number(day: date, serial: int | None = None) -> str:
    """A new order number for `day` (random six digits unless `serial` is given)."""
    body = f"{day:%Y%m%d}{(secrets.randbelow(900_000) + 100_000) if serial is None else serial:06d}"
    return body + str(luhn_digit(body))


def is_valid_order_number(text: str) -> bool:
    """Whether `text` (dashes and spaces allowed) is a well-formed order number with a correct check digit."""
    digits = text.replace("-", "").replace(" ", "")
    return len(digits) == 15 and digits.isdigit() and luhn_digit(digits[:-1]) == int(digits[-1])


def format_order_number(number: str) -> str:
    """The number grouped for reading aloud: 20261123-482915-7."""
    return f"{number[:8]}-{number[8:14]}-{number[14:]}"
