"""Acceptance over HTTP as `demo_distributor` (staff of D1) on the full demo: a morning's round of the workspace."""

from __future__ import annotations

from tests.conftest import mp_login

MP = "/api/mp/v1"


def test_a_distributors_round(client, demo):
    d1 = mp_login(client, "demo_distributor")
    stores = client.get(f"{MP}/stores", headers=d1)
    assert stores.status_code == 200, stores.get_json()
    body = stores.get_json()
    assert body["total"] == 3 and {i["code"] for i in body["items"]} == {"S1", "S3", "S4"}
    for item in body["items"]:
        assert item["distributor"]["code"] == "D1"
        # Stock by unit of sale, never one sum over boxes and bags.
        assert len({u["unit"] for u in item["on_hand"]}) == len(item["on_hand"])
        assert item["units_this_month"] >= 0 and item["units_last_month"] >= 0
    # The demo's history sold at every store of D1.
    assert all(i["units_last_28_days"] > 0 for i in body["items"])
    first = body["items"][0]
    issues = [bool({"out_of_stock", "low_stock", "orders_waiting"} & {a["code"] for a in i["attention"]})
              for i in body["items"]]
    assert issues == sorted(issues, reverse=True)  # stores with an open issue come first

    summary = client.get(f"{MP}/stores/{first['id']}", headers=d1).get_json()
    assert summary["code"] == first["code"] and summary["skus"]
    assert sum(s["units_this_month"] for s in summary["skus"]) == first["units_this_month"]

    sales = client.get(f"{MP}/sell-through?group_by=store", headers=d1).get_json()
    assert {r["label"] for r in sales["items"]} <= {i["name"] for i in body["items"]} and sales["items"]

    invite = client.post(f"{MP}/stores/{first['id']}/invites", json={"role": "clerk"}, headers=d1)
    assert invite.status_code == 201 and invite.get_json()["status"] == "open"
    other = client.get(f"{MP}/stores?page_size=200", headers=mp_login(client, "demo_distributor_2")).get_json()
    assert client.get(f"{MP}/stores/{other['items'][0]['id']}", headers=d1).status_code == 403
