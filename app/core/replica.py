"""Reads that may be served by the read replica (`DATABASE_REPLICA_URL`), chosen explicitly.

Only what a view says may be a little stale goes there: dashboards, exports and console reports run inside
`with replica_reads():` (or under `@replica_reads()`). Everything else reads the primary, and so does every
statement of a `transaction()` (a use case reads its own writes and locks what it guards) and every write: the
session's `get_bind` (`app.extensions.RoutingSession`) sends a statement to the replica only inside such a
block, outside any use case, and when it is a read (no flush, no INSERT/UPDATE/DELETE, a text statement only
when it begins with SELECT). A scan's answer, an order page after a change, a form's answer: all on the primary.

Before the block's reads the replica is checked (at most every `DATABASE_REPLICA_CHECK_SECONDS`): it must answer,
be in recovery, and be behind the primary by at most `DATABASE_REPLICA_MAX_LAG_SECONDS`. Its lag is 0 while it
has replayed all it received from a running WAL receiver, else the age of its last replayed transaction
(`now() - pg_last_xact_replay_timestamp()`: an idle primary sends nothing, so that age alone would grow for
ever). When the check fails the block reads the primary: `replica_fallback_total{reason}` counts each fallen-back
block (reason `down`, `lag` or `not_standby`), a warning line (`event: replica_fallback`) is logged when the
replica is found unusable (once per check, not per request), and the replica is not asked again before
`DATABASE_REPLICA_RETRY_SECONDS`. The block's `ReadSource` says what served it, for the page ("数据截至 N 秒前"
or "实时") and the `X-Read-Source` header.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_request_context

from app.core import metrics
from app.errors import is_database_unavailable
from app.extensions import replica_engine as _replica_engine

log = logging.getLogger(__name__)

EXTENSION = "channel_replica"
LAG_SQL = sa.text(
    "SELECT pg_is_in_recovery() AS standby,"
    " CASE WHEN NOT pg_is_in_recovery() THEN NULL"
    "      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
    "           AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN 0"
    "      ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END AS lag")


@dataclass(frozen=True)
class ReadSource:
    """What served a block of reads: the replica (with its lag in seconds) or the primary (with why, if a
    replica is configured: `down`, `lag`, `not_standby`, or `transaction` inside a use case)."""

    replica: bool
    lag_seconds: float | None = None
    fallback: str | None = None

    @property
    def header(self) -> str:
        if self.replica:
            return f"replica; lag={self.lag_seconds:.1f}"
        return f"primary; fallback={self.fallback}" if self.fallback else "primary"


PRIMARY = ReadSource(replica=False)


class Replica:
    """One app's replica: its engine, and the last check (shared by the process's threads)."""

    def __init__(self, url: str, *, max_lag: float, check_seconds: float, retry_seconds: float,
                 engine_options: dict[str, Any]):
        self.url = url
        self.max_lag = max_lag
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self.engine = sa.create_engine(url, **engine_options)
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._state: ReadSource | None = None  # not checked yet

    def measure(self) -> tuple[bool, float | None]:
        """(in recovery, lag in seconds or None) read from the replica now; raises when it does not answer."""
        with self.engine.connect() as conn:
            row = conn.execute(LAG_SQL).one()
        return bool(row.standby), None if row.lag is None else float(row.lag)

    def state(self) -> ReadSource:
        """The replica's usability, checked again once the last check is old enough."""
        now = time.monotonic()
        with self._lock:
            state, checked = self._state, self._checked_at
            if state is not None:
                if now - checked < (self.check_seconds if state.replica else self.retry_seconds):
                    return state
                self._checked_at = now  # one thread checks again; the others use the last state meanwhile
        state = self._check()
        with self._lock:
            self._state, self._checked_at = state, time.monotonic()
        return state

    def _check(self) -> ReadSource:
        try:
            standby, lag = self.measure()
        except Exception as exc:  # any failure to read it means it cannot serve
            return self._unusable("down", error=type(exc).__name__)
        if not standby:
            return self._unusable("not_standby")
        if lag is None or lag > self.max_lag:
            return self._unusable("lag", lag_seconds=lag)
        if self._state is not None and not self._state.replica:
            log.info("the read replica serves reads again", extra={"event": "replica_back", "lag_seconds": lag})
        return ReadSource(replica=True, lag_seconds=lag)

    def _unusable(self, reason: str, **details: Any) -> ReadSource:
        log.warning("read replica unusable (%s): reads go to the primary for %ss", reason, self.retry_seconds,
                    extra={"event": "replica_fallback", "reason": reason, **details})
        return ReadSource(replica=False, fallback=reason)

    def lost(self, exc: BaseException) -> None:
        """A block's read found the replica gone: the next blocks read the primary without waiting for a check."""
        state = self._unusable("down", error=type(exc).__name__)
        with self._lock:
            self._state, self._checked_at = state, time.monotonic()

    def forget(self) -> None:
        """Check again at the next block (tests, and after a configuration change)."""
        with self._lock:
            self._checked_at = float("-inf")
            self._state = None


