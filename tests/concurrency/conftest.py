"""A real server for the concurrency tests: gunicorn, 2 workers × 4 threads, `wsgi:app`, as `scripts/run` serves.

`live_server` (one per test module) gives the server's base URL, logins as the demo roles, and an app on the
server's database for reading it from the test. The database is the suite's engine: a SQLite file of its own, or
on PostgreSQL a database of its own next to TEST_DATABASE_URL's (made here, dropped after), so the suite's
database is never touched. The schema is made and the demo seeded before gunicorn starts; the server talks to
the suite's fake WeChat. The server is always killed, its whole process group, whatever the tests did.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.integrations.wechatpay import pay_config_from_keys
from tests.concurrency.clients import Call, Reply, call
from tests.conftest import APPID, ON_POSTGRES, SECRET, TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]
WORKERS, THREADS = 2, 4
BOOT_TIMEOUT = 90.0
READY_MARK = "live-server worker ready"


@dataclass
class LiveServer:
    base_url: str
    database_url: str
    app: Any  # an app on the server's database (not serving): read and seed through `with server.db():`
    log_path: Path
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        return call(self.base_url, Call(method, path, body, tuple((headers or {}).items())))

    def login(self, openid: str) -> dict[str, str]:
        """Authorization header of a mini-program user, logged in through the fake WeChat (cached per module)."""
        key = ("mp", openid)
        if key not in self._tokens:
            r = self.request("POST", "/api/mp/v1/sessions", {"code": f"demo:{openid}"})
            assert r.status == 201, (r.status, r.body)
            self._tokens[key] = r.body["token"]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    def hq_login(self, username: str = "admin", password: str = "admin") -> dict[str, str]:
        key = ("hq", username)
        if key not in self._tokens:
            r = self.request("POST", "/api/hq/v1/sessions", {"username": username, "password": password})
            assert r.status == 201, (r.status, r.body)
            self._tokens[key] = r.body["token"]
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    @contextmanager
    def db(self) -> Iterator[None]:
        """An app context on the server's database; the session is closed after (nothing held on the server)."""
        with self.app.app_context():
            try:
                yield
            finally:
                db.session.remove()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_socket() -> socket.socket:
    """A listening socket on a free port, handed to gunicorn as is (no window for another process to take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


@contextmanager
def _server_database(tmp_dir: Path) -> Iterator[str]:
    """A database for the server alone: a SQLite file, or a PostgreSQL database beside the suite's.

    The PostgreSQL one (`<suite's database>_live`) is made once and emptied before and after each use: dropping a
    database makes a busy server checkpoint, which can take longer than the tests themselves.
    """
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_dir / 'live.db'}"
        return
    url = sa.engine.make_url(TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
                             .replace("postgres://", "postgresql+psycopg://", 1))
    name = f"{url.database}_live"[:63]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    live = sa.create_engine(url.set(database=name), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def empty() -> None:
        with admin.connect() as conn:  # whatever a killed earlier run left connected
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                 " WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        for attempt in (1, 2, 3):
            try:
                with live.connect() as conn:
                    conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                    conn.exec_driver_sql("CREATE SCHEMA public")
                return
            except sa.exc.OperationalError:
                # Through PgBouncer the connection handed out may be to a backend just terminated above: the
                # next one is to a new backend.
                if attempt == 3:
                    raise

    with admin.connect() as conn:
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        empty()
        yield live.url.render_as_string(hide_password=False)
    finally:
        empty()
        live.dispose()
        admin.dispose()


def _seeded_app(database_url: str, secret_key: str, fake_wechat, pay_keys):
    """An app on the server's database, with the schema and the demo in it (the suite's shared extensions kept)."""
    from app.demo.seed import seed
    from app.extensions import api, limiter

    saved = [(ext, dict(ext.__dict__)) for ext in (api, limiter)]
    try:
        app = create_app({
            "TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": secret_key,
            "JOBS_MODE": "inline", "REDIS_URL": None, "RATELIMIT_ENABLED": False,
            "RATELIMIT_STORAGE_URI": "memory://", "WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET,
            "WECHAT_API_BASE": fake_wechat.base_url, "WECHATPAY_API_BASE": fake_wechat.base_url.rstrip("/"),
            "DEMO_ADMIN_PASSWORD": "admin", "DEMO_HISTORY_DAYS": 2, **pay_config_from_keys(pay_keys),
            "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": sa.pool.NullPool}})
    finally:
        for ext, state in saved:
            ext.__dict__.clear()
            ext.__dict__.update(state)
    with app.app_context():
        db.create_all()
        seed()
        db.session.remove()
    return app


def _server_env(database_url: str, secret_key: str, fake_wechat, pay_keys) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT", "DB_", "REDIS", "RATELIMIT"))
           or k == "DB_PGBOUNCER"}  # the suite run through PgBouncer: the server is too
    env.update({
        "APP_ENV": "development", "DATABASE_URL": database_url, "SECRET_KEY": secret_key,
        "WECHAT_MODE": "fake", "WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": fake_wechat.base_url, "WECHATPAY_API_BASE": fake_wechat.base_url.rstrip("/"),
        "DEMO_ADMIN_PASSWORD": "admin",
        # As scripts/run without Redis: jobs in a thread of the server, rate limits in the process (off here:
        # the tests log in and scan far faster than a person).
        "JOBS_MODE": "thread", "RATELIMIT_ENABLED": "0",
        # 4 threads a worker: a small pool is plenty, and PostgreSQL's connections are shared with others.
        "DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2",
        **pay_config_from_keys(pay_keys),
    })
    return env


def _stop(proc: subprocess.Popen) -> None:
    """Kill gunicorn's whole process group (master, workers, their threads) at once: nothing of it is kept, so
    nothing needs a graceful stop, which would cost seconds for every module."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group is gone already
    proc.wait(timeout=30)


