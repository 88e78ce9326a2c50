"""One use case, one transaction; and the work that must wait for its commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.core.db import begin_write, on_sqlite
from app.extensions import USE_CASE_KEY, db

log = logging.getLogger(__name__)

_AFTER_COMMIT = USE_CASE_KEY  # session.info: the open transaction() blocks' work, innermost last


@contextmanager
def transaction() -> Iterator[None]:
    """Commit what the block did, or roll all of it back if it raised.

    On SQLite the block is the database's writer from its start (BEGIN IMMEDIATE, see `app.core.db`), so what it
    reads cannot change before it commits; PostgreSQL's use cases lock the rows they guard themselves.

    Work the block registered with `after_commit` runs once it has committed and is dropped if it rolls back. A
    block inside another commits the session (so everything registered so far) and runs all of it; a rollback
    undoes the whole session, so it drops all of it.
    """
    blocks: list[list[Callable[[], object]]] = db.session.info.setdefault(_AFTER_COMMIT, [])
    blocks.append([])
    try:
        if on_sqlite():
            begin_write()
        yield
        db.session.commit()
    except BaseException:
        for block in blocks:
            block.clear()
        del blocks[-1]
        db.session.rollback()
        raise
    work = [fn for block in blocks for fn in block]
    for block in blocks:
        block.clear()
    del blocks[-1]
    for fn in work:
        try:
            fn()
        except Exception:  # committed already: the use case must not fail for what did happen
            log.exception("after-commit work %r failed", fn)


def in_transaction() -> bool:
    """Whether a `transaction()` block is open in this session."""
    return bool(db.session.info.get(_AFTER_COMMIT))


def require_transaction(step: str) -> None:
    """A step of a use case (it writes, checks no caller and commits nothing) runs inside the use case's
    transaction: called outside one, its writes would be nobody's, so it is refused."""
    if not in_transaction():
        raise RuntimeError(f"{step} is a step of a use case: call it inside the use case's transaction()")


def after_commit(fn: Callable[[], object]) -> None:
    """Run `fn()` once the enclosing `transaction()` block has committed (not at all if it rolls back).

    For what must never see uncommitted data or hold a transaction open: queueing jobs, telling caches. A failure
    of `fn` is logged, never raised: the commit it follows stands. Outside a `transaction()` block there is no
    commit to wait for, so it is refused.
    """
    blocks = db.session.info.get(_AFTER_COMMIT)
    if not blocks:
        raise RuntimeError("after_commit() outside a transaction() block: there is no commit to run it after")
    blocks[-1].append(fn)
