"""`/metrics` and the JSON log lines, in one process (the default registry; multiprocess mode is in
tests/concurrency/test_live_metrics.py, on a real gunicorn).

Who may scrape, what the scan counters count (once per item, only once committed), that the latency histogram is
labelled by route template, the fold lag, the job and WeChat call metrics, and the JSON line of a request.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.analytics import rollups
from app.analytics.models import SalesInbox
from app.codes.models import Code
from app.core.clock import now_utc
from app.core.tx import transaction
from app.extensions import db
from app.logging_setup import JsonFormatter
from app.scans import services
from app.scans.services import ScanInput
from tests.metrics.helpers import parse, series, value
from tests.scans.helpers import body, codes_in, owner_principal

MP = "/api/mp/v1"
TOKEN = "metrics-token-" + "x" * 30


def scrape(client, **kwargs) -> dict:
    resp = client.get("/metrics", **kwargs)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "text/plain"
    return parse(resp.get_data(as_text=True))


def scans(client, action: str, outcome: str, reason: str = "") -> float:
    return value(scrape(client), "scans_total", action=action, outcome=outcome, reason=reason)


# --- who may scrape -------------------------------------------------------------------------------------------

def test_loopback_may_scrape_and_the_world_may_not(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert outside.status_code == 404 and outside.get_json()["error"]["code"] == "not_found"
    # A proxy on this machine makes every caller look local: a forwarded request is not loopback.
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert forwarded.status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    # Nothing of a session: no cookie is set.
    assert "Set-Cookie" not in client.get("/metrics").headers


def test_with_a_token_the_scraper_needs_it(make_app):
    app = make_app(METRICS_TOKEN=TOKEN, METRICS_ALLOW_LOOPBACK=False)
    c = app.test_client()
    far = {"REMOTE_ADDR": "198.51.100.20"}
    assert c.get("/metrics").status_code == 404  # loopback is not enough any more
    assert c.get("/metrics", environ_base=far, headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert c.get("/metrics", environ_base=far, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 404
    ok = c.get("/metrics", environ_base=far, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and b"http_request_duration_seconds" in ok.data
    assert ok.headers["Cache-Control"] == "no-store"


def test_the_token_works_beside_loopback(make_app):
    app = make_app(METRICS_TOKEN=TOKEN)
    c = app.test_client()
    assert c.get("/metrics").status_code == 200
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                 headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404


# --- scans ------------------------------------------------------------------------------------------------------

def test_a_sell_a_duplicate_and_a_refusal_are_counted(client, owner):
    serial = codes_in("S1")[0].serial
    before = scrape(client)
    assert client.post(f"{MP}/scans", json=body(serial), headers=owner).get_json()["status"] == "accepted"
    assert client.post(f"{MP}/scans", json=body(serial), headers=owner).get_json()["status"] == "duplicate"
    unknown = serial[:-3] + ("AAA" if not serial.endswith("AAA") else "BBB")
    r = client.post(f"{MP}/scans", json=body(unknown), headers=owner).get_json()
    assert r["status"] == "refused" and r["reason"] in ("unknown_code", "bad_check_character")
    reason = r["reason"]
    r = client.post(f"{MP}/scans", json=body("NO-SUCH-CODE-42"), headers=owner).get_json()
    assert r["status"] == "refused" and r["reason"] == "not_a_code"
    after = scrape(client)

    def moved(**labels):
        return value(after, "scans_total", **labels) - value(before, "scans_total", **labels)

    assert moved(action="sell", outcome="accepted", reason="") == 1
    assert moved(action="sell", outcome="duplicate", reason="") == 1
    assert moved(action="sell", outcome="refused", reason=reason) == 1
    assert moved(action="sell", outcome="refused", reason="not_a_code") == 1


def test_every_parse_error_is_a_counted_reason():
    import inspect

    from app.codes import parse

    raised = set(__import__("re").findall(r'ScanParseError\("([a-z_]+)"', inspect.getsource(parse)))
    assert raised and raised == set(parse.PARSE_ERRORS)
    assert raised <= services.COUNTED_REASONS


def test_a_replayed_request_is_not_counted_twice_as_a_sale(client, owner):
    item = body(codes_in("S1")[0].serial)
    first = scans(client, "sell", "accepted")
    assert client.post(f"{MP}/scans", json=item, headers=owner).get_json()["status"] == "accepted"
    replays = scans(client, "sell", "replayed")
    again = client.post(f"{MP}/scans", json=item, headers=owner).get_json()
    assert again["status"] == "accepted" and again.get("replayed") is True
    assert scans(client, "sell", "accepted") == first + 1
    assert scans(client, "sell", "replayed") == replays + 1


def test_a_batch_counts_each_item_once(client, owner):
    units = codes_in("S1", n=3)
    items = [body(u.serial) for u in units]
    items.append(body(units[0].serial))                                 # sold earlier in this batch
    items.append({"request_id": "bad-item-1", "code": 5, "action": "sell"})  # refused by the edge
    items.append(body("NO-SUCH-CODE-43", action="receive"))  # not one of our codes
    before = scrape(client)
    r = client.post(f"{MP}/scans/batch", json={"items": items}, headers=owner)
    assert r.status_code == 200, r.get_json()
    after = scrape(client)

    def moved(**labels):
        return value(after, "scans_total", **labels) - value(before, "scans_total", **labels)

    assert moved(action="sell", outcome="accepted", reason="") == 3
    assert moved(action="sell", outcome="duplicate", reason="") == 1
    assert moved(action="sell", outcome="refused", reason="validation_failed") == 1
    assert moved(action="receive", outcome="refused", reason="not_a_code") == 1
    total = sum(after[k] - before.get(k, 0) for k in after if k[0] == "scans_total")
    assert total == len(items)


def test_a_reason_outside_the_refusal_table_is_other(client, owner):
    item = body(codes_in("S1")[0].serial)
    before = scans(client, "sell", "refused", "other")
    r = client.post(f"{MP}/scans/batch", json={"items": [item, {**item, "code": "X"}]}, headers=owner)
    assert [a["reason"] for a in r.get_json()["items"]][1] == "duplicate_request_id"
    assert scans(client, "sell", "refused", "other") == before + 1
    assert {s["reason"] for s in series(scrape(client), "scans_total")} <= {"", "other", *services.COUNTED_REASONS}


def test_a_rolled_back_scan_is_not_counted(app_ctx, demo, client, monkeypatch):
    """The scan did its work, then its transaction failed: nothing is counted, nothing changed."""
    code = codes_in("S1")[0]
    serial, code_id = code.serial, code.id
    db.session.remove()
    principal = owner_principal("S1")
    before = scrape(client)

    def fail(*_args, **_kwargs):
        raise RuntimeError("the commit never happens")

    monkeypatch.setattr(services, "_keep_answer", fail)
    # A day old (an offline queue): the general path on every engine, where the work is undone.
    scan = ScanInput(request_id=uuid.uuid4().hex, code=serial, action="sell",
                     scanned_at=now_utc() - timedelta(days=1))
    with pytest.raises(RuntimeError):
        services.scan(principal, scan)
    db.session.remove()
    assert db.session.get(Code, code_id).state == "in_store"
    after = scrape(client)
    assert [k for k in after if k[0] == "scans_total" and after[k] != before.get(k, 0)] == []
    monkeypatch.undo()
    services.scan(principal, ScanInput(request_id=uuid.uuid4().hex, code=serial, action="sell",
                                       scanned_at=now_utc() - timedelta(days=1)))
    assert scans(client, "sell", "accepted") == value(before, "scans_total", action="sell", outcome="accepted",
                                                      reason="") + 1


def test_an_undo_is_counted_and_the_route_label_is_the_template(client, owner):
    a = client.post(f"{MP}/scans", json=body(codes_in("S1")[0].serial), headers=owner).get_json()
    undos = scans(client, "undo", "accepted")
    r = client.post(f"{MP}/scans/{a['event_id']}/undo", headers=owner)
    assert r.status_code == 200, r.get_json()
    client.get("/no/such/page/12345")
    samples = scrape(client)
    assert value(samples, "scans_total", action="undo", outcome="accepted", reason="") == undos + 1
    routes = {s["route"] for s in series(samples, "http_request_duration_seconds_count")}
    assert "/api/mp/v1/scans/<int:event_id>/undo" in routes
    assert "<unmatched>" in routes
    assert not any(str(a["event_id"]) in r or "12345" in r for r in routes), routes
    labels = [s for s in series(samples, "http_request_duration_seconds_count")
              if s["route"] == "/api/mp/v1/scans/<int:event_id>/undo"]
    assert any({"method": "POST", "status": "200"}.items() <= labels_.items() for labels_ in labels), labels


# --- scrape-time gauges, jobs, WeChat -------------------------------------------------------------------------

def test_the_fold_lag_is_the_age_of_the_oldest_unfolded_sale(client, owner):
    rollups.fold()
    db.session.commit()
    assert value(scrape(client), "rollup_fold_lag_seconds") == 0
    assert client.post(f"{MP}/scans", json=body(codes_in("S1")[0].serial), headers=owner).get_json()[
        "status"] == "accepted"
    with transaction():  # as if the fold had not run for two minutes
        db.session.execute(sa.update(SalesInbox).values(created_at=now_utc() - timedelta(minutes=2)))
    lag = value(scrape(client), "rollup_fold_lag_seconds")
    assert 115 <= lag <= 200
    assert value(scrape(client), "metrics_source_up", source="database") == 1
    rollups.fold()
    assert value(scrape(client), "rollup_fold_lag_seconds") == 0


def test_the_hot_path_and_the_general_path_write_the_inbox_time(client, owner):
    rollups.fold()
    start = now_utc() - timedelta(seconds=2)
    client.post(f"{MP}/scans", json=body(codes_in("S1")[0].serial), headers=owner)
    client.post(f"{MP}/scans", json=body(codes_in("S1")[0].serial, scanned_at=(now_utc() - timedelta(
        hours=3)).isoformat()), headers=owner)
    times = list(db.session.scalars(sa.select(SalesInbox.created_at)))
    assert len(times) == 2 and all(start <= t <= now_utc() + timedelta(seconds=2) for t in times), times


def test_a_failed_in_process_job_is_counted(app_ctx, client):
    from app.integrations.jobs import enqueue

    before = value(scrape(client), "jobs_failed_total", mode="inline")
    enqueue("json.loads", "this is not json")
    assert value(scrape(client), "jobs_failed_total", mode="inline") == before + 1


def test_wechat_calls_are_timed_and_their_errors_counted(client, demo):
    before = scrape(client)
    assert client.post(f"{MP}/sessions", json={"code": "demo:demo_store_owner"}).status_code == 201
    assert client.post(f"{MP}/sessions", json={"code": "bogus"}).status_code == 400
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("wechat_call_duration_seconds_count", api="wechat.jscode2session", outcome="ok") == 1
    assert moved("wechat_call_duration_seconds_count", api="wechat.jscode2session", outcome="error") == 1
    assert moved("wechat_call_errors_total", api="wechat.jscode2session", kind="wechat_invalid_code") == 1


def test_an_unreachable_wechat_is_a_timeout_or_unreachable_error(make_app, demo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_app(WECHAT_API_BASE=f"http://127.0.0.1:{port}/")
    c = app.test_client()
    before = parse(c.get("/metrics").get_data(as_text=True))
    assert c.post(f"{MP}/sessions", json={"code": "demo:demo_store_owner"}).status_code == 503
    after = parse(c.get("/metrics").get_data(as_text=True))
    assert value(after, "wechat_call_errors_total", api="wechat.jscode2session", kind="unreachable") == value(
        before, "wechat_call_errors_total", api="wechat.jscode2session", kind="unreachable") + 1


@pytest.fixture()
def redis_url(tmp_path):
    """A Redis of this test's own (Debian's redis-server), stopped after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_rq_queue_depth_and_failures_are_read_at_scrape(make_app, redis_url):
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    app = make_app(REDIS_URL=redis_url, JOBS_MODE="rq")
    c = app.test_client()
    samples = parse(c.get("/metrics").get_data(as_text=True))
    assert value(samples, "rq_queue_depth", queue="default") == 0
    assert value(samples, "metrics_source_up", source="redis") == 1
    with app.app_context():
        from app.integrations.jobs import enqueue

        for _ in range(3):
            enqueue("json.loads", "[]")  # nobody works the queue here: they wait
    conn = Redis.from_url(redis_url)
    queue = Queue("default", connection=conn)
    job = Job.fetch(queue.job_ids[0], connection=conn)
    queue.remove(job)
    queue.failed_job_registry.add(job, ttl=60, exc_string="boom")
    samples = parse(c.get("/metrics").get_data(as_text=True))
    assert value(samples, "rq_queue_depth", queue="default") == 2
    assert value(samples, "rq_failed_jobs", queue="default") == 1


