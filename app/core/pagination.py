"""Lists answer `{"items", "page", "page_size", "total"}`, paged by `page` and `page_size`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from app.core.schemas import Int
from app.extensions import db

MAX_PAGE_SIZE = 200


class PageArgs(Schema):
    page = Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = Int(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """A list-envelope schema for `item_schema`, named for the OpenAPI document."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema)),
            "page": fields.Integer(),
            "page_size": fields.Integer(),
            "total": fields.Integer(),
        },
        name=name,
    )


def paginate(stmt: sa.Select, *, page: int = 1, page_size: int = 20, scalars: bool = True) -> dict[str, Any]:
    """Run `stmt` for one page and count the whole result."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    paged = stmt.limit(page_size).offset((page - 1) * page_size)
    result = db.session.execute(paged)
    items = list(result.scalars()) if scalars else list(result)
    return {"items": items, "page": page, "page_size": page_size, "total": total or 0}