def _say_source(response):
    source = g.get("read_source")
    if source is not None:
        response.headers["X-Read-Source"] = source.header
    return response


def init_app(app) -> None:
    """Make the app's replica engine when DATABASE_REPLICA_URL is set (PostgreSQL primary and replica only); an
    answer whose reads ran in a `replica_reads()` block says what served them (`X-Read-Source`)."""
    app.after_request(_say_source)
    url = app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return
    primary = app.config["SQLALCHEMY_DATABASE_URI"]
    if not (url.startswith("postgresql") and primary.startswith("postgresql")):
        log.warning("DATABASE_REPLICA_URL is ignored: a read replica needs PostgreSQL for it and DATABASE_URL")
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault("connect_timeout", int(app.config.get("DATABASE_REPLICA_CONNECT_TIMEOUT", 2)))
    options["connect_args"] = connect_args
    app.extensions[EXTENSION] = Replica(
        url, max_lag=float(app.config.get("DATABASE_REPLICA_MAX_LAG_SECONDS", 30)),
        check_seconds=float(app.config.get("DATABASE_REPLICA_CHECK_SECONDS", 2)),
        retry_seconds=float(app.config.get("DATABASE_REPLICA_RETRY_SECONDS", 10)),
        engine_options=options)


def replica_of(app) -> Replica | None:
    return app.extensions.get(EXTENSION)


class replica_reads(contextlib.ContextDecorator):  # noqa: N801  (used as a context manager and a decorator)
    """The block's reads (outside any use case) go to the replica when it is usable; see the module's docstring.

    `with replica_reads() as source:` gives the `ReadSource`; inside a request it is also `g.read_source` (the
    console's pages show it) and the answer's `X-Read-Source` header. At the block's end a session that read from
    the replica and changed nothing is rolled back, so nothing it loaded there outlives the block."""

    def _recreate_cm(self):  # as a decorator: a fresh one per call (threads share the decorated view)
        return type(self)()

    def __enter__(self) -> ReadSource:
        from app.core.tx import in_transaction
        from app.extensions import db

        replica = replica_of(current_app)
        if replica is None:
            source = PRIMARY
        elif in_transaction():
            source = ReadSource(replica=False, fallback="transaction")
        else:
            source = replica.state()
            if source.fallback:
                metrics.replica_fallback(source.fallback)
        self._token = _replica_engine.set(replica.engine if source.replica and replica else None)
        self._replica = replica if source.replica else None
        self._session = db.session() if source.replica else None
        if has_request_context():
            g.read_source = source
        return source

    def __exit__(self, exc_type, exc, tb) -> None:
        _replica_engine.reset(self._token)
        if exc is not None and self._replica is not None and is_database_unavailable(exc):
            self._replica.lost(exc)  # this request fails (503), the next ones read the primary
        session = self._session
        if session is not None and not (session.new or session.dirty or session.deleted):
            try:
                session.rollback()  # its replica connection back to the pool (reads only: nothing is lost)
            except Exception:  # a connection already gone: the error on its way out says what happened
                if exc is None:
                    raise
                log.debug("rollback after a failed replica read failed", exc_info=True)
