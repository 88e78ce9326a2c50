"""Territory assignments (CHANNEL.md §1): the overlap rule, the routing rules, the HQ API and the console page,
and attribution that a later move never changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.roles import HQ_ADMIN, HQ_ANALYST
from app.accounts.services import create_hq_user
from app.channel import routing, territories
from app.channel.models import Partner, Store, Territory
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from tests.conftest import hq_login
from tests.helpers import assert_db_unchanged, assert_error

API = "/api/hq/v1/territory-assignments"


@pytest.fixture()
def w(app, demo):
    """Demo partner ids by code and HQ's admin as a principal."""
    with app.app_context():
        partners = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
        admin_id = db.session.scalar(sa.select(User.id).where(User.username == "admin"))
    return {"p": partners, "admin": Principal(admin_id, "hq", (Binding(HQ_ADMIN),))}


def _assign(w, code, region, kind="shared", **kw):
    return territories.assign_territory(w["admin"], partner_id=w["p"][code], region_code=region, kind=kind, **kw)


def _route(*codes, industry=None, at=None):
    return routing.route(list(codes), industry, at=at)


# --- the demo's assignments ----------------------------------------------------------------------------------

def test_every_demo_partner_holds_territory_and_chengdu_is_not_exclusive(app, w):
    with app.app_context():
        rows = db.session.execute(sa.select(Partner.code, Territory.region_code, Territory.kind)
                                  .join(Territory, Territory.partner_id == Partner.id)).all()
    held = {code for code, _, _ in rows}
    assert held == {"A1", "A2", "D1", "D2", "D3", "D4", "D5"}
    kinds = {kind for _, _, kind in rows}
    assert kinds == {"exclusive", "shared"}
    assert ("D5", "510100", "shared") in rows
    assert not [r for r in rows if r[1][:2] == "51" and r[2] == "exclusive"]


# --- routing ---------------------------------------------------------------------------------------------------

def test_the_most_specific_region_wins_with_its_agent(app, w):
    p = w["p"]
    with app.app_context():
        assert _route("330106", "330100", "330000") == routing.Route(
            p["D1"], p["A1"], _route("330100").assignment_id)
        assert _route("330106").partner_id == p["D1"]  # a district alone: its city and province are derived
        province = _route("330000")
        assert (province.partner_id, province.agent_id) == (p["A1"], None)  # A1 hangs under HQ
        assert (_route("510107").partner_id, _route("510107").agent_id) == (p["D5"], None)
        assert _route("110101") == routing.NOBODY  # nobody holds Beijing: HQ serves
        assert _route() == routing.NOBODY


def test_industry_match_over_any_and_district_over_city(app, w):
    p = w["p"]
    with app.app_context():
        _assign(w, "D3", "330106", industry="pharmacy")
        _assign(w, "D4", "330100", industry="pharmacy")
        assert _route("330106", industry="pharmacy").partner_id == p["D3"]  # district beats city
        assert _route("330105", industry="pharmacy").partner_id == p["D4"]  # industry beats "any" (D1 exclusive)
        assert _route("330106").partner_id == p["D1"]  # an industry assignment covers only that industry
        assert _route("330106", industry="convenience").partner_id == p["D1"]


def test_exclusive_over_shared_and_the_first_shared_wins(app, w):
    p = w["p"]
    earlier = datetime.now(UTC) - timedelta(days=30)
    with app.app_context():
        _assign(w, "D4", "330100", valid_from=earlier)  # shared, older than D1's exclusive
        assert _route("330106").partner_id == p["D1"]
        # Ningbo: D3 shared since the demo; D4 shared from earlier, D2 shared from the same instant after it.
        first = _assign(w, "D4", "330200", valid_from=earlier)
        same_time = _assign(w, "D2", "330200", valid_from=earlier)
        ningbo = _route("330203")
        assert (ningbo.partner_id, ningbo.assignment_id) == (p["D4"], first.id)
        assert [c.partner_id for c in routing.candidates(["330203"])] == [p["D4"], p["D2"], p["D3"], p["A1"]]
        assert same_time.id > first.id


