"""The partner's store list and a store's summary: scope, figures, the visit order, paging, queries per page."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.core.clock import today_business
from app.extensions import db
from tests.conftest import hq_login, mp_login
from tests.workspace.conftest import days_ago

MP = "/api/mp/v1"


def _codes(body) -> list[str]:
    return [item["code"] for item in body["items"]]


def _get(client, headers, url, status=200):
    resp = client.get(url, headers=headers)
    assert resp.status_code == status, (url, resp.get_json())
    return resp.get_json()


# --- scope -----------------------------------------------------------------------------------------------------

def test_each_caller_sees_the_stores_in_its_scope(client, facts):
    d1, d2, agent = (mp_login(client, who) for who in ("demo_distributor", "demo_distributor_2", "demo_agent"))
    assert sorted(_codes(_get(client, d1, f"{MP}/stores?sort=name&page_size=200"))) == ["S1", "S3", "S4"]
    assert sorted(_codes(_get(client, d2, f"{MP}/stores?page_size=200"))) == ["S2", "S6"]
    body = _get(client, agent, f"{MP}/stores?page_size=200")
    assert sorted(_codes(body)) == ["S1", "S3", "S4", "S5"]
    # An agent groups by distributor: every item names the one serving the store.
    assert {i["code"]: i["distributor"]["code"] for i in body["items"]} == {"S1": "D1", "S3": "D1", "S4": "D1",
                                                                            "S5": "D3"}
    assert len(_codes(_get(client, hq_login(client), f"{MP}/stores?page_size=200"))) == 10


@pytest.mark.parametrize("openid", ["demo_store_owner", "demo_store_clerk"])
def test_store_users_have_no_store_list(client, facts, openid):
    body = _get(client, mp_login(client, openid), f"{MP}/stores", status=403)
    assert set(body["error"]) == {"code", "message", "details"}
    assert client.get(f"{MP}/stores").status_code == 401


def test_a_store_moved_to_another_distributor_leaves_the_old_ones_list(client, facts):
    from app.channel.models import Store
    from app.core.tx import transaction

    d1 = mp_login(client, "demo_distributor")
    with transaction():
        db.session.get(Store, facts.stores["S3"]).distributor_id = facts.partners["D2"]
    assert sorted(_codes(_get(client, d1, f"{MP}/stores"))) == ["S1", "S4"]
    assert "S3" in _codes(_get(client, mp_login(client, "demo_distributor_2"), f"{MP}/stores"))


def test_summary_inside_and_outside_the_scope(client, facts):
    d1, owner, agent = (mp_login(client, who) for who in ("demo_distributor", "demo_store_owner", "demo_agent"))
    s1, s2, s5 = (facts.stores[c] for c in ("S1", "S2", "S5"))
    assert _get(client, d1, f"{MP}/stores/{s1}")["code"] == "S1"
    assert _get(client, d1, f"{MP}/stores/{s2}", status=403)["error"]["code"] == "out_of_scope"
    assert _get(client, d1, f"{MP}/stores/{s5}", status=403)["error"]["code"] == "out_of_scope"
    assert _get(client, agent, f"{MP}/stores/{s5}")["distributor"]["code"] == "D3"
    # A store's own people see their store's summary, and no other.
    assert _get(client, owner, f"{MP}/stores/{s1}")["id"] == s1
    assert _get(client, owner, f"{MP}/stores/{s2}", status=403)["error"]["code"] == "out_of_scope"
    # A store that does not exist is 404 for anyone; an id no column can hold names nothing.
    missing = db.session.scalar(sa.text("SELECT max(id) FROM stores")) + 1000
    assert _get(client, d1, f"{MP}/stores/{missing}", status=404)["error"]["code"] == "store_not_found"
    assert client.get(f"{MP}/stores/{2**63}", headers=d1).status_code == 404


# --- figures ---------------------------------------------------------------------------------------------------

def test_the_figures_of_a_store(client, facts):
    today = today_business()
    first = today.replace(day=1)
    facts.clear_stock("S1")
    facts.stock("S1", "MILK250", 30)  # 箱
    facts.stock("S1", "YOG200", 5)  # 箱
    facts.stock("S1", "BISC", 40)  # 袋
    facts.stock("S1", "TEA500", 1)
    facts.stock("S1", "TEA500", 0)  # held, now none left
    sales = [("MILK250", today, 4), ("BISC", today, 2), ("MILK250", first - timedelta(days=3), 7),
             ("TEA500", today - timedelta(days=5), 3),  # sold lately, none on hand: sold out
             ("YOG200", today - timedelta(days=1), 28)]  # 28 in 28 days, 5 on hand: under 7 days of cover
    for sku, day, units in sales:
        facts.sale("S1", sku, day, units)
    this_month = sum(units for _sku, day, units in sales if day >= first)
    last_month = sum(units for _sku, day, units in sales if day < first)
    facts.order("S1", "awaiting_confirmation", at=days_ago(1))
    facts.order("S1", "shipped", at=days_ago(3))
    facts.order("S1", "cancelled", at=days_ago(0))  # called off: not the last order
    facts.scan("S1", days_ago(5))
    facts.scan("S1", days_ago(2))  # received after the other, as scans are

    d1 = mp_login(client, "demo_distributor")
    item = next(i for i in _get(client, d1, f"{MP}/stores")["items"] if i["code"] == "S1")
    assert item["units_this_month"] == this_month and item["amount_this_month_fen"] == this_month * 100
    assert item["units_last_month"] == last_month and item["amount_last_month_fen"] == last_month * 100
    assert item["units_last_28_days"] == this_month + last_month
    # Units of different kinds are never added together.
    assert sorted(item["on_hand"], key=lambda g: g["unit"]) == sorted(
        [{"unit": "提", "units": 30, "skus": 1}, {"unit": "组", "units": 5, "skus": 1},
         {"unit": "袋", "units": 40, "skus": 1}], key=lambda g: g["unit"])
    assert item["skus_in_stock"] == 3
    assert item["skus_out_of_stock"] == 1
    assert item["skus_low"] == 1
    assert item["open_orders"] == 2 and item["orders_waiting"] == 1
    assert item["days_since_last_order"] == 1
    assert item["days_since_last_scan"] == 2
    assert item["last_scan_at"][:16] == days_ago(2).isoformat()[:16]
    assert item["province_name"] == "浙江省" and item["city_name"] == "杭州市" and item["district_name"] == "西湖区"
    assert item["distributor"]["code"] == "D1"
    assert {a["code"] for a in item["attention"]} == {"out_of_stock", "low_stock", "orders_waiting"}

    summary = _get(client, d1, f"{MP}/stores/{facts.stores['S1']}")
    assert {k: summary[k] for k in ("units_this_month", "units_last_month", "on_hand", "open_orders")} == {
        k: item[k] for k in ("units_this_month", "units_last_month", "on_hand", "open_orders")}
    skus = {s["sku_code"]: s for s in summary["skus"]}
    assert skus["MILK250"]["on_hand"] == 30 and skus["MILK250"]["unit"] == "提"
    assert skus["YOG200"]["low"] and not skus["MILK250"]["low"]
    assert skus["TEA500"]["out_of_stock"] and skus["TEA500"]["on_hand"] == 0
    assert skus["YOG200"]["days_of_cover"] == 5.0
    assert sum(s["units_this_month"] for s in summary["skus"]) == this_month
    assert sum(s["units_last_month"] for s in summary["skus"]) == last_month
    assert [o["status"] for o in summary["recent_orders"]] == ["cancelled", "shipped", "awaiting_confirmation"]
    assert len(summary["recent_scans"]) == 2 and summary["recent_scans"][0]["action"] == "sell"
    assert summary["periods"]["this_month"]["from"] == first.isoformat()


def test_sales_come_from_the_rollups_folded_before_the_read(client, facts):
    """A sale still in the inbox (not yet folded) shows at once: the workspace folds first, as HQ's dashboards do."""
    from app.analytics.models import SalesInbox
    from app.core.tx import transaction

    with transaction():
        db.session.add(SalesInbox(day=today_business(), sku_id=facts.skus["BISC"], store_id=facts.stores["S4"],
                                  units=9, amount_fen=900))
    item = next(i for i in _get(client, mp_login(client, "demo_distributor"), f"{MP}/stores")["items"]
                if i["code"] == "S4")
    assert item["units_this_month"] == 9


