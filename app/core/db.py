"""Database helpers every domain shares: which dialect we are on, dialect inserts, and the hot-path runner."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

from app.extensions import db


def on_postgres() -> bool:
    """Whether the session talks to PostgreSQL (else SQLite)."""
    return db.session.get_bind().dialect.name == "postgresql"


def dialect_insert():
    """The INSERT construct with ON CONFLICT support for the session's database."""
    return postgresql.insert if on_postgres() else sqlite.insert


@functools.cache
def _driver_sql(statement: sa.TextClause) -> str:
    return str(statement.compile(dialect=psycopg_dialect()))


def pg_row(statement: sa.TextClause, params: dict[str, Any]) -> Any:
    """The first row (a named tuple; None if it returns none) of one fixed hot-path statement, run by the driver
    on the session's connection, so in its transaction (PostgreSQL only).

    For these statements SQLAlchemy's own per-execution work (parameters, result metadata) costs more CPU than
    PostgreSQL spends on them. Errors come out as SQLAlchemy's, and a lost connection invalidates the pool as
    SQLAlchemy does, so callers see what `db.session.execute` would give them.
    """
    connection = db.session.connection()
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.cursor(row_factory=namedtuple_row)
    sql = _driver_sql(statement)
    try:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description is not None else None
    except dbapi.Error as exc:
        lost = connection.dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
            db.engine.dispose()  # every pooled connection went with the server: start a fresh pool
        raise sa.exc.DBAPIError.instance(sql, params, exc, dbapi.Error, connection_invalidated=lost,
                                         dialect=connection.dialect) from exc
    finally:
        cursor.close()
