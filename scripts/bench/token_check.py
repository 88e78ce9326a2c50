#!/usr/bin/env python
"""What the token check costs per request: the signature and expiry alone (the check before tokens could be
revoked), then the whole check with revocation on each backend (the shared slot file of the embedded default;
Redis), in microseconds per call, the median of five rounds.

Usage: .venv/bin/python scripts/bench/token_check.py [calls] [--redis redis://127.0.0.1:6379/6]
Runs on a SQLite file in a temporary folder (the check reads no database once warm, on either backend).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _app(tmp: Path, redis_url: str | None):
    from app import create_app
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.db'}", "JOBS_MODE": "inline",
                      "RATELIMIT_ENABLED": False, "REDIS_URL": redis_url,
                      "TOKEN_REVOCATION_FILE": str(tmp / "tokens.bin"),
                      "TOKEN_VERSION_KEY_PREFIX": f"bench-tokver-{uuid.uuid4().hex}:",
                      "WECHATPAY_DEMO_KEYS": str(tmp / "pay-keys.json")})
    with app.app_context():
        db.create_all()
    return app


def _token(app) -> str:
    from app.accounts.models import User
    from app.core.tx import transaction
    from app.extensions import db
    from app.sessions.flows import token_for

    with app.app_context():
        with transaction():
            user = User(openid=f"bench-{uuid.uuid4().hex[:12]}", display_name="bench")
            db.session.add(user)
        return token_for(user, "mp")["token"]


def _per_call_us(fn, calls: int, rounds: int = 5) -> float:
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def _measure(app, token: str, calls: int) -> tuple[float, float]:
    from app.core import security

    with app.test_request_context():
        security.read_token(token)  # warm: signature cached, version cached or refilled

        def signature_only():  # what read_token did before tokens could be revoked
            p = security._signed_principal(security.current_app.config["SECRET_KEY"], token)
            assert p.expires_at > time.time()

        return _per_call_us(signature_only, calls), _per_call_us(lambda: security.read_token(token), calls)


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20000
    redis_url = sys.argv[sys.argv.index("--redis") + 1] if "--redis" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("slot file (no Redis)", None)] + ([("Redis GET", redis_url)] if redis_url else [])
        for name, url in backends:
            app = _app(Path(tmp), url)
            base, full = _measure(app, _token(app), calls if url is None else max(calls // 10, 100))
            print(f"{name:>22}: signature+expiry {base:6.2f} µs · with the revocation check {full:7.2f} µs "
                  f"({full - base:+.2f} µs per request)")


if __name__ == "__main__":
    main()