def _wait_ready(proc: subprocess.Popen, log_path: Path) -> None:
    """Both workers have loaded the app (the gunicorn hook below marks it in the log); bounded."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if text.count(READY_MARK) >= WORKERS:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not come up (exit {proc.poll()}):\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def live_server_env() -> dict[str, str]:
    """Settings added to the server's environment; a test module overrides this fixture to serve otherwise."""
    return {}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, fake_wechat, pay_keys, live_server_env) -> Iterator[LiveServer]:
    tmp_dir = tmp_path_factory.mktemp("live")
    secret_key = "live-" + secrets.token_hex(24)
    with _server_database(tmp_dir) as database_url:
        log_path = tmp_dir / "gunicorn.log"
        sock = _free_socket()
        port = sock.getsockname()[1]
        with open(log_path, "wb") as log:
            # No control socket: gunicorn's default is one path per user, which two servers would fight over.
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"fd://{sock.fileno()}", "--workers", str(WORKERS),
                 "--threads", str(THREADS), "--graceful-timeout", "10", "--access-logfile", "-",
                 "--no-control-socket", "--config", str(Path(__file__).with_name("gunicorn_hooks.py")),
                 "wsgi:app"],
                cwd=ROOT, env={**_server_env(database_url, secret_key, fake_wechat, pay_keys), **live_server_env},
                stdout=log,
                stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),), start_new_session=True)
        sock.close()
        atexit.register(_stop, proc)  # should the test process be interrupted before the finalizer
        app = None
        try:
            # The workers load the app meanwhile; they touch the database only on their first request.
            app = _seeded_app(database_url, secret_key, fake_wechat, pay_keys)
            _wait_ready(proc, log_path)
            yield LiveServer(base_url=f"http://127.0.0.1:{port}", database_url=database_url, app=app,
                             log_path=log_path)
        finally:
            _stop(proc)
            atexit.unregister(_stop)
            if app is not None:
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
