"""Which statements the session may send to the read replica inside a `replica_reads()` block: reads only."""

from __future__ import annotations

import sqlalchemy as sa

from app.accounts.models import User
from app.core.tx import _AFTER_COMMIT
from app.extensions import USE_CASE_KEY, _is_write


def test_reads_may_go_to_the_replica_and_writes_never():
    assert not _is_write(None)  # session.connection(): a read of the block
    assert not _is_write(sa.select(User.id))
    assert not _is_write(sa.text("  select pg_is_in_recovery()"))
    assert _is_write(sa.update(User).values(token_version=1))
    assert _is_write(sa.insert(User))
    assert _is_write(sa.delete(User))
    assert _is_write(sa.text("UPDATE users SET token_version = 1"))
    assert _is_write(sa.text("WITH taken AS (DELETE FROM sales_inbox RETURNING id) SELECT count(*) FROM taken"))
    assert _is_write(sa.text("SET LOCAL statement_timeout = 1000"))


def test_a_use_case_is_recognised_by_the_key_transaction_sets():
    assert USE_CASE_KEY == _AFTER_COMMIT
