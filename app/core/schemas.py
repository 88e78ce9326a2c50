"""Schema helpers shared by the HTTP edges (the only place besides the edges that imports marshmallow)."""

from __future__ import annotations

import re

from marshmallow import RAISE, Schema, fields
from webargs.multidictproxy import MultiDictProxy

from app.core.clock import as_utc


class Body(Schema):
    """A request body: unknown fields are refused, integers must be JSON integers."""

    class Meta:
        unknown = RAISE


_DECIMAL = re.compile(r"-?[0-9]{1,18}")


class StrictInteger(fields.Integer):
    """A JSON integer in a body ("1" and 1.0 are refused); in a query string, where every value is text,
    a plain decimal number."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and isinstance(data, MultiDictProxy) and _DECIMAL.fullmatch(value):
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


def Int(**kwargs) -> fields.Integer:  # noqa: N802 - reads like a field class
    """An integer field: strict in JSON bodies, decimal text accepted in query strings."""
    return StrictInteger(strict=True, **kwargs)


class Bool(fields.Boolean):
    """A JSON true or false in a body ("yes", 1 and "true" are refused); the usual words in a query string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(data, MultiDictProxy):
            return super()._deserialize(value, attr, data, **kwargs)
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class AwareDateTime(fields.AwareDateTime):
    """ISO 8601 with offset in and out; a naive input is refused."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else as_utc(value).isoformat()


class ErrorSchema(Schema):
    error = fields.Dict()
