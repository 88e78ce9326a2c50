"""Metrics in multiprocess mode and JSON logs, on the real gunicorn (2 workers × 4 threads) as scripts/run serves.

Sells sent at once from threads land on both workers; one scrape, answered by either worker, counts all of them.
A worker killed outright is replaced by gunicorn, and what it counted stays in the sums (its files are kept;
`child_exit` marks it dead). Every log line of the app is one JSON object with the request's id.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.concurrency.clients import Call, fire
from tests.concurrency.conftest import READY_MARK, WORKERS
from tests.metrics.helpers import parse, value
from tests.scans.helpers import body, codes_in

SELLS = 24


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prometheus")
    (path / "counter_999999.db").write_bytes(b"left by an earlier server")  # emptied when gunicorn starts
    return path


@pytest.fixture(scope="module")
def live_server_env(metrics_dir) -> dict[str, str]:
    return {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_FORMAT": "json"}


def _scrape(server) -> dict:
    r = server.request("GET", "/metrics")
    assert r.status == 200, r.body
    return parse(r.body)


def _sold(samples: dict) -> float:
    return value(samples, "scans_total", action="sell", outcome="accepted", reason="")


def _pids(metrics_dir: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("counter_*.db")}


def test_counts_from_both_workers_add_up_and_outlive_a_killed_worker(live_server, metrics_dir):
    assert not (metrics_dir / "counter_999999.db").exists()
    owner = live_server.login("demo_store_owner")
    with live_server.db():
        serials = [c.serial for c in codes_in("S1", n=SELLS + 1)]
    assert len(serials) == SELLS + 1
    before = _scrape(live_server)
    calls = [Call("POST", "/api/mp/v1/scans", body(s), tuple(owner.items())) for s in serials[:SELLS]]
    replies = fire(live_server.base_url, calls, processes=1)
    assert [r.answer for r in replies] == ["accepted"] * SELLS, [getattr(r, "body", r) for r in replies]

    after = _scrape(live_server)
    assert _sold(after) - _sold(before) == SELLS
    route = {"route": "/api/mp/v1/scans", "method": "POST", "status": "200"}
    assert value(after, "http_request_duration_seconds_count", **route) - value(
        before, "http_request_duration_seconds_count", **route) == SELLS
    workers = _pids(metrics_dir)
    assert len(workers) >= WORKERS, "both workers served and counted"  # the counts above are their sum

    # Kill a worker outright; gunicorn starts another. What the dead one counted is still counted.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while live_server.log().count(READY_MARK) < WORKERS + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_server.log().count(READY_MARK) == WORKERS + 1, live_server.log()[-3000:]
    assert _sold(_scrape(live_server)) - _sold(before) == SELLS
    r = live_server.request("POST", "/api/mp/v1/scans", body(serials[SELLS]), owner)
    assert r.answer == "accepted", r.body
    for _ in range(4):  # whichever worker answers the scrape, the sum is the same
        assert _sold(_scrape(live_server)) - _sold(before) == SELLS + 1


def test_the_world_cannot_scrape_through_a_proxy(live_server):
    r = live_server.request("GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status == 404


def test_log_lines_are_json_with_the_request_id(live_server):
    owner = live_server.login("demo_store_owner")
    r = live_server.request("GET", "/api/mp/v1/stock", headers={**owner, "X-Request-ID": "live-trace-000042"})
    assert r.status == 200 and r.headers["x-request-id"] == "live-trace-000042"
    deadline = time.monotonic() + 10
    lines: list[dict] = []
    while not lines and time.monotonic() < deadline:
        lines = [json.loads(line) for line in live_server.log().splitlines()
                 if line.startswith("{") and "live-trace-000042" in line]
        time.sleep(0.05)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["logger"] == "app.access" and line["route"] == "/api/mp/v1/stock" and line["status"] == 200
    assert line["method"] == "GET" and isinstance(line["user_id"], int) and line["duration_ms"] > 0
    lines = [json.loads(x) for x in live_server.log().splitlines() if x.startswith("{")]
    app_lines = [x for x in lines if x["logger"].startswith("app")]
    assert app_lines and all({"ts", "level", "logger", "message", "request_id"} <= set(x) for x in app_lines)
    # gunicorn's own lines are JSON too: its workers booting, its access log.
    assert any(x["logger"] == "gunicorn.error" and "Booting worker" in x["message"] for x in lines)
    assert any(x["logger"] == "gunicorn.access" for x in lines)
