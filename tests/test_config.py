"""Settings: the embedded default runs as is; production refuses demo secrets and local stand-ins."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import DEMO_SECRET_KEY, ConfigError, load_config
from tests.helpers import PRODUCTION

ALL_KEYS = {*PRODUCTION, "WECHAT_API_BASE", "WECHATPAY_API_BASE", "DATABASE_URL", "FAKE_WECHAT_HOST", "JOBS_MODE",
            "MAX_CONTENT_LENGTH", "METRICS_ALLOW_LOOPBACK", "LOG_FORMAT", "DATABASE_REPLICA_URL", "DB_PGBOUNCER"}


@pytest.fixture()
def env(monkeypatch, isolated_extensions):
    """Set the process environment to exactly `values` (for the keys the checks read)."""
    def _set(**values):
        for key in ALL_KEYS:
            monkeypatch.delenv(key, raising=False)
        for key, value in values.items():
            if value is not None:
                monkeypatch.setenv(key, value)
    return _set


def test_default_is_development_with_sqlite_and_fake_wechat(env):
    env()
    cfg = load_config()
    assert cfg["APP_ENV"] == "development"
    assert cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///") and "instance" in cfg["SQLALCHEMY_DATABASE_URI"]
    assert cfg["WECHAT_MODE"] == "fake" and "127.0.0.1" in cfg["WECHAT_API_BASE"]
    assert cfg["JOBS_MODE"] == "inline"
    assert cfg["MAX_CONTENT_LENGTH"] > 0


def test_postgres_urls_use_psycopg3(env):
    env(DATABASE_URL="postgres://u:p@h/db")
    assert load_config()["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@h/db"


def test_complete_production_config_starts_without_network(env):
    env(**PRODUCTION)
    app = create_app()
    assert app.config["APP_ENV"] == "production"
    assert app.config["WECHAT_API_BASE"].startswith("https://api.weixin.qq.com")
    assert app.config["JOBS_MODE"] == "rq"


@pytest.mark.parametrize(("change", "named"), [
    ({"SECRET_KEY": None}, "SECRET_KEY"),
    ({"SECRET_KEY": DEMO_SECRET_KEY}, "SECRET_KEY"),
    ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
    ({"DEMO_ADMIN_PASSWORD": None}, "DEMO_ADMIN_PASSWORD"),
    ({"DEMO_ADMIN_PASSWORD": "admin"}, "DEMO_ADMIN_PASSWORD"),
    ({"WECHAT_MODE": None}, "WECHAT_MODE"),
    ({"WECHAT_MODE": "fake"}, "WECHAT_MODE"),
    ({"WECHAT_APPID": None}, "WECHAT_APPID"),
    ({"WECHAT_SECRET": None}, "WECHAT_SECRET"),
    ({"WECHAT_API_BASE": "http://127.0.0.1:8090/"}, "WECHAT_API_BASE"),
    ({"WECHATPAY_API_BASE": "http://localhost:8090"}, "WECHATPAY_API_BASE"),
    ({"DATABASE_URL": None}, "DATABASE_URL"),
    ({"DATABASE_URL": "sqlite:////srv/app.db"}, "DATABASE_URL"),
    ({"REDIS_URL": None}, "REDIS_URL"),
    ({"WECHATPAY_PRIVATE_KEY": None}, "WECHATPAY_PRIVATE_KEY"),
    ({"WECHATPAY_CERT_SERIAL_NO": None}, "WECHATPAY_CERT_SERIAL_NO"),
    ({"WECHATPAY_APIV3_KEY": None}, "WECHATPAY_APIV3_KEY"),
    ({"WECHATPAY_PUBLIC_KEY": None}, "WECHATPAY_PUBLIC_KEY"),
    ({"WECHATPAY_PUBLIC_KEY_ID": None}, "WECHATPAY_PUBLIC_KEY_ID"),
    ({"METRICS_TOKEN": None}, "METRICS_TOKEN"),
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ({"DATABASE_REPLICA_URL": "sqlite:////srv/replica.db"}, "DATABASE_REPLICA_URL"),
])
def test_production_refuses_unsafe_settings(env, change, named):
    env(**{**PRODUCTION, **change})
    with pytest.raises(ConfigError) as info:
        create_app()
    problems = str(info.value).splitlines()[1:]
    assert any(named in line for line in problems), str(info.value)


def test_production_metrics_may_rely_on_loopback_instead_of_a_token(env):
    """/metrics in production: a token, or the operator saying the scraper reads it on this machine."""
    env(**{**PRODUCTION, "METRICS_TOKEN": None, "METRICS_ALLOW_LOOPBACK": "1"})
    app = create_app()
    assert app.config["METRICS_TOKEN"] is None and app.config["METRICS_ALLOW_LOOPBACK"] is True
    assert app.config["LOG_FORMAT"] == "json"  # production's default: one JSON object per line


def test_development_logs_text_and_metrics_from_loopback(env):
    env()
    cfg = load_config()
    assert cfg["LOG_FORMAT"] == "text" and cfg["METRICS_ALLOW_LOOPBACK"] is True and cfg["METRICS_TOKEN"] is None
    assert cfg["DATABASE_REPLICA_URL"] is None


def test_a_replica_url_is_postgresql_and_gets_its_own_engine(env):
    """DATABASE_REPLICA_URL (postgres:// accepted) becomes the replica's engine beside the primary's."""
    from app.core.replica import replica_of

    env(DATABASE_URL="postgresql://u@127.0.0.1:5432/db", DATABASE_REPLICA_URL="postgres://u@127.0.0.1:5433/db")
    app = create_app()
    replica = replica_of(app)
    assert app.config["DATABASE_REPLICA_URL"] == "postgresql+psycopg://u@127.0.0.1:5433/db"
    assert replica.engine.url.port == 5433 and replica.max_lag == 30
    replica.engine.dispose()


def test_through_pgbouncer_psycopg_prepares_nothing(env, tmp_path):
    """DB_PGBOUNCER=1: no prepared statements, whoever set the engine options (the tests set their own)."""
    env(DB_PGBOUNCER="1", DATABASE_URL="postgresql://u@127.0.0.1:6432/db")
    app = create_app({"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 3, "connect_args": {"connect_timeout": 2}},
                      "WECHATPAY_DEMO_KEYS": str(tmp_path / "keys.json"),
                      "TOKEN_REVOCATION_FILE": str(tmp_path / "tokens.bin")})
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == 3
    assert options["connect_args"] == {"connect_timeout": 2, "prepare_threshold": None}
    env(DATABASE_URL="postgresql://u@127.0.0.1:5432/db")
    plain = create_app({"WECHATPAY_DEMO_KEYS": str(tmp_path / "keys.json"),
                        "TOKEN_REVOCATION_FILE": str(tmp_path / "tokens.bin")})
    assert "prepare_threshold" not in plain.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]


def test_production_lists_every_problem_at_once(env):
    env(APP_ENV="production")
    with pytest.raises(ConfigError) as info:
        create_app()
    text = str(info.value)
    for name in ("SECRET_KEY", "DEMO_ADMIN_PASSWORD", "WECHAT_MODE", "DATABASE_URL", "REDIS_URL",
                 "WECHATPAY_PRIVATE_KEY"):
        assert name in text


def test_production_refuses_explicit_overrides_too(env):
    env(**PRODUCTION)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"})


def test_bad_number_setting_names_the_setting(env):
    env(MAX_CONTENT_LENGTH="lots")
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        load_config()