def test_only_assignments_valid_at_the_moment_route(app, w):
    p = w["p"]
    now = datetime.now(UTC)
    with app.app_context():
        _assign(w, "D4", "110101", valid_from=now + timedelta(days=10), valid_to=now + timedelta(days=20))
        assert _route("110101") == routing.NOBODY
        assert _route("110101", at=now + timedelta(days=15)).partner_id == p["D4"]
        assert _route("110101", at=now + timedelta(days=20)) == routing.NOBODY  # valid_to is exclusive


def test_candidates_are_distinct_partners_best_first(app, w):
    p = w["p"]
    with app.app_context():
        _assign(w, "D1", "330106")  # D1 again, at the district: it appears once, at its best
        assert [(c.partner_id, c.agent_id) for c in routing.candidates(["330106", "330100", "330000"])] == [
            (p["D1"], p["A1"]), (p["A1"], None)]
        assert routing.candidates(["110101"]) == []


# --- the overlap rule ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("region", "industry"), [
    ("330100", None),        # the same region
    ("330106", None),        # inside it
    ("330000", None),        # around it
    ("330100", "pharmacy"),  # an industry inside "any"
])
def test_an_overlapping_exclusive_is_refused_naming_the_holder(app, w, region, industry):
    with app.app_context():
        d1 = db.session.scalar(sa.select(Territory.id).where(Territory.partner_id == w["p"]["D1"]))
        with assert_db_unchanged("territories"), pytest.raises(Conflict) as err:
            _assign(w, "D3", region, kind="exclusive", industry=industry)
    assert err.value.code == "territory_taken"
    assert "杭州西湖分销" in err.value.message and "长期有效" in err.value.message
    assert err.value.details["held_by"] == "杭州西湖分销"
    assert err.value.details["assignment_id"] == d1 and err.value.details["until"] is None


def test_exclusives_that_do_not_overlap_are_allowed(app, w):
    now = datetime.now(UTC)
    with app.app_context():
        _assign(w, "D5", "510100", kind="exclusive")  # Chengdu: shared only, so free
        _assign(w, "D3", "330200", kind="exclusive", industry="pharmacy")  # Ningbo: shared only
        _assign(w, "D4", "330200", kind="exclusive", industry="bakery")  # another industry
        _assign(w, "D4", "330100", kind="shared")  # shared beside an exclusive
        # D1's exclusive ends; another may hold Hangzhou from then on, not before.
        d1 = db.session.scalar(sa.select(Territory.id).where(Territory.partner_id == w["p"]["D1"]))
        end = now + timedelta(days=5)
        territories.end_territory(w["admin"], d1, reason="换代理", at=end)
        with pytest.raises(Conflict) as err:
            _assign(w, "D3", "330100", kind="exclusive", valid_from=end - timedelta(hours=1))
        assert f"至 {(end + timedelta(hours=8)).date().isoformat()}" in err.value.message
        assert err.value.details["until"] == end.isoformat()
        _assign(w, "D3", "330100", kind="exclusive", valid_from=end)


def test_bad_assignments_change_nothing(app, w):
    now = datetime.now(UTC)
    with app.app_context(), assert_db_unchanged("territories"):
        with pytest.raises(ValidationFailed) as err:
            _assign(w, "D5", "510100", kind="exclusive", valid_from=now, valid_to=now - timedelta(days=1))
        assert err.value.code == "territory_ends_before_start" and err.value.message == "结束时间要晚于开始时间"
        with pytest.raises(ValidationFailed) as err:
            _assign(w, "D5", "999999")
        assert err.value.code == "unknown_region"
        with pytest.raises(ValidationFailed) as err:
            _assign(w, "HQ", "510100")
        assert err.value.code == "territory_partner_kind"
        with pytest.raises(ValidationFailed) as err:
            _assign(w, "D5", "510100", kind="sole")
        assert err.value.code == "invalid_territory_kind"
        with pytest.raises(NotFound):
            territories.assign_territory(w["admin"], partner_id=10 ** 12, region_code="510100", kind="shared")
        with pytest.raises(Conflict) as err:
            _assign(w, "D5", "510100")  # D5 holds it shared already
        assert err.value.code == "territory_already_assigned"


