"""Token revocation: every user has a token version, every token carries the version it was issued with.

Logging out everywhere, losing a role, being removed from a store or deactivated bumps the user's version
(`users.token_version`, in the same transaction as the change); a token whose version is not the user's current
one is refused from the next request on, on every process and every server.

The check runs on every request, the hot sell path among them, so it must not read the database each time.
What the current version is, is cached, and the cache learns of every bump:

- **With Redis** (`REDIS_URL`, which production requires): Redis holds each user's current version
  (`tokver:<user id>`, ten minutes, refilled from the database when missing). The check is one Redis GET:
  about as much as the request's other bookkeeping, and exact across every server, because the bump writes
  Redis before its request answers. (Pub/sub invalidation would save the GET, but a message still in flight
  when the next request lands on another server lets that request through: not "the next request".)
  Both the refill and the bump only ever raise the stored version, so a refill that read the database just
  before a bump committed cannot put the old version back. If Redis cannot be reached, the check reads the
  database for a few seconds before trying Redis again: slower, never wrong. The one case left: a bump made
  while this server cannot reach Redis but others can leaves those servers trusting the old version until the
  key expires (at most ten minutes); it is logged as an error.
- **Without Redis** (the embedded default: one machine, gunicorn with several worker processes): a small file
  under `instance/` (`TOKEN_REVOCATION_FILE`), memory-mapped by every process, holds 4096 counters; a bump
  adds one to the counter of the user's slot (user id mod 4096) after its transaction commits. A process
  caches each user's version with the slot's counter as it read it, and trusts the cached version while the
  counter has not moved. The check is one read of shared memory (no system call, no database); a bump costs
  one database read per user of that slot per process, once. The counter is read before the database and
  written after the commit, so a process can never keep a version older than a bump it has seen.

Tokens issued before versions existed carry none and count as version 0, the column's default.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from app.core.tx import after_commit

log = logging.getLogger(__name__)

SLOTS = 4096
_SLOT = struct.Struct("<Q")
KEY_TTL_SECONDS = 600
REDIS_RETRY_SECONDS = 5.0
_CACHE_MAX = 200_000

# Raise the stored version, never lower it; (re)start its expiry.
_SET_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local wanted = tonumber(ARGV[1])
if wanted > current then current = wanted end
redis.call('SET', KEYS[1], current, 'EX', tonumber(ARGV[2]))
return current
"""


def _read_version(user_id: int) -> int | None:
    """The user's version from the database, on a connection of its own (the request's transaction is not
    touched); None when the user does not exist."""
    from app.accounts.models import User
    from app.extensions import db

    with db.engine.connect() as conn:
        return conn.execute(sa.select(User.token_version).where(User.id == user_id)).scalar()


class SlotFile:
    """The shared counters: a file mapped into every process of this machine."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < SLOTS * _SLOT.size:
                os.ftruncate(fd, SLOTS * _SLOT.size)  # zeros; never shrinks what another process maps
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, SLOTS * _SLOT.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._lock_path = self.path

    def counter(self, user_id: int) -> int:
        return _SLOT.unpack_from(self._map, (user_id % SLOTS) * _SLOT.size)[0]

    def bump(self, user_id: int) -> None:
        offset = (user_id % SLOTS) * _SLOT.size
        fd = os.open(self._lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _SLOT.pack_into(self._map, offset, (_SLOT.unpack_from(self._map, offset)[0] + 1) % 2**64)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class LocalVersions:
    """Per-process cache, told of bumps by the shared slot file (one machine, no Redis)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.slots = SlotFile(path)
        self._cache: dict[int, tuple[int | None, int]] = {}

    def current(self, user_id: int) -> int | None:
        counter = self.slots.counter(user_id)  # before the database read: see the module's docstring
        hit = self._cache.get(user_id)
        if hit is not None and hit[1] == counter:
            return hit[0]
        version = _read_version(user_id)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[user_id] = (version, counter)
        return version

    def bumped(self, user_id: int, version: int) -> None:
        """After the commit that raised the user's version to `version`."""
        self.slots.bump(user_id)

    def forget_all(self) -> None:
        """Drop this process's cache (tests that empty the users table and reuse its ids)."""
        self._cache.clear()


class RedisVersions:
    """Each user's current version in Redis, shared by every server; the database when Redis is away."""

    def __init__(self, url: str, prefix: str):
        from redis import Redis

        self.redis = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.prefix = prefix
        self._set_max = self.redis.register_script(_SET_MAX)
        self._down_until = 0.0
        self._lock = threading.Lock()

    def forget_all(self) -> None:
        """Nothing is cached in the process; Redis keys expire by themselves."""

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}{user_id}"

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            first = self._down_until < time.monotonic()
            self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
        if first:
            log.warning("Redis unreachable for token versions (%s: %s); reading the database for %.0f s",
                        what, exc, REDIS_RETRY_SECONDS)

    def current(self, user_id: int) -> int | None:
        from redis import RedisError

        if self._down_until > time.monotonic():
            return _read_version(user_id)
        try:
            raw = self.redis.get(self._key(user_id))
        except RedisError as exc:
            self._failed("read", exc)
            return _read_version(user_id)
        if raw is not None:
            return int(raw)
        version = _read_version(user_id)
        if version is not None:
            try:
                return int(self._set_max(keys=[self._key(user_id)], args=[version, KEY_TTL_SECONDS]))
            except RedisError as exc:
                self._failed("refill", exc)
        return version

    def bumped(self, user_id: int, version: int) -> None:
        from redis import RedisError

        # What was committed (a bump inside a savepoint that was rolled back must not reach Redis: it would
        # refuse the user's valid tokens until the key expires).
        version = _read_version(user_id) or 0
        try:
            self._set_max(keys=[self._key(user_id)], args=[version, KEY_TTL_SECONDS])
        except RedisError as exc:
            self._failed("bump", exc)
            log.error("token version %s of user %s not written to Redis: servers that can reach it accept "
                      "the old tokens until the key expires (%s s)", version, user_id, KEY_TTL_SECONDS)


def init_app(app: Flask) -> None:
    if app.config.get("REDIS_URL"):
        backend: Any = RedisVersions(app.config["REDIS_URL"], app.config.get("TOKEN_VERSION_KEY_PREFIX", "tokver:"))
    else:
        backend = LocalVersions(app.config["TOKEN_REVOCATION_FILE"])
    app.extensions["token_versions"] = backend


def current_version(user_id: int) -> int | None:
    """The user's current token version (None: no such user)."""
    return current_app.extensions["token_versions"].current(user_id)


def bump(user_id: int) -> None:
    """Raise the user's token version in the caller's `transaction()`; the caches hear of it after its commit.

    Every token issued to the user before this stops working from the next request after the commit.
    """
    from app.accounts.models import User
    from app.extensions import db

    db.session.execute(sa.update(User).where(User.id == user_id).values(token_version=User.token_version + 1))
    version = db.session.scalar(sa.select(User.token_version).where(User.id == user_id))
    if version is None:
        return
    backend = current_app.extensions["token_versions"]
    after_commit(lambda: _announce_bump(backend, user_id, version))


def _announce_bump(backend: Any, user_id: int, version: int) -> None:
    try:
        backend.bumped(user_id, version)
    except Exception:  # committed already: the caller must not see an error for what did happen
        log.exception("could not announce token version %s of user %s to the other processes", version, user_id)
