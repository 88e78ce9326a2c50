"""Liveness and readiness probes for the load balancer."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.core.db import check_database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready while the database answers: the one thing the server cannot work without.

    Redis (shared WeChat token, rate limits, job queue) is checked too when configured, but the server works
    without it (limits fall back to the process, jobs run here), so a Redis outage answers 200 with
    `"status": "degraded"` rather than taking every healthy server out of the load balancer.
    """
    checks: dict[str, str] = {"database": check_database()}
    degraded: list[str] = []
    if current_app.config.get("REDIS_URL"):
        from redis import Redis

        client = Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # unreachable, refused, timed out: degraded, not unready
            checks["redis"] = f"error: {type(exc).__name__}"
            degraded.append("redis")
        finally:
            client.close()
    if checks["database"] != "ok":
        return jsonify({"status": "unavailable", "checks": checks}), 503
    body: dict = {"status": "degraded" if degraded else "ok", "checks": checks}
    if degraded:
        body["degraded"] = degraded
    return jsonify(body), 200
