"""A rough timing of the order routes (skipped unless ORDERS_BENCH=1; prints milliseconds per call)."""

import os
import time

import pytest

from tests.conftest import hq_login
from tests.orders.conftest import HQ, MP, fake_pay, place

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("ORDERS_BENCH") != "1", reason="set ORDERS_BENCH=1 to time")]


def _per_call(fn, n):
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n * 1000


def test_bench(client, owner, demo_ids, fake_wechat):
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    orders = []
    create = _per_call(lambda i: orders.append(place(client, owner, s1, [{"sku_id": milk, "quantity": 6}])
                                               .get_json()), 100)
    prepay = _per_call(lambda i: client.post(f"{MP}/orders/{orders[i]['id']}/payments", json={"method": "wechat"},
                                             headers=owner), 50)
    notices = []
    for o in orders[:50]:
        p = fake_pay(fake_wechat, o["number"], notify=False)
        notices.append((p["headers"], p["body"].encode()))
    notify = _per_call(lambda i: client.post("/api/wechat/pay/notify", data=notices[i][1], headers=notices[i][0]),
                       50)
    admin = hq_login(client)
    allocate = _per_call(lambda i: client.post(f"{HQ}/orders/{orders[i]['id']}/allocate", json={}, headers=admin),
                         50)
    listing = _per_call(lambda i: client.get(f"{MP}/orders?page_size=20", headers=owner), 20)
    print(f"\nBENCH ms/call: create {create:.1f}, wechat prepay {prepay:.1f}, notify {notify:.1f}, "
          f"allocate {allocate:.1f}, list of 20 {listing:.1f}")
