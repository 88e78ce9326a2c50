"""The channel backend: `create_app()` builds the Flask app from settings."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.config import check_production, load_config
from app.core import schemas as _schemas  # noqa: F401  (marshmallow in Chinese before any schema is built)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment unless `config` overrides them."""
    cfg = load_config(**(config or {}))
    check_production(cfg)
    if cfg["WECHAT_MODE"] == "fake" and not cfg.get("WECHATPAY_PRIVATE_KEY"):
        # The demo's merchant and "WeChat" keys: made once under instance/, never committed.
        from pathlib import Path

        from app.integrations.wechatpay import pay_config_from_keys, write_demo_pay_keys

        keys_file = Path(cfg["WECHATPAY_DEMO_KEYS"])
        cfg.update(pay_config_from_keys(write_demo_pay_keys(keys_file.parent, keys_file.name)))

    app = Flask(__name__, instance_relative_config=False)
    app.config.update(cfg)
    from app.core.types import IdConverter

    app.url_map.converters["int"] = IdConverter  # every `<int:id>` route: 1..BIGINT_MAX, else no match (404)
    app.config.update(
        API_TITLE="门店渠道后台 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "Mini-program, HQ and public routes of the channel backend. Errors are "
                                    "`{\"error\": {\"code\", \"message\", \"details\"}}`."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    from app.logging_setup import setup_logging

    setup_logging(app)
    _provide_security()
    _init_extensions(app)
    _register_routes(app)

    from app.web.headers import init_app as init_security_headers

    init_security_headers(app)

    from app.errors import register_error_handlers

    register_error_handlers(app)  # after flask-smorest, so ours wins

    from app.core.jsonguard import init_app as init_json_guard

    init_json_guard(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _provide_security() -> None:
    """Give `app.core.security` the roles and the store-scope lookup it checks with (core imports no domain)."""
    from app.accounts import roles
    from app.channel.queries import get_store_scope
    from app.core import security

    security.provide(roles=security.RoleTable(
        permissions=roles.PERMISSIONS, store_roles=roles.STORE_ROLES, partner_roles=roles.PARTNER_ROLES,
        region_roles=(roles.HQ_ADMIN, roles.HQ_ANALYST), warehouse_role=roles.WAREHOUSE_OPERATOR),
        load_store_scope=get_store_scope)


def _init_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (every table, for Alembic and create_all)
    from app.accounts import revocation
    from app.extensions import api, db, limiter, migrate
    from app.integrations import wechat, wechatpay

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from pathlib import Path

        path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if app.config.get("DB_PGBOUNCER") and app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        _through_pgbouncer(app)
    db.init_app(app)
    from app.core import replica

    replica.init_app(app)  # after the PgBouncer options: the replica's engine takes the same ones
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _sqlite_pragmas(app)
    migrate.init_app(app, db, directory=str(__import__("pathlib").Path(__file__).parent.parent / "migrations"))
    api.init_app(app)
    limiter.init_app(app)
    wechat.init_app(app)
    wechatpay.init_app(app)
    revocation.init_app(app)


def _through_pgbouncer(app: Flask) -> None:
    """PgBouncer in transaction mode hands each transaction any server connection: psycopg must prepare no
    statement (it does after 5 runs of one, by default), or the next transaction finds it missing. Applied to the
    engine options whoever set them (settings or a caller's overrides), and so to the hot path's connections."""
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _sqlite_pragmas(app: Flask) -> None:
    """SQLite's settings on every connection, and transactions begun by us: see `app.core.db.setup_sqlite`."""
    from app.core.db import SQLITE_BUSY_TIMEOUT_MS, setup_sqlite
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    setup_sqlite(engine, busy_timeout_ms=int(app.config.get("SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS)))


def _register_routes(app: Flask) -> None:
    """Every route area, imported plainly (a missing one fails start-up): the mini-program API, the HQ API and
    console, and the app's own HTTP edges in app/web (health, metrics, landing and docs, public pages, WeChat Pay)."""
    from app.extensions import api
    from app.hq import catalog_pages  # noqa: F401  (its routes join the console's blueprint at import)
    from app.hq.api import register as register_hq_api
    from app.hq.order_pages import register as register_console
    from app.web import docs, health, public, wechat_pay
    from app.web import metrics as metrics_edge
    from miniprogram_api import register as register_mp

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics_edge.bp)
    register_mp(api)
    register_hq_api(api)
    docs.register(app, api)
    register_console(app, api)
    public.register(app, api)
    wechat_pay.register(app, api)
