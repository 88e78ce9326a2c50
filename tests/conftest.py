"""Fixtures shared by every test.

The database is SQLite in a temporary folder, or PostgreSQL when TEST_DATABASE_URL is set (CI runs both).
Tests that need a real server (concurrency) take the `postgres` fixture: without PostgreSQL they are skipped
with the reason, unless REQUIRE_POSTGRES=1 (CI), where a missing server is an error.
The fake WeChat server runs in a thread for the whole session; the app's real gateways talk to it over HTTP.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from app import create_app
from app.accounts import services as account_services
from app.extensions import db
from app.integrations.wechatpay import generate_pay_keys, pay_config_from_keys
from tests.helpers import clear_tables
from tests.seeded import seeded

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")
APPID, SECRET = "wxtest0000000000", "test-secret"

account_services.use_fast_hashing()

TESTS_DIR = Path(__file__).resolve().parent
# The test pyramid's layers (README: Tests); every test gets one, so `pytest -m unit` runs a single layer.
LAYERS = ("unit", "service", "http", "e2e")
E2E_FIXTURES = {"served_app", "live_server"}  # the app over real HTTP in a thread


def _layer(item: pytest.Item) -> str:
    """e2e: a real server; http: the test client (or the API contract's folder); service: the database through
    the app; unit: no database at all."""
    fixtures = set(getattr(item, "fixturenames", ()))
    path = Path(item.path)
    if fixtures & E2E_FIXTURES:
        return "e2e"
    if "client" in fixtures or path.relative_to(TESTS_DIR).parts[0] == "api" or path.stem.endswith("_api"):
        return "http"
    if "app" in fixtures:
        return "service"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its layer, unless it names one itself."""
    for item in items:
        if not any(item.get_closest_marker(layer) for layer in LAYERS):
            item.add_marker(_layer(item))


@pytest.fixture(scope="session")
def pay_keys():
    return generate_pay_keys()


@pytest.fixture(scope="session")
def fake_wechat(pay_keys):
    from app.integrations.fake_wechat.server import start_fake_wechat_in_thread

    handle = start_fake_wechat_in_thread(appid=APPID, secret=SECRET, pay_keys=pay_keys)
    yield handle
    handle.stop()


def _database_url(tmp_path_factory) -> str:
    if TEST_DATABASE_URL:
        url = TEST_DATABASE_URL
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def _end_the_tests_transaction() -> None:
    """Start each test request with no transaction open, as a request on a server does.

    On a server every request pushes its own app context and so gets a fresh session. The test client reuses
    the app context a test holds, and with it the session: a read by the test (or by the request before) would
    still have its transaction open when the next request calls WeChat. Commit, so what the test wrote stays.
    """
    if db.session().in_transaction():
        db.session.commit()


@pytest.fixture(scope="session")
def app(tmp_path_factory, fake_wechat, pay_keys):
    cfg = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory),
        "SECRET_KEY": "test-secret-key-" + uuid.uuid4().hex,
        "JOBS_MODE": "inline",
        "REDIS_URL": None,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": fake_wechat.base_url,
        "WECHATPAY_API_BASE": fake_wechat.base_url.rstrip("/"),
        "WECHAT_TIMEOUT": 2.0,
        "DEMO_ADMIN_PASSWORD": "admin",
        "DEMO_HISTORY_DAYS": 14,
        "CODE_URL_BASE": "https://q.example.com",
        "TOKEN_REVOCATION_FILE": str(tmp_path_factory.mktemp("tokens") / "token-revocations.bin"),
        **pay_config_from_keys(pay_keys),
    }
    if ON_POSTGRES:
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 20, "max_overflow": 20}
    application = create_app(cfg)
    application.before_request(_end_the_tests_transaction)
    with application.app_context():
        db.drop_all()
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture()
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture()
def clean_db(app_ctx, fake_wechat):
    """An empty database (every table cleared) and a reset fake WeChat."""
    clear_tables()
    fake_wechat.reset() if hasattr(fake_wechat, "reset") else None
    yield
    db.session.remove()


@pytest.fixture()
def demo(clean_db, fake_wechat):
    """The demo data from shared/API.md, as a fresh seed leaves it (see `tests.seeded`)."""
    from app.demo.seed import seed

    seeded("demo", seed, fake_wechat)
    yield


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def postgres(app):
    """Skip unless the suite runs on PostgreSQL (a hard failure in CI, where REQUIRE_POSTGRES=1)."""
    if not ON_POSTGRES:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not PostgreSQL")
        pytest.skip("needs PostgreSQL for real concurrency: set TEST_DATABASE_URL=postgresql+psycopg://...")
    return app


def mp_login(client, openid: str) -> dict[str, str]:
    """Log in through the fake WeChat as `openid`; returns the Authorization header."""
    resp = client.post("/api/mp/v1/sessions", json={"code": f"demo:{openid}"})
    assert resp.status_code == 201, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def hq_login(client, username: str = "admin", password: str = "admin") -> dict[str, str]:
    resp = client.post("/api/hq/v1/sessions", json={"username": username, "password": password})
    assert resp.status_code == 201, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


@pytest.fixture()
def owner(client, demo):
    """Headers of the owner of S1."""
    return mp_login(client, "demo_store_owner")


@pytest.fixture()
def owner2(client, demo):
    return mp_login(client, "demo_store_owner_2")


@pytest.fixture()
def distributor(client, demo):
    return mp_login(client, "demo_distributor")


@pytest.fixture()
def admin(client, demo):
    return hq_login(client)


@pytest.fixture()
def isolated_extensions():
    """Restore the shared extension objects after a test that builds its own app with `create_app`.

    `api` and `limiter` are module-level objects that `create_app` re-binds, so a second app would otherwise
    leave the session app's rate limiter and OpenAPI document pointing at the new app.
    """
    from app.extensions import api, limiter

    saved = [(ext, dict(ext.__dict__)) for ext in (api, limiter)]
    yield
    for ext, state in saved:
        ext.__dict__.clear()
        ext.__dict__.update(state)


@pytest.fixture()
def make_app(app, isolated_extensions):
    """Build another app (same database) with settings changed; the shared extensions are restored after."""
    base = {key: app.config[key] for key in (
        "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "JOBS_MODE", "REDIS_URL", "RATELIMIT_ENABLED",
        "RATELIMIT_STORAGE_URI", "WECHAT_APPID", "WECHAT_SECRET", "WECHAT_API_BASE", "WECHATPAY_API_BASE",
        "WECHAT_TIMEOUT", "DEMO_ADMIN_PASSWORD", "DEMO_HISTORY_DAYS", "CODE_URL_BASE", "WECHATPAY_PRIVATE_KEY",
        "WECHATPAY_CERT_SERIAL_NO", "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID",
        "TOKEN_REVOCATION_FILE")}
    built = []

    def _make(**overrides):
        other = create_app({**base, **overrides})
        built.append(other)
        return other

    yield _make
    for other in built:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture()
def clerk(client, demo):
    """Headers of S1's clerk."""
    return mp_login(client, "demo_store_clerk")


@pytest.fixture()
def analyst(client, demo):
    return hq_login(client, "analyst")


@pytest.fixture()
def foundation_demo(clean_db, fake_wechat):
    """Only the foundation's part of the demo (channel, catalog, warehouses, people): much faster than `demo`.

    A test folder that needs no codes, orders or history overrides `demo` with this in its conftest.py.
    """
    from app.demo.seed import seed

    seeded("foundation", lambda: seed(extras=False), fake_wechat)
    yield
