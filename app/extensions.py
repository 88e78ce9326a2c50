"""The Flask extensions, created once and bound in `create_app`."""

import contextvars
from typing import Any

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from marshmallow import RAISE, Schema, fields
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.openapi import ErrorResponses

# Stable constraint names, so Alembic migrations name things the same on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# The read replica's engine while a `replica_reads()` block runs in this context (app/core/replica.py).
replica_engine: contextvars.ContextVar[sa.Engine | None] = contextvars.ContextVar("replica_engine", default=None)
_READ_TEXT = "SELECT"  # a text statement the replica may run (a WITH may hide a write, so it does not)
USE_CASE_KEY = "tx_after_commit"  # app.core.tx's session.info key: non-empty while a transaction() block is open


def _is_write(clause: Any) -> bool:
    if clause is None:
        return False
    if isinstance(clause, sa.TextClause):
        return not clause.text.lstrip()[:6].upper().startswith(_READ_TEXT)
    return bool(getattr(clause, "is_dml", False)) or not getattr(clause, "is_select", True)


class RoutingSession(FlaskSession):
    """Flask-SQLAlchemy's session, sending the reads of a `replica_reads()` block to the replica."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        engine = replica_engine.get()
        if (engine is not None and bind is None and not self._flushing and not self.info.get(USE_CASE_KEY)
                and not _is_write(clause)):
            return engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


# The session sends the reads of a `replica_reads()` block to the read replica.
db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
migrate = Migrate(render_as_batch=True, compare_type=True)
class ErrorDetail(Schema):
    class Meta:
        unknown = RAISE  # documented as `additionalProperties: false`: these three keys, always

    code = fields.String(required=True, metadata={"description": "stable snake_case code for the app"})
    message = fields.String(required=True,
                            metadata={"description": "a short sentence for a person, Chinese by default"})
    details = fields.Dict(required=True)


class Error(Schema):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    class Meta:
        unknown = RAISE

    error = fields.Nested(ErrorDetail, required=True)


class ChannelApi(Api):
    # The OpenAPI document describes our error shape, not flask-smorest's default one.
    ERROR_SCHEMA = Error


api = ChannelApi(spec_kwargs={"extra_plugins": [ErrorResponses()]})
limiter = Limiter(key_func=get_remote_address, default_limits=[])