def test_ending_twice_is_refused(app, w):
    with app.app_context():
        d5 = db.session.scalar(sa.select(Territory.id).where(Territory.partner_id == w["p"]["D5"]))
        ended = territories.end_territory(w["admin"], d5, reason="合同到期")
        assert ended.valid_to is not None and ended.end_reason == "合同到期"
        assert ended.ended_by_id == w["admin"].user_id
        assert _route("510107") == routing.NOBODY
        with pytest.raises(Conflict) as err:
            territories.end_territory(w["admin"], d5)
        assert err.value.code == "territory_ended"


def test_region_bound_hq_staff_assign_inside_their_region_only(app, w):
    with app.app_context():
        with transaction():
            user = create_hq_user(username="admin_zj", password="admin", role=HQ_ADMIN, region_code="330000")
        zj = Principal(user.id, "hq", (Binding(HQ_ADMIN, region_code="330000"),))
        territories.assign_territory(zj, partner_id=w["p"]["D3"], region_code="330300", kind="shared")
        with pytest.raises(Forbidden):
            territories.assign_territory(zj, partner_id=w["p"]["D2"], region_code="440300", kind="shared")
        analyst = Principal(user.id, "hq", (Binding(HQ_ANALYST),))
        with pytest.raises(Forbidden):
            territories.assign_territory(analyst, partner_id=w["p"]["D3"], region_code="330300", kind="shared")


# --- the HQ API ----------------------------------------------------------------------------------------------

def test_api_assign_list_and_end(client, admin, w):
    resp = client.post(API, json={"partner_id": w["p"]["D5"], "region_code": "510100", "kind": "exclusive",
                                  "valid_from": "2026-01-01T00:00:00+08:00"}, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert (made["partner_name"], made["region_name"], made["kind"], made["valid_to"]) == (
        "成都蓉城分销", "成都市", "exclusive", None)

    taken = client.post(API, json={"partner_id": w["p"]["D4"], "region_code": "510104", "kind": "exclusive"},
                        headers=admin)
    body = assert_error(taken, 409, "territory_taken")
    assert "成都蓉城分销" in body["message"]
    assert body["details"]["held_by"] == "成都蓉城分销"
    assert body["details"]["assignment_id"] == made["id"]

    sichuan = client.get(f"{API}?region=510000", headers=admin).get_json()
    assert {(i["partner_name"], i["kind"]) for i in sichuan["items"]} == {("成都蓉城分销", "shared"),
                                                                         ("成都蓉城分销", "exclusive")}
    mine = client.get(f"{API}?partner_id={w['p']['D1']}&active=true", headers=admin).get_json()
    assert [(i["region_code"], i["kind"]) for i in mine["items"]] == [("330100", "exclusive")]

    ended = client.post(f"{API}/{made['id']}/end", json={"reason": "调整"}, headers=admin)
    assert ended.status_code == 200, ended.get_json()
    assert ended.get_json()["end_reason"] == "调整" and ended.get_json()["ended_at"]
    inactive = client.get(f"{API}?region=510100&active=false", headers=admin).get_json()
    assert [i["id"] for i in inactive["items"]] == [made["id"]]
    assert_error(client.post(f"{API}/{made['id']}/end", json={}, headers=admin), 409, "territory_ended")
    assert_error(client.post(f"{API}/999999/end", json={}, headers=admin), 404, "territory_not_found")


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"valid_from": "2027-01-01T00:00:00+08:00", "valid_to": "2026-12-31T00:00:00+08:00"}, 422,
     "territory_ends_before_start"),
    ({"partner_id": 999_999}, 404, "partner_not_found"),
    ({"region_code": "999999"}, 422, "unknown_region"),
    ({"region_code": "5101"}, 422, None),
    ({"kind": "sole"}, 422, None),
    ({"valid_to": "2026-12-31"}, 422, None),  # not an instant with its offset
])
def test_api_bad_input_is_a_clear_4xx_and_changes_nothing(client, admin, w, app, change, status, code):
    body = {"partner_id": w["p"]["D5"], "region_code": "510100", "kind": "exclusive", **change}
    with app.app_context(), assert_db_unchanged("territories"):
        resp = client.post(API, json=body, headers=admin)
    answer = assert_error(resp, status, code)
    if code == "territory_ends_before_start":
        assert answer["message"] == "结束时间要晚于开始时间"


