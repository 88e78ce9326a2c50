"""Column types shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from werkzeug.routing import IntegerConverter

# What a BIGINT column holds (PostgreSQL; SQLite's INTEGER is the same 8 bytes): every integer the API takes stays
# inside it, and every id is 1..BIGINT_MAX, so no value the database cannot bind ever reaches a query.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite forgets the zone; we put it back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Integer primary keys that are BIGINT on PostgreSQL but still autoincrement on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: an id the database can hold (1..BIGINT_MAX). Any other number matches no route,
    so `/orders/99999999999999999999` is a 404 like any unknown order, never an overflow in the driver."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = BIGINT_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
