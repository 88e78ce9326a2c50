"""Redis is optional at run time: with REDIS_URL pointing at a Redis nobody answers, the server keeps working.

Logins and scans work (rate limits fall back to this process, and the log says so), a code batch that cannot be
queued is made in this process instead of staying `pending`, and `/readyz` reports Redis as degraded but stays
ready, since the database is the one thing the server cannot work without.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.codes.models import Code, CodeBatch
from app.core.clock import now_utc
from app.core.tx import transaction
from app.extensions import db
from tests.scans.helpers import body, codes_in, on_hand

HQ = "/api/hq/v1"
MP = "/api/mp/v1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def no_redis(make_app, demo):
    """An app whose REDIS_URL (rate limits, job queue, WeChat token) points at a port nobody listens on."""
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    return make_app(REDIS_URL=url, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=url, JOBS_MODE="rq")


def test_logins_work_and_the_log_says_limits_are_local(no_redis, caplog):
    c = no_redis.test_client()
    with caplog.at_level(logging.WARNING):
        mp = c.post(f"{MP}/sessions", json={"code": "demo:demo_store_owner"})
        hq = c.post(f"{HQ}/sessions", json={"username": "admin", "password": "admin"})
    assert mp.status_code == 201, mp.get_json()
    assert hq.status_code == 201, hq.get_json()
    assert any("in-memory" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_rate_limits_still_hold_in_the_process(no_redis):
    c = no_redis.test_client()
    statuses = [c.post(f"{HQ}/sessions", json={"username": "nobody", "password": "x"}).status_code
                for _ in range(21)]
    assert statuses == [401] * 20 + [429]


def test_a_sell_works(no_redis):
    c = no_redis.test_client()
    token = c.post(f"{MP}/sessions", json={"code": "demo:demo_store_owner"}).get_json()["token"]
    with no_redis.app_context():
        unit = codes_in("S1")[0]
        serial, sku_id, before = unit.serial, unit.sku_id, on_hand("S1", unit.sku_id)
        db.session.remove()
    resp = c.post(f"{MP}/scans", json=body(serial), headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code in (200, 201), resp.get_json()
    assert resp.get_json()["status"] == "accepted"
    with no_redis.app_context():
        assert on_hand("S1", sku_id) == before - 1
        db.session.remove()


def test_code_batch_that_cannot_be_queued_is_made_here(no_redis, demo_ids):
    c = no_redis.test_client()
    token = c.post(f"{HQ}/sessions", json={"username": "admin", "password": "admin"}).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    resp = c.post(f"{HQ}/code-batches", json={"sku_id": demo_ids["skus"]["MILK250"], "quantity": 12,
                                              "case_size": 6}, headers=auth)
    assert resp.status_code == 202, resp.get_json()
    batch_id = resp.get_json()["id"]
    deadline = time.monotonic() + 30
    status = resp.get_json()["status"]
    while status in ("pending", "running") and time.monotonic() < deadline:
        status = c.get(f"{HQ}/code-batches/{batch_id}", headers=auth).get_json()["status"]
    assert status == "done"
    with no_redis.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Code.id)).where(Code.batch_id == batch_id,
                                                                          Code.kind == "unit")) == 12
        db.session.remove()


def test_readyz_stays_ready_with_redis_degraded(no_redis):
    resp = no_redis.test_client().get("/readyz")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["status"] == "degraded"
    assert data["checks"]["database"] == "ok" and data["checks"]["redis"].startswith("error")
    assert data["degraded"] == ["redis"]


def test_sweeper_makes_batches_left_pending(app_ctx, demo_ids):
    """A batch whose job was lost (queue down, process killed after the commit) is picked up by the sweeper."""
    from app.codes.services import sweep_pending_batches

    with transaction():
        old = CodeBatch(sku_id=demo_ids["skus"]["MILK250"], quantity=6, status="pending",
                        created_at=now_utc() - timedelta(minutes=30))
        fresh = CodeBatch(sku_id=demo_ids["skus"]["MILK250"], quantity=6, status="pending")
        db.session.add_all([old, fresh])
    old_id, fresh_id = old.id, fresh.id
    assert sweep_pending_batches() == 1
    db.session.expire_all()
    assert db.session.get(CodeBatch, old_id).status == "done"
    assert db.session.get(CodeBatch, fresh_id).status == "pending"  # its own job may still be on its way
    assert sweep_pending_batches() == 0


def test_a_batch_is_made_by_one_job_only(app_ctx, demo_ids):
    """A re-queued batch whose first job already took it is not made twice."""
    from app.codes.services import generate_batch

    with transaction():
        batch = CodeBatch(sku_id=demo_ids["skus"]["MILK250"], quantity=6, status="running",
                          started_at=now_utc())
        db.session.add(batch)
    generate_batch(batch.id)  # another job holds it
    assert db.session.scalar(sa.select(sa.func.count(Code.id)).where(Code.batch_id == batch.id)) == 0


def test_wechat_token_is_kept_in_the_process_while_redis_is_down(fake_wechat):
    """Calls that need an access token (phone number, codes, messages) work; stable_token makes a local copy safe."""
    from redis import Redis

    from app.integrations.wechat import WeChatGateway
    from tests.conftest import APPID, SECRET

    redis = Redis.from_url(f"redis://127.0.0.1:{_closed_port()}/0", socket_connect_timeout=0.5, socket_timeout=0.5)
    gateway = WeChatGateway(APPID, SECRET, fake_wechat.base_url, timeout=2.0, redis=redis)
    try:
        assert gateway.get_phone_number("demo:13800000001")["pure_phone"] == "13800000001"
        assert gateway.get_phone_number("demo:13800000002")["pure_phone"] == "13800000002"
    finally:
        gateway.close()
