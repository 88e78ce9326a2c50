"""One use case, one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.core.db import begin_write, on_sqlite
from app.extensions import db


@contextmanager
def transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back if it raised.

    On SQLite the block is the database's writer from its start (BEGIN IMMEDIATE, see `app.core.db`), so what it
    reads cannot change before it commits; PostgreSQL's use cases lock the rows they guard themselves.
    """
    try:
        if on_sqlite():
            begin_write()
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
