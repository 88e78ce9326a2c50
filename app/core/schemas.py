"""Schema helpers shared by the HTTP edges (the only place besides the edges that imports marshmallow).

Every field type here is bounded to what the database and the clock can hold, so a value that passes a schema
can always be bound to a query and converted between time zones: integers within BIGINT, ids 1..BIGINT_MAX, days
and instants within `FIRST_DAY`..`LAST_DAY`. Importing this module also puts marshmallow's own messages into
Chinese (`install_messages`), so the `details` of a 422 read in the same language as its message.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from marshmallow import RAISE, Schema, fields, validate
from webargs.multidictproxy import MultiDictProxy

from app.core.clock import as_utc
from app.core.types import BIGINT_MAX, BIGINT_MIN

# The calendar the API accepts: far enough from year 1 and year 9999 that a day's previous period and its
# conversion between Asia/Shanghai and UTC always stay representable, and wide enough for any real record.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
_FIRST_INSTANT = datetime.combine(FIRST_DAY, time.min, tzinfo=UTC)
_LAST_INSTANT = datetime.combine(LAST_DAY, time.max, tzinfo=UTC)


# --- marshmallow's messages in Chinese ----------------------------------------------------------------------

# Field messages by field class (a subclass inherits its bases' messages and may override them).
FIELD_MESSAGES: dict[type[fields.Field], dict[str, str]] = {
    fields.Field: {"required": "必填", "null": "不能为空", "validator_failed": "值不对"},
    fields.Nested: {"type": "要是一个对象"},
    fields.List: {"invalid": "要是一个列表"},
    fields.Tuple: {"invalid": "要是一个列表"},
    fields.String: {"invalid": "要是文字", "invalid_utf8": "不是有效的 UTF-8 文字"},
    fields.UUID: {"invalid_uuid": "不是有效的 UUID"},
    fields.Number: {"invalid": "要是数字", "too_large": "数字太大"},
    fields.Integer: {"invalid": "要是整数"},
    fields.Float: {"special": "不能是 NaN 或无穷大"},
    fields.Decimal: {"special": "不能是 NaN 或无穷大"},
    fields.Boolean: {"invalid": "要是 true 或 false"},
    fields.DateTime: {"invalid": "不是有效的时间（ISO 8601，例如 2026-01-31T09:30:00+08:00）",
                      "invalid_awareness": "时间要带时区（例如 +08:00）", "format": "时间无法按格式输出"},
    fields.NaiveDateTime: {"invalid_awareness": "时间不能带时区"},
    fields.Time: {"invalid": "不是有效的时刻（例如 09:30:00）", "format": "时刻无法按格式输出",
                  "invalid_awareness": "时区不对"},
    fields.Date: {"invalid": "不是有效的日期（例如 2026-01-31）", "format": "日期无法按格式输出",
                  "invalid_awareness": "时区不对"},
    fields.TimeDelta: {"invalid": "不是有效的时长", "format": "时长无法按格式输出"},
    fields.Mapping: {"invalid": "要是一个对象"},
    fields.Url: {"invalid": "不是有效的网址"},
    fields.Email: {"invalid": "不是有效的邮箱地址"},
    fields.IP: {"invalid_ip": "不是有效的 IP 地址"},
    fields.IPv4: {"invalid_ip": "不是有效的 IPv4 地址"},
    fields.IPv6: {"invalid_ip": "不是有效的 IPv6 地址"},
    fields.IPInterface: {"invalid_ip_interface": "不是有效的 IP 网段"},
    fields.IPv4Interface: {"invalid_ip_interface": "不是有效的 IPv4 网段"},
    fields.IPv6Interface: {"invalid_ip_interface": "不是有效的 IPv6 网段"},
    fields.Enum: {"unknown": "要是以下之一：{choices}"},
}

# Validator messages (class attributes marshmallow formats with the validator's arguments).
VALIDATOR_MESSAGES: dict[type[validate.Validator], dict[str, str]] = {
    validate.Range: {"message_min": "要{min_op} {{min}}", "message_max": "要{max_op} {{max}}",
                     "message_all": "要{min_op} {{min}}，并且{max_op} {{max}}", "message_gte": "大于或等于",
                     "message_gt": "大于", "message_lte": "小于或等于", "message_lt": "小于"},
    validate.Length: {"message_min": "长度不能少于 {min}", "message_max": "长度不能超过 {max}",
                      "message_all": "长度要在 {min} 到 {max} 之间", "message_equal": "长度要等于 {equal}"},
    validate.URL: {"default_message": "不是有效的网址"},
    validate.Email: {"default_message": "不是有效的邮箱地址"},
    validate.Equal: {"default_message": "要等于 {other}"},
    validate.Regexp: {"default_message": "格式不对"},
    validate.Predicate: {"default_message": "值不对"},
    validate.NoneOf: {"default_message": "不能是以下之一：{values}"},
    validate.OneOf: {"default_message": "要是以下之一：{choices}"},
    validate.ContainsOnly: {"default_message": "只能包含以下各项：{choices}"},
    validate.ContainsNoneOf: {"default_message": "不能包含以下各项：{values}"},
}

SCHEMA_MESSAGES = {"type": "要是一个 JSON 对象", "unknown": "不认识的字段"}


def install_messages() -> None:
    """Make these the defaults of marshmallow's own classes, so every schema in the process answers in Chinese.

    Runs when this module is imported (`app/__init__.py` imports it first): validators and fields keep the
    messages they were built with, so this must happen before any schema class is defined."""
    for cls, messages in FIELD_MESSAGES.items():
        cls.default_error_messages = {**cls.__dict__.get("default_error_messages", {}), **messages}
    for cls, messages in VALIDATOR_MESSAGES.items():
        for name, text in messages.items():
            setattr(cls, name, text)
    Schema._default_error_messages = {**Schema._default_error_messages, **SCHEMA_MESSAGES}


install_messages()


# --- field types ---------------------------------------------------------------------------------------------

class Body(Schema):
    """A request body: unknown fields are refused, integers must be JSON integers."""

    class Meta:
        unknown = RAISE


_DECIMAL = re.compile(r"-?[0-9]{1,4000}")  # (Python refuses to convert longer digit strings)
_IN_BIGINT = validate.Range(min=BIGINT_MIN, max=BIGINT_MAX, error="数字超出范围")


class StrictInteger(fields.Integer):
    """A JSON integer in a body ("1" and 1.0 are refused); in a query string, where every value is text,
    a plain decimal number."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and isinstance(data, MultiDictProxy) and _DECIMAL.fullmatch(value):
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


