"""GTIN-8/12/13/14 check digits (GS1 mod-10)."""

from __future__ import annotations


def check_digit(body: str) -> int:
    """The GS1 check digit for the digits before it."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def is_valid_gtin(value: str) -> bool:
    """Whether `value` is 8, 12, 13 or 14 digits with a correct check digit."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) not in (8, 12, 13, 14):
        return False
    return check_digit(value[:-1]) == int(value[-1])


def normalize_gtin(value: str) -> str:
    """A valid GTIN as 14 digits (leading zeros); raises ValueError otherwise."""
    value = (value or "").strip()
    if not is_valid_gtin(value):
        raise ValueError(f"not a valid GTIN: {value!r}")
    return value.rjust(14, "0")


def make_gtin(prefix: str) -> str:
    """A GTIN-13 from its first 12 digits (for demo data and tests)."""
    return prefix + str(check_digit(prefix))
