import time

from tests.orders.conftest import HQ, MP, fake_pay, place
from tests.conftest import hq_login


def test_bench(client, owner, demo_ids, fake_wechat):
    s1, milk = demo_ids["stores"]["S1"], demo_ids["skus"]["MILK250"]
    n = 100
    t = time.perf_counter()
    ids = [place(client, owner, s1, [{"sku_id": milk, "quantity": 6}]).get_json() for _ in range(n)]
    create = (time.perf_counter() - t) / n
    notices = []
    t = time.perf_counter()
    for o in ids[:50]:
        assert client.post(f"{MP}/orders/{o['id']}/payments", json={"method": "wechat"}, headers=owner).status_code == 200
    prepay = (time.perf_counter() - t) / 50
    for o in ids[:50]:
        p = fake_pay(fake_wechat, o["number"], notify=False)
        notices.append((p["headers"], p["body"].encode()))
    t = time.perf_counter()
    for h, b in notices:
        assert client.post("/api/wechat/pay/notify", data=b, headers=h).status_code == 204
    notify = (time.perf_counter() - t) / 50
    admin = hq_login(client)
    t = time.perf_counter()
    for o in ids[:50]:
        assert client.post(f"{HQ}/orders/{o['id']}/allocate", json={}, headers=admin).status_code == 200
    alloc = (time.perf_counter() - t) / 50
    t = time.perf_counter()
    for _ in range(20):
        assert client.get(f"{MP}/orders?page_size=20", headers=owner).status_code == 200
    lst = (time.perf_counter() - t) / 20
    print(f"\nBENCH create {create*1000:.1f} ms, wechat prepay {prepay*1000:.1f} ms, notify {notify*1000:.1f} ms, "
          f"allocate {alloc*1000:.1f} ms, list(20) {lst*1000:.1f} ms")