def test_a_redis_that_does_not_answer_leaves_the_queue_out(make_app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0", JOBS_MODE="rq")
    samples = parse(app.test_client().get("/metrics").get_data(as_text=True))
    assert value(samples, "metrics_source_up", source="redis") == 0
    assert not series(samples, "rq_queue_depth")
    assert "rollup_fold_lag_seconds" in {name for name, _ in samples}


def test_no_replica_no_replica_gauge(client):
    """Without DATABASE_REPLICA_URL there is no lag to report (tests/replica has the standby's)."""
    assert not [k for k in scrape(client) if k[0] == "db_replica_lag_seconds"]


# --- JSON lines -------------------------------------------------------------------------------------------------

def test_the_access_line_as_json(client, owner, caplog):
    with caplog.at_level(logging.INFO, logger="app.access"):
        r = client.get(f"{MP}/stock", headers={**owner, "X-Request-ID": "trace-json-0001"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-json-0001"
    records = [rec for rec in caplog.records if rec.name == "app.access"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["request_id"] == "trace-json-0001"
    assert fields["route"] == "/api/mp/v1/stock" and fields["method"] == "GET" and fields["status"] == 200
    assert isinstance(fields["user_id"], int) and fields["duration_ms"] >= 0
    assert fields["logger"] == "app.access" and fields["level"] == "INFO"
    assert fields["ts"].endswith("+00:00") and fields["message"].startswith("GET /api/mp/v1/stock 200")


def test_a_generated_request_id_is_in_the_line_and_the_header(client, caplog):
    with caplog.at_level(logging.INFO, logger="app.access"):
        r = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    fields = json.loads(JsonFormatter().format([x for x in caplog.records if x.name == "app.access"][-1]))
    assert fields["request_id"] == r.headers["X-Request-ID"] != "bad id with spaces"
    assert "user_id" not in fields  # nobody logged in


def test_an_exception_is_a_field():
    log = logging.getLogger("app.test")
    try:
        raise ValueError("broken")
    except ValueError:
        record = log.makeRecord("app.test", logging.ERROR, __file__, 1, "it failed: %s", ("here",),
                                exc_info=__import__("sys").exc_info())
    fields = json.loads(JsonFormatter().format(record))
    assert fields["message"] == "it failed: here" and fields["level"] == "ERROR"
    assert "ValueError: broken" in fields["exception"] and "Traceback" in fields["exception"]
