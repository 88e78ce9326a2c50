"""The Flask extensions, created once and bound in `create_app`."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
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


db = SQLAlchemy(model_class=Base)
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
