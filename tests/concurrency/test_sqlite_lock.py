"""SQLite, the embedded default: a use case that writes is the database's writer from its first read, reads
never wait for a writer, and a writer that cannot get the lock in time answers 503 `busy`, never a 500.

Another connection (plain sqlite3, as another gunicorn worker would be) holds or probes the write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from app.codes.models import Code
from app.core.tx import transaction
from app.extensions import db
from tests.conftest import ON_POSTGRES
from tests.scans.helpers import body, codes_in, on_hand

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's write lock (PostgreSQL locks rows: see test_live_stock)")


def _path(app) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")


def _lock_is_free(app) -> bool:
    """Whether another connection could become the writer right now (it does not wait)."""
    other = sqlite3.connect(_path(app), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


@contextmanager
def _writer_elsewhere(app) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock for the block."""
    other = sqlite3.connect(_path(app), timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_write_use_case_holds_the_lock_from_its_first_read(app_ctx, demo):
    code = codes_in("S1")[0]
    db.session.remove()
    assert _lock_is_free(app_ctx)
    db.session.scalar(sa.select(Code.state).where(Code.id == code.id))
    assert _lock_is_free(app_ctx), "a read outside transaction() must not take the write lock"
    with transaction():
        assert db.session.scalar(sa.select(Code.state).where(Code.id == code.id)) == "in_store"
        # Nothing written yet, and no other writer can get in between this read and the write it guards.
        assert not _lock_is_free(app_ctx)
    assert _lock_is_free(app_ctx)


def test_a_use_case_reads_again_what_was_read_before_it_began(app_ctx, demo):
    code = db.session.get(Code, codes_in("S1")[0].id)
    assert code.state == "in_store"
    other = sqlite3.connect(_path(app_ctx), isolation_level=None)
    other.execute("UPDATE codes SET state = 'sold' WHERE id = ?", (code.id,))
    other.close()
    with transaction():
        # The object loaded before the use case is read again under the lock, not trusted.
        assert code.state == "sold"


def test_reads_do_not_wait_for_a_writer(make_app, client, owner):
    impatient = make_app(SQLITE_BUSY_TIMEOUT_MS=100)
    with _writer_elsewhere(impatient):
        r = impatient.test_client().get("/api/mp/v1/stock", headers=owner)
    assert r.status_code == 200, r.get_json()


def test_a_writer_that_cannot_get_the_lock_answers_busy(make_app, client, owner):
    impatient = make_app(SQLITE_BUSY_TIMEOUT_MS=100)
    serial, sku_id = (lambda c: (c.serial, c.sku_id))(codes_in("S1")[0])
    before = on_hand("S1", sku_id)
    db.session.remove()
    scan = body(serial)
    with _writer_elsewhere(impatient):
        r = impatient.test_client().post("/api/mp/v1/scans", json=scan, headers=owner)
    assert r.status_code == 503, r.get_json()
    assert r.get_json()["error"]["code"] == "busy" and r.headers["Retry-After"]
    assert on_hand("S1", sku_id) == before
    db.session.remove()  # this session's read transaction sees the database as it was when it began
    # The phone retries the same request once the database is free: sold once.
    again = impatient.test_client().post("/api/mp/v1/scans", json=scan, headers=owner)
    assert again.status_code == 200 and again.get_json()["status"] == "accepted"
    assert on_hand("S1", sku_id) == before - 1
