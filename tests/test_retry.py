"""app.core.retry: a use case the database aborted for a deadlock or a serialization failure runs again, a bounded
number of times; nothing else is run twice."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest
import sqlalchemy as sa

from app.core import retry
from app.core.retry import is_retryable, run_retrying
from app.core.tx import transaction
from app.extensions import db


def _db_error(exc: Exception) -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("UPDATE ...", {}, exc)


def test_deadlocks_and_serialization_failures_are_retryable_and_nothing_else():
    assert is_retryable(_db_error(psycopg.errors.DeadlockDetected("deadlock detected")))
    assert is_retryable(_db_error(psycopg.errors.SerializationFailure("could not serialize access")))
    assert not is_retryable(_db_error(psycopg.errors.UniqueViolation("duplicate key")))
    assert not is_retryable(_db_error(psycopg.errors.LockNotAvailable("lock timeout")))
    assert not is_retryable(ValueError("no"))


def test_a_retryable_failure_runs_the_use_case_again_until_it_goes_through(app_ctx, caplog):
    calls = []

    def use_case():
        calls.append(1)
        if len(calls) < 3:
            raise _db_error(psycopg.errors.DeadlockDetected("deadlock detected"))
        return "done"

    with caplog.at_level(logging.WARNING, logger="app.core.retry"):
        assert run_retrying(use_case, name="test use case") == "done"
    assert len(calls) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "test use case: deadlock detected (SQLSTATE 40P01) on attempt 1 of 5; running it again",
        "test use case: deadlock detected (SQLSTATE 40P01) on attempt 2 of 5; running it again"]


def test_the_retries_are_bounded_and_the_last_error_is_raised(app_ctx):
    calls = []

    def use_case():
        calls.append(1)
        raise _db_error(psycopg.errors.SerializationFailure("could not serialize access"))

    with pytest.raises(sa.exc.OperationalError, match="could not serialize"):
        run_retrying(use_case, name="test")
    assert len(calls) == retry.ATTEMPTS


def test_other_errors_are_not_retried(app_ctx):
    calls = []

    def use_case():
        calls.append(1)
        raise _db_error(psycopg.errors.UniqueViolation("duplicate key"))

    with pytest.raises(sa.exc.OperationalError, match="duplicate key"):
        run_retrying(use_case, name="test")
    assert len(calls) == 1


def test_a_retried_use_case_inside_another_is_retried_only_as_a_whole(app_ctx):
    outer_calls, inner_calls = [], []

    def inner():
        inner_calls.append(1)
        if len(inner_calls) == 1:
            raise _db_error(psycopg.errors.DeadlockDetected("deadlock detected"))

    def outer():
        outer_calls.append(1)
        run_retrying(inner, name="inner")

    run_retrying(outer, name="outer")
    assert (len(outer_calls), len(inner_calls)) == (2, 2)


@pytest.fixture()
def two_rows(postgres, app_ctx):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE test_retry_rows (id int PRIMARY KEY, n int NOT NULL)")
        conn.exec_driver_sql("INSERT INTO test_retry_rows VALUES (1, 0), (2, 0)")
    yield postgres
    db.session.remove()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE test_retry_rows")


@pytest.mark.parametrize("attempts", [1, retry.ATTEMPTS])
def test_a_real_deadlock(two_rows, attempts):
    """Two transactions lock two rows in opposite orders, each waiting for the other after its first lock (on its
    first attempt): PostgreSQL aborts one. Without retries a caller sees it; with them both go through."""
    app = two_rows
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}

    def work(first: int, second: int) -> None:
        tries = []

        def use_case():
            tries.append(1)
            with transaction():
                db.session.execute(sa.text("UPDATE test_retry_rows SET n = n + 1 WHERE id = :id"), {"id": first})
                if len(tries) == 1:
                    barrier.wait(timeout=30)
                db.session.execute(sa.text("UPDATE test_retry_rows SET n = n + 1 WHERE id = :id"), {"id": second})
            return len(tries)

        with app.app_context():
            try:
                results[first] = run_retrying(use_case, name="test", attempts=attempts)
            except sa.exc.DBAPIError as exc:
                results[first] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(1, 2)), threading.Thread(target=work, args=(2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results.values() if isinstance(r, Exception)]
    rows = dict(db.session.execute(sa.text("SELECT id, n FROM test_retry_rows")).all())
    if attempts == 1:
        assert len(errors) == 1 and is_retryable(errors[0])
        assert rows == {1: 1, 2: 1}  # the aborted one left nothing
    else:
        assert errors == [] and sorted(results.values()) == [1, 2]  # one went through at once, one ran twice
        assert rows == {1: 2, 2: 2}