# --- order and paging ------------------------------------------------------------------------------------------

def _visit_world(facts):
    """D1's stores arranged so the visit rule decides every place (see app/analytics/workspace.py)."""
    today = today_business()
    for code in ("S1", "S3", "S4"):
        facts.clear_stock(code)
    facts.new_store("N1", name="新开店")  # never ordered nor scanned
    facts.new_store("N2", name="稳定店")
    facts.order("S1", "awaiting_confirmation", at=days_ago(0))  # an open issue, though in touch today
    facts.scan("S3", days_ago(20))  # 14+ days without contact
    facts.scan("S4", days_ago(2))  # in touch, sales falling
    facts.sale("S4", "BISC", today - timedelta(days=40), 20)
    facts.sale("S4", "BISC", today - timedelta(days=3), 5)
    facts.order("N2", "delivered", at=days_ago(2, hour=8))  # in touch, sales rising
    facts.sale("N2", "BISC", today - timedelta(days=3), 30)
    return ["S1", "N1", "S3", "S4", "N2"]


def test_the_visit_order(client, facts):
    expected = _visit_world(facts)
    d1 = mp_login(client, "demo_distributor")
    body = _get(client, d1, f"{MP}/stores")
    assert body["sort"] == "visit" and _codes(body) == expected
    attention = {i["code"]: {a["code"] for a in i["attention"]} for i in body["items"]}
    assert attention["S1"] == {"orders_waiting"}
    assert attention["N1"] == {"never_active"}
    assert attention["S3"] == {"idle"}
    assert attention["S4"] == {"falling_sales"}
    assert attention["N2"] == set()
    assert _codes(_get(client, d1, f"{MP}/stores?sort=visit")) == expected