def _validators(extra) -> list:
    if extra is None:
        return []
    return list(extra) if isinstance(extra, (list, tuple)) else [extra]


def Int(**kwargs) -> fields.Integer:  # noqa: N802 - reads like a field class
    """An integer field: strict in JSON bodies, decimal text accepted in query strings, within BIGINT."""
    return StrictInteger(strict=True, **{**kwargs, "validate": [_IN_BIGINT, *_validators(kwargs.get("validate"))]})


_ID = validate.Range(min=1, max=BIGINT_MAX, error="不是有效的编号")


def Id(**kwargs) -> fields.Integer:  # noqa: N802 - reads like a field class
    """An id: an integer 1..BIGINT_MAX (what an id column can hold), in a body or a query string."""
    return StrictInteger(strict=True, **{**kwargs, "validate": [_ID, *_validators(kwargs.get("validate"))]})


class Bool(fields.Boolean):
    """A JSON true or false in a body ("yes", 1 and "true" are refused); the usual words in a query string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(data, MultiDictProxy):
            return super()._deserialize(value, attr, data, **kwargs)
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Day(fields.Date):
    """An ISO date (2026-01-31) within FIRST_DAY..LAST_DAY."""

    default_error_messages = {"out_of_range": f"日期要在 {FIRST_DAY} 到 {LAST_DAY} 之间"}

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not FIRST_DAY <= day <= LAST_DAY:
            raise self.make_error("out_of_range")
        return day


class AwareDateTime(fields.AwareDateTime):
    """ISO 8601 with offset in and out; a naive input is refused, and so is one outside FIRST_DAY..LAST_DAY."""

    default_error_messages = {"out_of_range": f"时间要在 {FIRST_DAY} 到 {LAST_DAY} 之间"}

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        at = super()._deserialize(value, attr, data, **kwargs)
        # Year 1 at +08:00 parses, but converting it to UTC would overflow: refuse it before anyone does.
        if not _FIRST_INSTANT <= at <= _LAST_INSTANT:
            raise self.make_error("out_of_range")
        return at

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else as_utc(value).isoformat()


class DeviceTime(AwareDateTime):
    """A phone's clock reading (ISO 8601 with offset): whatever it says is taken, for the scan's rule to judge
    (`app.scans.services`: a time the phone cannot be right about is recorded at the server's). A reading outside
    FIRST_DAY..LAST_DAY (a clock reset to 1970 or year 1) comes in as that bound, which the rule then replaces."""

    def _deserialize(self, value, attr, data, **kwargs):
        at = fields.AwareDateTime._deserialize(self, value, attr, data, **kwargs)
        if at < _FIRST_INSTANT:
            return _FIRST_INSTANT
        if at > _LAST_INSTANT:
            return _LAST_INSTANT
        return at


class ErrorSchema(Schema):
    error = fields.Dict()
