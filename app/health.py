"""Liveness and readiness probes for the load balancer."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The database answers, and Redis too when configured."""
    checks: dict[str, str] = {}
    ok = True
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready
        ok, checks["database"] = False, f"error: {type(exc).__name__}"
    finally:
        db.session.rollback()
    if current_app.config.get("REDIS_URL"):
        try:
            from redis import Redis

            Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=1).ping()
            checks["redis"] = "ok"
        except Exception as exc:  # any failure means not ready
            ok, checks["redis"] = False, f"error: {type(exc).__name__}"
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503