def test_api_list_of_a_region_bound_analyst_is_their_region(client, app, w):
    with app.app_context(), transaction():
        create_hq_user(username="analyst_gd", password="admin", role=HQ_ANALYST, region_code="440100")
    headers = hq_login(client, "analyst_gd")
    items = client.get(f"{API}?page_size=200", headers=headers).get_json()["items"]
    # Guangzhou's own assignment and Guangdong's (which covers it), nothing of Shenzhen or Zhejiang.
    assert sorted(i["region_code"] for i in items) == ["440000", "440100"]
    refused = client.post(API, json={"partner_id": w["p"]["D4"], "region_code": "440100", "kind": "shared"},
                          headers=headers)
    assert_error(refused, 403)


# --- the console page ----------------------------------------------------------------------------------------

def _console(client, username="admin"):
    client.get("/hq/login")
    with client.session_transaction() as s:
        csrf = s["csrf"]
    assert client.post("/hq/login", data={"username": username, "password": "admin", "csrf": csrf}).status_code == 302
    with client.session_transaction() as s:
        return s["csrf"]


def test_console_page_lists_by_region_and_assigns_and_ends(client, app, w):
    csrf = _console(client)
    page = client.get("/hq/territories")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "区域分配" in html and "杭州西湖分销" in html and "独家" in html and "共享" in html
    table = html[html.index("<table"):]
    assert table.index("浙江省") < table.index("杭州市") < table.index("宁波市")  # by region: province, then cities
    assert table.index("广东省") < table.index("广州市") < table.index("深圳市") < table.index("成都市")
    assert 'data-name="region_code"' in html and 'value="510000"' in html  # the picker: provinces, then cities

    refused = client.post("/hq/territories", data={"csrf": csrf, "partner_id": str(w["p"]["D3"]),
                                                   "region_code": "330100", "kind": "exclusive"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "form-error" in text and "已由杭州西湖分销独家持有" in text
    backwards = client.post("/hq/territories", data={"csrf": csrf, "partner_id": str(w["p"]["D5"]),
                                                     "region_code": "510100", "kind": "exclusive",
                                                     "valid_from": "2027-01-02", "valid_to": "2027-01-01"})
    assert backwards.status_code == 422 and "结束时间要晚于开始时间" in backwards.get_data(as_text=True)

    made = client.post("/hq/territories", data={"csrf": csrf, "partner_id": str(w["p"]["D5"]),
                                                "region_code": "510100", "kind": "exclusive"})
    assert made.status_code == 302
    with app.app_context():
        chengdu = db.session.scalar(sa.select(Territory.id).where(Territory.region_code == "510100",
                                                                  Territory.kind == "exclusive"))
    assert chengdu is not None
    assert client.post(f"/hq/territories/{chengdu}/end", data={"csrf": csrf, "reason": "试用结束"}).status_code == 302
    assert "试用结束" in client.get("/hq/territories").get_data(as_text=True)
    assert client.post(f"/hq/territories/{chengdu}/end", data={"reason": "x"}).status_code == 400  # no CSRF


# --- attribution: written when it happens, kept when a territory moves ---------------------------------------

def test_moving_a_territory_never_changes_history(app, w):
    from app.catalog.models import Sku
    from app.channel import services as channel
    from app.codes.models import ScanEvent
    from app.orders import services as orders
    from app.orders.commission import book_commission, set_commission_rule
    from app.orders.models import CommissionEntry, Order
    from app.scans.services import ScanInput, scan
    from tests.scans.helpers import owner_principal, stock_store_with_codes

    p = w["p"]
    with app.app_context():
        s1 = db.session.scalar(sa.select(Store).where(Store.code == "S1"))
        s1_id = s1.id
        milk = db.session.scalar(sa.select(Sku).where(Sku.code == "MILK250"))
        set_commission_rule(w["admin"], margin_bp=1000, bringer_share_bp=4000)
        owner = owner_principal("S1")
        serials = stock_store_with_codes("S1", milk.id, 2)

        def order():
            return orders.create_order(owner, request_id=f"move-{datetime.now(UTC).timestamp()}", store_id=s1_id,
                                       lines=[{"sku_id": milk.id, "quantity": 6}])

        def sell(serial):
            answer = scan(owner, ScanInput(request_id=f"sell-{serial}", code=serial, action="sell",
                                           scanned_at=datetime.now(UTC)))
            assert answer["status"] == "accepted", answer
            return answer["event_id"]

        before = order()
        assert (before.routed_partner_id, before.routed_agent_id, before.bringing_partner_id,
                before.bringing_agent_id) == (p["D1"], p["A1"], p["D1"], p["A1"])
        sold_before = sell(serials[0])

        # The move: a new agent and distributor take Hangzhou, and S1 goes over to them.
        a3 = channel.create_partner(w["admin"], code="A3", name="浙北新代理", kind="agent", parent_id=p["HQ"])
        d6 = channel.create_partner(w["admin"], code="D6", name="杭州新分销", kind="distributor", parent_id=a3.id)
        a3_id, d6_id = a3.id, d6.id
        d1_hz = db.session.scalar(sa.select(Territory.id).where(Territory.partner_id == p["D1"]))
        territories.end_territory(w["admin"], d1_hz, reason="区域调整")
        territories.assign_territory(w["admin"], partner_id=d6_id, region_code="330100", kind="exclusive")
        with transaction():
            db.session.execute(sa.update(Store).where(Store.id == s1_id).values(distributor_id=d6_id))

        after = order()
        sold_after = sell(serials[1])
        # The old order completes after the move: its commission rows keep the order's attribution.
        with transaction():
            old = db.session.get(Order, before.id)
            old.paid_fen = old.total_fen
            book_commission(old)

        assert (after.routed_partner_id, after.routed_agent_id, after.bringing_partner_id,
                after.bringing_agent_id) == (d6_id, a3_id, d6_id, a3_id)
        old = db.session.get(Order, before.id)
        assert (old.routed_partner_id, old.routed_agent_id) == (p["D1"], p["A1"])
        events = {e.id: (e.partner_id, e.agent_id) for e in db.session.execute(
            sa.select(ScanEvent.id, ScanEvent.partner_id, ScanEvent.agent_id)
            .where(ScanEvent.id.in_([sold_before, sold_after])))}
        assert events[sold_before] == (p["D1"], p["A1"])
        assert events[sold_after] == (d6_id, a3_id)
        rows = db.session.execute(sa.select(CommissionEntry.partner_id, CommissionEntry.agent_id, CommissionEntry.role)
                                  .where(CommissionEntry.order_id == before.id)).all()
        assert [tuple(r) for r in rows] == [(p["D1"], p["A1"], "sole")]


def test_a_store_without_a_distributor_gets_the_one_serving_its_place(client, admin, w, app):
    with app.app_context():
        from app.catalog.models import PriceTier

        tier = db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == "retail"))
    resp = client.post("/api/hq/v1/stores", json={"code": "S-NB", "name": "宁波新店", "region_code": "330203",
                                                  "price_tier_id": tier}, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["distributor_id"] == w["p"]["D3"]
    nobody = client.post("/api/hq/v1/stores", json={"code": "S-BJ", "name": "北京新店", "region_code": "110101",
                                                    "price_tier_id": tier}, headers=admin)
    assert_error(nobody, 422, "no_distributor_for_region")
