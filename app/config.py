"""Settings from the environment, with an embedded default that runs with nothing installed.

With no settings the app uses a SQLite file in `instance/`, the local fake WeChat, and runs jobs in-process.
`APP_ENV=production` turns on the checks in `check_production` so a demo secret never reaches production.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

DEMO_SECRET_KEY = "demo-secret-key-do-not-use-in-production"
DEMO_ADMIN_PASSWORD = "admin"
# What the consumer page says about the brand (HQ sets these for its deployment; demo values otherwise).
DEMO_BRAND_NAME = "山泉"
DEMO_BRAND_SERVICE_CONTACT = "客服热线 400-820-0000（每天 9:00–21:00）"
DEMO_WECHAT_APPID = "wxdemo0000000000"
DEMO_WECHAT_SECRET = "demo-secret"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def database_url(env: dict[str, str]) -> str:
    url = env.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'channel.db'}"
    # Hosting platforms hand out postgres:// URLs; we always talk psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(env: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """Build the settings dict from environment variables, then apply explicit overrides."""
    env = dict(os.environ if env is None else env)
    app_env = env.get("APP_ENV", "development")
    wechat_mode = env.get("WECHAT_MODE", "fake")
    fake_base = f"http://{env.get('FAKE_WECHAT_HOST', '127.0.0.1')}:{env.get('FAKE_WECHAT_PORT', '8090')}/"
    wechat_base = fake_base if wechat_mode == "fake" else "https://api.weixin.qq.com/"
    pay_base = fake_base if wechat_mode == "fake" else "https://api.mch.weixin.qq.com"
    cfg: dict[str, Any] = {
        "APP_ENV": app_env,
        "SECRET_KEY": env.get("SECRET_KEY", DEMO_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": database_url(env),
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "SQLALCHEMY_RECORD_QUERIES": False,
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 2 * 1024 * 1024),
        "JSON_AS_ASCII": False,
        "REDIS_URL": env.get("REDIS_URL") or None,
        # "inline": run right after commit in this process (default; tests); "thread": background thread
        # in this process (demo server); "rq": Redis queue with separate workers (production).
        "JOBS_MODE": env.get("JOBS_MODE") or ("rq" if env.get("REDIS_URL") else "inline"),
        "DEMO_ADMIN_PASSWORD": env.get("DEMO_ADMIN_PASSWORD", DEMO_ADMIN_PASSWORD),
        "BRAND_NAME": env.get("BRAND_NAME") or DEMO_BRAND_NAME,
        "BRAND_SERVICE_CONTACT": env.get("BRAND_SERVICE_CONTACT") or DEMO_BRAND_SERVICE_CONTACT,
        "DEMO_HISTORY_DAYS": _int(env, "DEMO_HISTORY_DAYS", 56),
        "MP_TOKEN_TTL_SECONDS": _int(env, "MP_TOKEN_TTL_SECONDS", 7 * 24 * 3600),
        "HQ_TOKEN_TTL_SECONDS": _int(env, "HQ_TOKEN_TTL_SECONDS", 12 * 3600),
        "LOGIN_MAX_FAILURES": _int(env, "LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_MINUTES": _int(env, "LOGIN_LOCK_MINUTES", 15),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis is optional at run time: while it is unreachable each process counts the same limits itself
        # (Flask-Limiter logs "falling back to in-memory storage"), and goes back to Redis once it answers.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # A Redis that does not answer costs a login at most this long before the fallback takes over.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        # WeChat (mini-program) and WeChat Pay v3.
        "WECHAT_MODE": wechat_mode,
        "WECHAT_APPID": env.get("WECHAT_APPID", DEMO_WECHAT_APPID),
        "WECHAT_SECRET": env.get("WECHAT_SECRET", DEMO_WECHAT_SECRET),
        "WECHAT_API_BASE": env.get("WECHAT_API_BASE", wechat_base),
        # Seconds to wait for WeChat's and WeChat Pay's answer (read), and to connect: short, since a request
        # thread waits on them (real answers take well under a second).
        "WECHAT_TIMEOUT": float(env.get("WECHAT_TIMEOUT", "3")),
        "WECHAT_CONNECT_TIMEOUT": float(env.get("WECHAT_CONNECT_TIMEOUT", "1.5")),
        # At most this many request threads per process wait on WeChat at once; the next is refused at once
        # (503 wechat_busy / pay_busy), so a hung WeChat leaves the other threads to scans (app.integrations.slots).
        "WECHAT_MAX_CONCURRENT_CALLS": _int(env, "WECHAT_MAX_CONCURRENT_CALLS", 2),
        "WECHAT_BUSY_WAIT_SECONDS": float(env.get("WECHAT_BUSY_WAIT_SECONDS", "0")),
        "WECHAT_TEMPLATES": {
            "order_awaiting_confirmation": env.get("WECHAT_TEMPLATE_AWAITING_CONFIRMATION", "tmpl_order_confirm"),
            "order_paid": env.get("WECHAT_TEMPLATE_PAID", "tmpl_order_paid"),
            "order_shipped": env.get("WECHAT_TEMPLATE_SHIPPED", "tmpl_order_shipped"),
            "order_delivered": env.get("WECHAT_TEMPLATE_DELIVERED", "tmpl_order_delivered"),
            "registration_expiring": env.get("WECHAT_TEMPLATE_REGISTRATION_EXPIRING", "tmpl_registration_expiring"),
            "consumer_order_new": env.get("WECHAT_TEMPLATE_CONSUMER_ORDER_NEW", "tmpl_consumer_order_new"),
            "consumer_order_reminder": env.get("WECHAT_TEMPLATE_CONSUMER_ORDER_REMINDER",
                                               "tmpl_consumer_order_reminder"),
            "consumer_order_with_hq": env.get("WECHAT_TEMPLATE_CONSUMER_ORDER_WITH_HQ", "tmpl_consumer_order_hq"),
            "training_live_soon": env.get("WECHAT_TEMPLATE_TRAINING_LIVE_SOON", "tmpl_training_live_soon"),
            "training_due_soon": env.get("WECHAT_TEMPLATE_TRAINING_DUE_SOON", "tmpl_training_due_soon"),
        },
        "WECHATPAY_MCHID": env.get("WECHATPAY_MCHID", "1900000109"),
        "WECHATPAY_PRIVATE_KEY": env.get("WECHATPAY_PRIVATE_KEY"),
        "WECHATPAY_CERT_SERIAL_NO": env.get("WECHATPAY_CERT_SERIAL_NO"),
        "WECHATPAY_APIV3_KEY": env.get("WECHATPAY_APIV3_KEY"),
        "WECHATPAY_PUBLIC_KEY": env.get("WECHATPAY_PUBLIC_KEY"),
        "WECHATPAY_PUBLIC_KEY_ID": env.get("WECHATPAY_PUBLIC_KEY_ID"),
        "WECHATPAY_NOTIFY_URL": env.get("WECHATPAY_NOTIFY_URL", "http://127.0.0.1:8000/api/wechat/pay/notify"),
        "WECHATPAY_API_BASE": env.get("WECHATPAY_API_BASE", pay_base),
        "WECHATPAY_DEMO_KEYS": env.get("WECHATPAY_DEMO_KEYS", str(INSTANCE / "wechatpay-demo-keys.json")),
        # Printed codes.
        "CODE_URL_BASE": env.get("CODE_URL_BASE", "https://q.example.com"),
        "SCAN_UNDO_MINUTES": _int(env, "SCAN_UNDO_MINUTES", 10),
        "SCAN_BATCH_MAX": _int(env, "SCAN_BATCH_MAX", 500),
        # How old a phone's scan time may be (an offline queue) before it is recorded at the server's time.
        "SCAN_OFFLINE_DAYS": _int(env, "SCAN_OFFLINE_DAYS", 30),
        "DIVERSION_POLICY": env.get("DIVERSION_POLICY", "alert"),
        "PROXY_ORDER_CONFIRM_DAYS": _int(env, "PROXY_ORDER_CONFIRM_DAYS", 3),
        # Consumer orders: minutes the serving partner has to accept before the order passes on, and how many
        # minutes before that its staff are reminded; wrong confirmation codes allowed before the order locks.
        "CONSUMER_ORDER_ACCEPT_MINUTES": _int(env, "CONSUMER_ORDER_ACCEPT_MINUTES", 120),
        "CONSUMER_ORDER_REMIND_MINUTES": _int(env, "CONSUMER_ORDER_REMIND_MINUTES", 30),
        "CONSUMER_ORDER_CODE_TRIES": _int(env, "CONSUMER_ORDER_CODE_TRIES", 5),
        # Ratings of a distributor in a month before their average counts (is shown as its score, enters assessment).
        "RATING_MIN_COUNT": _int(env, "RATING_MIN_COUNT", 3),
        # Seconds a client is told to wait (Retry-After) when the database cannot be reached.
        "DB_RETRY_AFTER_SECONDS": _int(env, "DB_RETRY_AFTER_SECONDS", 3),
        # Token revocation (app/accounts/revocation.py): the file that tells this machine's processes of a change
        # when there is no Redis, and the Redis key prefix of the users' token versions when there is.
        "TOKEN_REVOCATION_FILE": env.get("TOKEN_REVOCATION_FILE", str(INSTANCE / "token-revocations.bin")),
        "TOKEN_VERSION_KEY_PREFIX": env.get("TOKEN_VERSION_KEY_PREFIX", "tokver:"),
        # Logs: "json" (one object per line, for a log shipper) or "text"; see app/logging_setup.py.
        "LOG_FORMAT": (env.get("LOG_FORMAT") or ("json" if app_env == "production" else "text")).strip().lower(),
        # /metrics (app/web/metrics.py): a bearer token for the scraper, and/or from this machine's loopback
        # without a proxy's headers (on by default outside production; production must say so).
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "METRICS_ALLOW_LOOPBACK": _bool(env.get("METRICS_ALLOW_LOOPBACK"), app_env != "production"),
        # PostgreSQL is reached through PgBouncer in transaction pooling mode (scripts/pgbouncer): no statement is
        # prepared on a server connection (PgBouncer before 1.21 cannot carry one to the next transaction).
        "DB_PGBOUNCER": _bool(env.get("DB_PGBOUNCER")),
        # A read replica (a streaming standby, scripts/replica): dashboards, exports and console reports read it
        # (app/core/replica.py) while it is in recovery and at most DATABASE_REPLICA_MAX_LAG_SECONDS behind,
        # else the primary; checked at most every DATABASE_REPLICA_CHECK_SECONDS, and not asked again for
        # DATABASE_REPLICA_RETRY_SECONDS once found unusable. /metrics reports its replay lag.
        "DATABASE_REPLICA_URL": database_url({"DATABASE_URL": env["DATABASE_REPLICA_URL"]})
        if env.get("DATABASE_REPLICA_URL") else None,
        "DATABASE_REPLICA_MAX_LAG_SECONDS": float(env.get("DATABASE_REPLICA_MAX_LAG_SECONDS") or 30),
        "DATABASE_REPLICA_CHECK_SECONDS": float(env.get("DATABASE_REPLICA_CHECK_SECONDS") or 2),
        "DATABASE_REPLICA_RETRY_SECONDS": float(env.get("DATABASE_REPLICA_RETRY_SECONDS") or 10),
        "DATABASE_REPLICA_CONNECT_TIMEOUT": _int(env, "DATABASE_REPLICA_CONNECT_TIMEOUT", 2),
    }
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {
            # No pre-ping: it is a round trip before every request. Connections are recycled well inside any
            # server or proxy idle timeout; one found dead (database restart, failover) invalidates the whole
            # pool (SQLAlchemy's default), and the scan use cases run once more on a fresh connection.
            "pool_recycle": _int(env, "DB_POOL_RECYCLE_SECONDS", 1800),
            "pool_size": _int(env, "DB_POOL_SIZE", 10),
            "max_overflow": _int(env, "DB_MAX_OVERFLOW", 10),
            # A database host that does not answer at all fails the request in seconds (503, see app.errors).
            "connect_args": {"connect_timeout": _int(env, "DB_CONNECT_TIMEOUT", 5)},
        }
    cfg.update(overrides)
    # The console's session cookie: HttpOnly always; Secure (and so the __Host- name: this host only, path /)
    # in production unless SESSION_COOKIE_SECURE says otherwise, which the production check then refuses.
    production = cfg["APP_ENV"] == "production"
    cfg.setdefault("SESSION_COOKIE_SECURE", _bool(env.get("SESSION_COOKIE_SECURE"), production))
    cfg.setdefault("SESSION_COOKIE_HTTPONLY", True)
    cfg.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    cfg.setdefault("SESSION_COOKIE_NAME", "__Host-session" if cfg["SESSION_COOKIE_SECURE"] else "session")
    return cfg


class ConfigError(RuntimeError):
    """The settings are unsafe or incomplete for the environment they claim to be."""


def check_production(cfg: dict[str, Any]) -> None:
    """Refuse to start production with demo secrets, the fake WeChat or SQLite."""
    if cfg["APP_ENV"] != "production":
        return
    problems = []
    if cfg["SECRET_KEY"] in (DEMO_SECRET_KEY, "") or len(cfg["SECRET_KEY"]) < 32:
        problems.append("SECRET_KEY is the demo key or shorter than 32 characters: set a long random SECRET_KEY")
    if cfg["DEMO_ADMIN_PASSWORD"] == DEMO_ADMIN_PASSWORD:
        problems.append("DEMO_ADMIN_PASSWORD is the demo password 'admin': set DEMO_ADMIN_PASSWORD or unset it")
    if cfg["WECHAT_MODE"] != "real":
        problems.append("WECHAT_MODE is not 'real': production must talk to real WeChat (set WECHAT_MODE=real)")
    if cfg["WECHAT_APPID"] == DEMO_WECHAT_APPID or cfg["WECHAT_SECRET"] == DEMO_WECHAT_SECRET:
        problems.append("WECHAT_APPID / WECHAT_SECRET are the demo values: set the mini-program's real ones")
    for key in ("WECHAT_API_BASE", "WECHATPAY_API_BASE"):
        if any(host in (cfg.get(key) or "") for host in ("127.0.0.1", "localhost")):
            problems.append(f"{key} points at a local fake WeChat: unset it to use WeChat itself")
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        problems.append("DATABASE_URL is SQLite: production needs PostgreSQL (postgresql+psycopg://...)")
    replica = cfg.get("DATABASE_REPLICA_URL")
    if replica and not replica.startswith("postgresql"):
        problems.append("DATABASE_REPLICA_URL is not PostgreSQL: the read replica is a PostgreSQL standby "
                        "(postgresql+psycopg://...), or unset it")
    if not cfg.get("SESSION_COOKIE_SECURE"):
        problems.append("SESSION_COOKIE_SECURE is off: the console's cookie must only travel over HTTPS "
                        "(unset SESSION_COOKIE_SECURE)")
    if not cfg["REDIS_URL"]:
        problems.append("REDIS_URL is not set: production needs Redis for tokens, rate limits and jobs")
    token = cfg.get("METRICS_TOKEN") or ""
    if token and len(token) < 32:
        problems.append("METRICS_TOKEN is shorter than 32 characters: set a long random METRICS_TOKEN")
    if not token and not cfg.get("METRICS_ALLOW_LOOPBACK"):
        problems.append("/metrics has no access rule: set METRICS_TOKEN (the scraper's bearer token), or "
                        "METRICS_ALLOW_LOOPBACK=1 when the scraper reads it on this machine and no proxy here "
                        "forwards /metrics")
    if cfg.get("LOG_FORMAT") not in ("json", "text"):
        problems.append("LOG_FORMAT must be 'json' or 'text'")
    for key in ("WECHATPAY_PRIVATE_KEY", "WECHATPAY_CERT_SERIAL_NO", "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY",
                "WECHATPAY_PUBLIC_KEY_ID"):
        if not cfg.get(key):
            problems.append(f"{key} is not set: WeChat Pay cannot work without it")
    if problems:
        raise ConfigError("Refusing to start in production:\n  - " + "\n  - ".join(problems))