def test_sorting_by_name_and_by_sales(client, facts):
    _visit_world(facts)
    d1 = mp_login(client, "demo_distributor")
    by_name = _get(client, d1, f"{MP}/stores?sort=name")
    names = [i["name"] for i in by_name["items"]]
    assert names == sorted(names)
    facts.sale("S3", "MILK250", today_business(), 50)
    facts.sale("S1", "MILK250", today_business(), 10)
    by_sales = [i["units_this_month"] for i in _get(client, d1, f"{MP}/stores?sort=sales")["items"]]
    assert by_sales == sorted(by_sales, reverse=True) and by_sales[0] >= 50


def test_paging_walks_the_whole_list_once(client, facts):
    expected = _visit_world(facts)
    d1 = mp_login(client, "demo_distributor")
    seen = []
    for page in (1, 2, 3):
        body = _get(client, d1, f"{MP}/stores?page={page}&page_size=2")
        assert body["total"] == 5 and body["page"] == page and body["page_size"] == 2
        seen += _codes(body)
    assert seen == expected
    past = _get(client, d1, f"{MP}/stores?page=4&page_size=2")
    assert past["items"] == [] and past["total"] == 5


@pytest.mark.parametrize("query", ["page=0", "page_size=0", "page_size=201", "sort=distance", "page=abc"])
def test_bad_list_input_is_a_422(client, facts, query):
    body = _get(client, mp_login(client, "demo_distributor"), f"{MP}/stores?{query}", status=422)
    assert set(body["error"]) == {"code", "message", "details"}


def _selects(app, client, headers, url) -> tuple[int, dict]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        resp = client.get(url, headers=headers)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert resp.status_code == 200, resp.get_json()
    return len(statements), resp.get_json()


def test_a_page_costs_the_same_queries_whatever_its_size(app, client, facts):
    """Scope ids, page, distributors' totals, stock by unit (and the fold's read of the inbox): none per store."""
    agent = mp_login(client, "demo_agent")
    _selects(app, client, agent, f"{MP}/stores?page_size=1")  # the first request also fills the process caches
    for i in range(12):
        code = f"Q{i}"
        facts.new_store(code, distributor="D3" if i % 2 else "D1")
        facts.stock(code, "BISC", i + 1)
        facts.stock(code, "MILK250", 2)
        facts.sale(code, "BISC", today_business(), i)
        facts.order(code, "paid", at=days_ago(i))
        facts.scan(code, days_ago(i + 1))
    counts = {}
    for sort in ("visit", "name", "sales"):
        for size in (1, 16):
            n, body = _selects(app, client, agent, f"{MP}/stores?sort={sort}&page_size={size}")
            assert len(body["items"]) == size
            counts[(sort, size)] = n
    assert len(set(counts.values())) == 1, counts
    assert next(iter(counts.values())) <= 6, counts
    n_summary, _ = _selects(app, client, agent, f"{MP}/stores/{facts.stores['Q3']}")
    assert n_summary <= 12


def test_an_agent_works_distributor_by_distributor(client, facts):
    _visit_world(facts)  # D1: S1 (an order waiting), N1 (never active), S3 (20 days idle), S4, N2 (in touch)
    facts.scan("S5", days_ago(1))
    facts.sale("S5", "BISC", today_business(), 6)
    agent = mp_login(client, "demo_agent")
    body = _get(client, agent, f"{MP}/stores?page_size=1")
    assert len(body["items"]) == 1 and body["total"] == 6
    assert body["distributors"] == [
        {"id": facts.partners["D1"], "code": "D1", "name": "杭州西湖分销", "stores": 5, "stores_needing_visit": 3,
         "units_this_month": body["distributors"][0]["units_this_month"], "units_last_month":
             body["distributors"][0]["units_last_month"]},
        {"id": facts.partners["D3"], "code": "D3", "name": "宁波甬城分销", "stores": 1, "stores_needing_visit": 0,
         "units_this_month": 6, "units_last_month": 0}]
    only_d3 = _get(client, agent, f"{MP}/stores?distributor_id={facts.partners['D3']}")
    assert _codes(only_d3) == ["S5"] and only_d3["total"] == 1 and len(only_d3["distributors"]) == 2
    # A distributor outside the caller's scope filters to nothing.
    outside = _get(client, agent, f"{MP}/stores?distributor_id={facts.partners['D2']}")
    assert outside["items"] == [] and outside["total"] == 0
    d1 = _get(client, mp_login(client, "demo_distributor"), f"{MP}/stores")
    assert [g["code"] for g in d1["distributors"]] == ["D1"]
