"""Database helpers every domain shares: which dialect we are on, dialect inserts, and the hot-path runner."""

from __future__ import annotations

import functools
import logging
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

from app.extensions import db

log = logging.getLogger(__name__)


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


# --- SQLite: transactions that really take the write lock ---------------------------------------------------
#
# pysqlite begins a transaction only before the first INSERT/UPDATE/DELETE, so a use case's reads ran outside
# it and two writers could both read "in stock" and both sell. Here pysqlite's own BEGIN is switched off and we
# emit ours (SQLAlchemy's documented recipe), by what the statements are for:
# - a use case that writes (`app.core.tx.transaction`) begins with BEGIN IMMEDIATE: it is the database's one
#   writer before its first read, so nothing it read can change before it commits; other writers wait for it
#   (the busy timeout), and readers never do (WAL);
# - reads outside a use case run without a transaction, each statement on the newest data (as they did, and as
#   under PostgreSQL's READ COMMITTED), taking no lock and holding no snapshot;
# - any other statement outside a use case first begins a plain transaction, as pysqlite did, so it can still be
#   rolled back (a use case entered after it carries on in it, see `begin_write`).

SQLITE_BEGIN = "sqlite_begin"  # execution option of a session's connection: "IMMEDIATE" for a write
WRITE_OPTIONS = {SQLITE_BEGIN: "IMMEDIATE"}
_CHANGES_AT_BEGIN = "sqlite_changes_at_begin"
_NO_TRANSACTION_NEEDED = ("SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "EXPLAIN")
SQLITE_BUSY_TIMEOUT_MS = 10_000


def setup_sqlite(engine: sa.Engine, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    """Pragmas on every new connection (foreign keys, WAL, the busy timeout) and our own BEGIN (above)."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # pysqlite emits no BEGIN (nor a COMMIT before DDL): we do
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection):
        if _is_writer(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits here, up to the busy timeout, for the write lock

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before_statement(conn, cursor, statement, _parameters, _context, _executemany):
        raw = cursor.connection
        if raw.in_transaction or statement.lstrip()[:8].upper().startswith(_NO_TRANSACTION_NEEDED):
            return
        cursor.execute("BEGIN")
        conn.info[_CHANGES_AT_BEGIN] = raw.total_changes


def _is_writer(conn: sa.Connection) -> bool:
    return conn.get_execution_options().get(SQLITE_BEGIN) == "IMMEDIATE"


def check_database() -> str:
    """`"ok"` when the database answers a trivial query, else `"error: <exception class>"`; the session is left
    with no transaction open either way (the readiness probe's check)."""
    try:
        db.session.execute(sa.text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready
        return f"error: {type(exc).__name__}"
    finally:
        db.session.rollback()


def on_sqlite() -> bool:
    return db.session.get_bind().dialect.name == "sqlite"


def begin_write() -> None:
    """Make the session SQLite's writer before the use case reads anything (see above).

    Objects the session loaded before are expired, so the use case reads them again under the lock. A session
    that already wrote outside a use case goes on in that transaction: it holds the lock since that write, and
    SQLite refused the write had anything it read in it changed since (WAL).
    """
    session = db.session()  # the request's Session itself (the scoped proxy lacks get_transaction)
    trans = session.get_transaction()
    if trans is None or not trans._connections:  # nothing begun on the database yet (maybe objects added)
        session.connection(execution_options=WRITE_OPTIONS)
        return
    conn = session.connection()
    if _is_writer(conn):
        return  # a use case inside another
    conn.execution_options(**WRITE_OPTIONS)
    if conn.connection.driver_connection.in_transaction:
        log.warning("a write began before its transaction(): it holds SQLite's write lock from that write on")
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    if session.dirty:
        for obj in list(session.identity_map.values()):
            if obj not in session.dirty:
                session.expire(obj)
    else:
        session.expire_all()
