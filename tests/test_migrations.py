"""The Alembic migrations build exactly the schema the models describe, on SQLite and on PostgreSQL.

If this fails after a model change, generate a migration (`flask db migrate -m "..."`), read it, and commit it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from app.extensions import db
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL

# migrations/env.py (Flask-Migrate's template) still calls db.get_engine(); it should read db.engine.
pytestmark = pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")


@contextmanager
def _logging_kept() -> Iterator[None]:
    """migrations/env.py calls logging.config.fileConfig, which disables every logger that exists; undo that."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = {name: lg.disabled for name, lg in logging.Logger.manager.loggerDict.items()
                if isinstance(lg, logging.Logger)}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lg in logging.Logger.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.disabled = disabled.get(name, False)


def _differences(app) -> list:
    with app.app_context(), _logging_kept():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            diff = compare_metadata(ctx, db.metadata)
            if conn.dialect.name == "postgresql":
                diff += _function_differences(conn)
        db.session.remove()
        db.engine.dispose()
    return diff


def _function_differences(conn) -> list:
    """The hot sell path's SQL functions as the migrations left them must be the ones the code ships."""
    from app.scans.models import function_sql

    names = ("scan_sell_one", "scan_sell_many")

    def definitions():
        return [conn.exec_driver_sql(f"SELECT pg_get_functiondef('{n}'::regproc)").scalar() for n in names]

    built = definitions()
    conn.exec_driver_sql(function_sql())  # what create_all (and so the code) makes
    return [("function differs", name, "add a migration with the new text")
            for name, a, b in zip(names, built, definitions(), strict=True) if a != b]


def _explain(diff: list) -> str:
    return ("the migrations do not build the models' schema (generate a migration from the models):\n  "
            + "\n  ".join(repr(d)[:300] for d in diff))


def test_migrations_match_models_on_sqlite(make_app, tmp_path):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'fresh.db'}")
    diff = _differences(app)
    assert not diff, _explain(diff)


@pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL=postgresql+psycopg://...")
def test_migrations_match_models_on_postgres(make_app):
    base = sa.make_url(TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        app = make_app(SQLALCHEMY_DATABASE_URI=base.set(database=name).render_as_string(hide_password=False))
        diff = _differences(app)
        assert not diff, _explain(diff)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
