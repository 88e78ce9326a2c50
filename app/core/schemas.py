"""Schema helpers shared by the HTTP edges (the only place besides the edges that imports marshmallow)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields

from app.core.clock import as_utc


class Body(Schema):
    """A request body: unknown fields are refused, integers must be JSON integers."""

    class Meta:
        unknown = RAISE


def Int(**kwargs) -> fields.Integer:  # noqa: N802 - reads like a field class
    return fields.Integer(strict=True, **kwargs)


class AwareDateTime(fields.AwareDateTime):
    """ISO 8601 with offset in and out; a naive input is refused."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else as_utc(value).isoformat()


class ErrorSchema(Schema):
    error = fields.Dict()
