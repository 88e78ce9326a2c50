"""A WeChat that does not answer cannot take every request thread: calls to it are bounded per process.

With WECHAT_MAX_CONCURRENT_CALLS calls already waiting on WeChat, the next request that needs WeChat (a login, a
payment) is answered at once with 503 `wechat_busy` / `pay_busy` and never reaches WeChat, so the threads left
serve scans. The timed run (sell latency during eight hung logins under gunicorn) is scripts/faults/wechat_hung.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.orders.conftest import MP, place

LIMIT = 2


def _hang(fake_wechat, prefix):
    resp = requests.post(fake_wechat.url("/_fake/hang"), json={"path_prefix": prefix}, timeout=5)
    assert resp.status_code == 200, resp.text


def _release(fake_wechat):
    requests.post(fake_wechat.url("/_fake/hang"), json={"path_prefix": None}, timeout=5)


def _calls(fake_wechat, path):
    return requests.get(fake_wechat.url("/_fake/stats"), timeout=5).json().get(path, 0)


def _wait_for_calls(fake_wechat, path, n):
    deadline = time.monotonic() + 20
    while _calls(fake_wechat, path) < n and time.monotonic() < deadline:
        threading.Event().wait(0.02)
    assert _calls(fake_wechat, path) == n


@pytest.fixture()
def bounded(make_app, demo):
    # Long timeouts, so the first calls are still waiting on WeChat while the test looks.
    return make_app(WECHAT_MAX_CONCURRENT_CALLS=LIMIT, WECHAT_TIMEOUT=30.0)


def _in_threads(n, func):
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(func())) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def test_login_beyond_the_limit_is_refused_at_once(bounded, fake_wechat):
    path = "/sns/jscode2session"
    before = _calls(fake_wechat, path)
    _hang(fake_wechat, path)
    try:
        threads, hung = _in_threads(LIMIT, lambda: bounded.test_client().post(
            f"{MP}/sessions", json={"code": "demo:demo_store_owner"}).status_code)
        _wait_for_calls(fake_wechat, path, before + LIMIT)
        resp = bounded.test_client().post(f"{MP}/sessions", json={"code": "demo:demo_store_clerk"})
        assert resp.status_code == 503
        err = resp.get_json()["error"]
        assert err["code"] == "wechat_busy" and err["message"]
        assert _calls(fake_wechat, path) == before + LIMIT  # it never reached WeChat
    finally:
        _release(fake_wechat)
    for t in threads:
        t.join(timeout=30)
    assert hung == [201] * LIMIT  # WeChat answered late: those logins went through
    # With the slots free again, logins go through.
    assert bounded.test_client().post(f"{MP}/sessions", json={"code": "demo:demo_store_clerk"}).status_code == 201


def test_payment_shares_the_limit_and_is_refused_at_once(bounded, fake_wechat, owner, demo_ids):
    order = place(bounded.test_client(), owner, demo_ids["stores"]["S1"],
                  [{"sku_id": demo_ids["skus"]["MILK250"], "quantity": 6}]).get_json()
    path = "/sns/jscode2session"
    before = _calls(fake_wechat, path)
    _hang(fake_wechat, path)
    try:
        threads, _ = _in_threads(LIMIT, lambda: bounded.test_client().post(
            f"{MP}/sessions", json={"code": "demo:demo_store_owner"}).status_code)
        _wait_for_calls(fake_wechat, path, before + LIMIT)
        resp = bounded.test_client().post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"},
                                          headers=owner)
        assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "pay_busy"
    finally:
        _release(fake_wechat)
    for t in threads:
        t.join(timeout=30)
    resp = bounded.test_client().post(f"{MP}/orders/{order['id']}/payments", json={"method": "wechat"},
                                      headers=owner)
    assert resp.status_code == 200, resp.get_json()


def test_timeouts_are_split_into_connect_and_read(make_app):
    from app.integrations.wechat import get_wechat
    from app.integrations.wechatpay import get_wechatpay

    app = make_app(WECHAT_CONNECT_TIMEOUT=1.5, WECHAT_TIMEOUT=3.0)
    with app.app_context():
        assert get_wechat().timeout == (1.5, 3.0)
        assert get_wechatpay().timeout == (1.5, 3.0)
