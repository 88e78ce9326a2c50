"""Work after a commit belongs to the `transaction()` block that needs it (`app.core.tx.after_commit`): it runs once
that block has committed, is dropped when it rolls back, and nothing hangs off the `Session` class."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.core.tx import after_commit, transaction
from app.extensions import db


@pytest.fixture()
def root_app(app_ctx, clean_db):
    yield app_ctx
    db.session.rollback()


def _committed() -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM commission_rules")).scalar()


def _add_rule() -> None:
    db.session.execute(sa.text("INSERT INTO commission_rules (margin_bp, bringer_share_bp, created_at) "
                               "VALUES (1, 1, CURRENT_TIMESTAMP)"))


def test_work_runs_after_its_block_commits_and_sees_the_commit(root_app):
    seen = []
    with transaction():
        _add_rule()
        after_commit(lambda: seen.append(_committed()))
        assert seen == []
    assert seen == [1]


def test_work_is_dropped_when_its_block_rolls_back(root_app):
    seen = []
    with pytest.raises(RuntimeError, match="boom"), transaction():
        _add_rule()
        after_commit(lambda: seen.append("ran"))
        raise RuntimeError("boom")
    with transaction():
        _add_rule()
    assert seen == []


def test_a_commit_outside_the_block_runs_nothing(root_app):
    seen = []
    db.session.commit()
    with transaction():
        after_commit(lambda: seen.append("once"))
    db.session.commit()
    assert seen == ["once"]


def test_work_outside_a_transaction_block_is_refused(root_app):
    with pytest.raises(RuntimeError, match="transaction"):
        after_commit(lambda: None)


def test_failing_work_does_not_undo_or_block_the_rest(root_app):
    seen = []
    with transaction():
        _add_rule()
        after_commit(lambda: 1 / 0)
        after_commit(lambda: seen.append("second"))
    assert seen == ["second"] and _committed() == 1


def test_nothing_listens_on_the_session_class(app):
    """After-commit work once hung off `Session` itself, so it ran for every session in the process."""
    session = Session()  # a session of no app: only class-level listeners would be on it
    assert [fn.__qualname__ for fn in session.dispatch.after_commit] == []
    assert [fn.__qualname__ for fn in session.dispatch.after_rollback] == []


def test_a_step_of_a_use_case_refuses_to_run_outside_its_transaction(app_ctx, demo):
    """`ship_codes` writes codes and events for its use case and checks no caller: alone, it is refused."""
    from app.codes.services import ship_codes

    with pytest.raises(RuntimeError, match="step of a use case"):
        ship_codes(serials=["X"], from_location_id=1, to_store_id=1, order_id=None, user_id=None)
