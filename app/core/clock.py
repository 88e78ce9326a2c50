"""UTC-aware time everywhere; business days are bucketed in Asia/Shanghai.

`BUSINESS_TZ` is the one source of the business time zone: Python reads it here, and the hot sell path hands its
name (`BUSINESS_TZ.key`) to its SQL functions, which bucket the sales inbox by it. No setting overrides it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def now_utc() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime (SQLite hands them back) as UTC; convert an aware one."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def business_day(value: datetime) -> date:
    """The calendar day in China on which an instant falls."""
    return as_utc(value).astimezone(BUSINESS_TZ).date()


def business_day_start(day: date) -> datetime:
    """The UTC instant at which a business day starts."""
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def today_business() -> date:
    """Today's date in China."""
    return business_day(now_utc())


def days_ago(days: int) -> datetime:
    return now_utc() - timedelta(days=days)


def local_text(value: datetime) -> str:
    """An instant as a Chinese reader expects it: '11月20日 14:05'."""
    local = as_utc(value).astimezone(BUSINESS_TZ)
    return f"{local.month}月{local.day}日 {local:%H:%M}"
