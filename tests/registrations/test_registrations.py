"""Registrations (客户报备) over the HTTP contract: one holder per shop, refusals with the holder and the date, the
state machine with its audit rows, HQ's rules, conflicts and reassignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.channel.registration_models import Registration, RegistrationConflict, RegistrationIdentity
from app.core.clock import BUSINESS_TZ
from app.extensions import db
from tests.helpers import assert_db_unchanged, assert_error
from tests.registrations.helpers import REGISTRATIONS, new_shop, register

HQ = "/api/hq/v1"


def _reg(reg_id: int) -> Registration:
    db.session.expire_all()
    return db.session.get(Registration, reg_id)


def test_register_protects_the_shop_for_the_policy_days(client, world):
    resp = register(client, world["d1"], phone="+86 139-1111-0001", licence_no="91110108551385082Q")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "protected" and body["days_left"] == 30 and body["extensions_left"] == 1
    assert body["phone"] == "13911110001" and body["partner_id"] == world["partners"]["D1"]
    assert body["agent_id"] == world["partners"]["A1"] and body["region_name"] == "西湖区"
    until = datetime.fromisoformat(body["protected_until"])
    assert abs((until - datetime.now(UTC)) - timedelta(days=30)) < timedelta(minutes=1)
    reg = _reg(body["id"])
    assert {(i.kind, i.value) for i in reg.identities} == {
        ("licence", "91110108551385082Q"), ("phone", "13911110001"), ("name_district", f"330106:{body['name']}")}
    assert [(e.from_status, e.to_status, e.action) for e in reg.events] == [(None, "protected", "register")]


def test_region_is_read_from_the_address_when_not_picked(client, world):
    resp = register(client, world["d1"], region_code=None, address="杭州市上城区湖滨路 20 号")
    assert resp.status_code == 201 and resp.get_json()["region_code"] == "330102"


def test_another_partner_is_refused_with_the_holder_and_date(client, world):
    first = register(client, world["d1"], phone="13911110002").get_json()
    resp = client.post(REGISTRATIONS, json=new_shop(phone="139 1111 0002"), headers=world["d2"])
    err = assert_error(resp, 409, "registration_conflict")
    until = datetime.fromisoformat(first["protected_until"]).astimezone(BUSINESS_TZ).date().isoformat()
    assert err["details"] == {"held_by": "杭州西湖分销", "until": until, "matched": "phone"}
    assert "杭州西湖分销" in err["message"] and until in err["message"]
    assert set(err["details"]) == {"held_by", "until", "matched"}  # nothing else about the shop
    db.session.expire_all()
    refused = db.session.scalars(sa.select(RegistrationConflict)).all()
    assert [(c.partner_id, c.holder_partner_id, c.registration_id) for c in refused] == [
        (world["partners"]["D2"], world["partners"]["D1"], first["id"])]
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1


def test_same_licence_or_same_name_in_district_is_the_same_shop(client, world):
    first = register(client, world["d1"], licence_no="91330100716105852F", name="湖边 小卖部").get_json()
    by_licence = register(client, world["d2"], licence_no="9133 0100 7161 0585 2f")
    assert assert_error(by_licence, 409, "registration_conflict")["details"]["matched"] == "licence"
    by_name = register(client, world["d2"], name="湖边小卖部！")
    assert assert_error(by_name, 409, "registration_conflict")["details"]["matched"] == "name_district"
    elsewhere = register(client, world["d2"], name="湖边小卖部", region_code="330203")  # Ningbo: no exclusive
    assert elsewhere.status_code == 201, elsewhere.get_json()
    assert first["status"] == "protected"


def test_an_existing_store_is_refused_with_its_distributor(client, world):
    resp = register(client, world["d1"], phone="13800000002")  # S2's phone, served by D2
    err = assert_error(resp, 409, "registration_conflict")
    assert err["details"] == {"held_by": "深圳南山分销", "until": None, "matched": "phone"}
    resp = register(client, world["d2"], name="老王 便利店", region_code="330106")  # S1's name in its district
    assert assert_error(resp, 409, "registration_conflict")["details"]["held_by"] == "杭州西湖分销"


def test_own_shop_again_is_not_a_silent_refresh(client, world):
    first = register(client, world["d1"], phone="13911110003").get_json()
    err = assert_error(register(client, world["d1"], phone="13911110003"), 409, "already_registered")
    assert err["details"]["registration_id"] == first["id"]
    assert _reg(first["id"]).protected_until.isoformat() == first["protected_until"]


BAD = [
    ({"phone": "1391111000"}, "phone_invalid"),
    ({"phone": "12345678901"}, "phone_invalid"),
    ({"licence_no": "91110108551385082A"}, "licence_invalid"),
    ({"licence_no": "911101085513850"}, "licence_invalid"),
    ({"region_code": "330000"}, "region_invalid"),
    ({"region_code": "999999"}, "region_invalid"),
    ({"region_code": None, "address": "某某路 1 号"}, "region_invalid"),
    ({"name": "？？ ！"}, "name_invalid"),
    ({"lat": 91}, "validation_failed"),
    ({"phone": 13911110004}, "validation_failed"),
    ({"surprise": 1}, "validation_failed"),
]


def test_bad_input_is_a_clear_refusal_and_changes_nothing(client, world):
    for extra, code in BAD:
        with assert_db_unchanged():
            err = assert_error(register(client, world["d1"], **extra), 422, code)
        assert err["message"] and not err["message"].isascii(), (extra, err)
    for missing in ("request_id", "name", "phone", "industry"):
        body = new_shop()
        del body[missing]
        with assert_db_unchanged():
            assert_error(client.post(REGISTRATIONS, json=body, headers=world["d1"]), 422, "validation_failed")


def test_only_partner_staff_register(client, world):
    with assert_db_unchanged():
        assert_error(register(client, world["owner_s1"]), 403)
        assert_error(register(client, world["hq"]), 403, "partner_staff_only")
        assert_error(client.post(REGISTRATIONS, json=new_shop()), 401)


def test_a_repeated_request_id_gets_the_first_answer(client, world):
    body = new_shop()
    first = client.post(REGISTRATIONS, json=body, headers=world["d1"])
    again = client.post(REGISTRATIONS, json=body, headers=world["d1"])
    assert first.status_code == again.status_code == 201 and first.get_json()["id"] == again.get_json()["id"]
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1
    refused_body = new_shop(phone=body["phone"])
    refused = client.post(REGISTRATIONS, json=refused_body, headers=world["d2"])
    refused_again = client.post(REGISTRATIONS, json=refused_body, headers=world["d2"])
    assert refused.status_code == refused_again.status_code == 409
    assert refused.get_json() == refused_again.get_json()
    assert db.session.scalar(sa.select(sa.func.count(RegistrationConflict.id))) == 1
    reused = client.post(REGISTRATIONS, json={**body, "phone": "13911119999"}, headers=world["d1"])
    assert_error(reused, 409, "request_id_reused")


def test_quota_by_partner_level(client, world):
    resp = client.put(f"{HQ}/registration-policy", json={"default_quota": 1, "quota_by_level": {"gold": 3}},
                      headers=world["hq"])
    assert resp.status_code == 200 and resp.get_json()["default_quota"] == 1
    assert register(client, world["d1"]).status_code == 201
    err = assert_error(register(client, world["d1"]), 409, "registration_quota")
    assert err["details"] == {"quota": 1, "held": 1, "level": "standard"}
    assert register(client, world["d2"], region_code="440305").status_code == 201  # another partner: own quota


def test_extend_is_asked_for_and_limited(client, world):
    reg = register(client, world["d1"]).get_json()
    resp = client.post(f"{REGISTRATIONS}/{reg['id']}/extend", json={"reason": "老板下周回来"}, headers=world["d1"])
    assert resp.status_code == 200, resp.get_json()
    extended = resp.get_json()
    assert datetime.fromisoformat(extended["protected_until"]) - datetime.fromisoformat(
        reg["protected_until"]) == timedelta(days=15)
    assert extended["extensions_left"] == 0 and extended["days_left"] == 45
    err = assert_error(client.post(f"{REGISTRATIONS}/{reg['id']}/extend", json={}, headers=world["d1"]), 409,
                       "extension_limit")
    assert err["details"]["max_extensions"] == 1
    events = [(e.from_status, e.to_status, e.action, e.reason) for e in _reg(reg["id"]).events]
    assert events[-1] == ("protected", "protected", "extend", "老板下周回来")


def test_release_frees_the_shop(client, world):
    reg = register(client, world["d1"], phone="13911110005").get_json()
    resp = client.post(f"{REGISTRATIONS}/{reg['id']}/release", json={"reason": "店主不做了"}, headers=world["d1"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "released"
    assert db.session.scalar(sa.select(sa.func.count(RegistrationIdentity.id))) == 0
    assert register(client, world["d2"], phone="13911110005", region_code="440305").status_code == 201
    assert_error(client.post(f"{REGISTRATIONS}/{reg['id']}/release", json={}, headers=world["d1"]), 409,
                 "registration_state")


def test_scope_of_the_partner_routes(client, world):
    reg = register(client, world["d1"]).get_json()
    for action in ("extend", "release"):
        assert_error(client.post(f"{REGISTRATIONS}/{reg['id']}/{action}", json={}, headers=world["d2"]), 403)
    assert_error(client.post(f"{REGISTRATIONS}/999999/extend", json={}, headers=world["d1"]), 404,
                 "registration_not_found")
    mine = client.get(REGISTRATIONS, headers=world["d1"]).get_json()
    agents = client.get(f"{REGISTRATIONS}?status=protected", headers=world["a1"]).get_json()
    others = client.get(REGISTRATIONS, headers=world["d2"]).get_json()
    assert [i["id"] for i in mine["items"]] == [reg["id"]] == [i["id"] for i in agents["items"]]
    assert others["items"] == [] and others["total"] == 0
    assert client.get(f"{REGISTRATIONS}?status=expired", headers=world["d1"]).get_json()["total"] == 0
    assert_error(client.get(f"{REGISTRATIONS}?status=nonsense", headers=world["d1"]), 422)


def test_list_puts_the_protection_ending_soonest_first(client, world):
    a = register(client, world["d1"]).get_json()
    b = register(client, world["d1"]).get_json()
    client.post(f"{REGISTRATIONS}/{a['id']}/extend", json={}, headers=world["d1"])
    items = client.get(REGISTRATIONS, headers=world["d1"]).get_json()["items"]
    assert [i["id"] for i in items] == [b["id"], a["id"]]
    assert [i["days_left"] for i in items] == [30, 45]


def test_hq_conflicts_first_and_reassign_with_a_reason(client, world):
    quiet = register(client, world["d1"]).get_json()
    held = register(client, world["d1"], phone="13911110006").get_json()
    assert_error(register(client, world["d2"], phone="13911110006"), 409, "registration_conflict")
    page = client.get(f"{HQ}/registrations?conflicts=1", headers=world["hq"]).get_json()
    assert [i["id"] for i in page["items"]] == [held["id"]]
    conflict = page["items"][0]["conflicts"][0]
    assert conflict["partner_name"] == "深圳南山分销" and conflict["holder_name"] == "杭州西湖分销"
    everything = client.get(f"{HQ}/registrations", headers=world["hq"]).get_json()
    assert {i["id"] for i in everything["items"]} == {quiet["id"], held["id"]}
    by_partner = client.get(f"{HQ}/registrations?partner_id={world['partners']['D2']}", headers=world["hq"])
    assert by_partner.get_json()["total"] == 0
    assert client.get(f"{HQ}/registration-conflicts", headers=world["hq"]).get_json()["items"][0]["id"] == \
        conflict["id"]

    url = f"{HQ}/registrations/{held['id']}/reassign"
    with assert_db_unchanged():
        assert_error(client.post(url, json={"partner_id": world["partners"]["D2"], "reason": ""},
                                 headers=world["hq"]), 422)
        assert_error(client.post(url, json={"partner_id": world["partners"]["D2"]}, headers=world["hq"]), 422)
        assert_error(client.post(url, json={"partner_id": world["partners"]["D1"], "reason": "x"},
                                 headers=world["hq"]), 422, "same_partner")
        assert_error(client.post(url, json={"partner_id": world["partners"]["HQ"], "reason": "x"},
                                 headers=world["hq"]), 404, "partner_not_found")
        assert_error(client.post(url, json={"partner_id": world["partners"]["D2"], "reason": "x"},
                                 headers=world["d1"]), 403)
    resp = client.post(url, json={"partner_id": world["partners"]["D2"], "reason": "D1 两周没去拜访"},
                       headers=world["hq"])
    assert resp.status_code == 200, resp.get_json()
    new = resp.get_json()
    assert new["status"] == "protected" and new["partner_id"] == world["partners"]["D2"]
    assert new["reassigned_from_id"] == held["id"] and new["agent_id"] == world["partners"]["A2"]
    old = client.get(f"{HQ}/registrations/{held['id']}", headers=world["hq"]).get_json()
    assert old["status"] == "reassigned"
    assert old["history"][-1]["action"] == "reassign" and old["history"][-1]["reason"] == "D1 两周没去拜访"
    assert old["history"][-1]["from_status"] == "protected" and old["history"][-1]["user_id"] is not None
    err = assert_error(register(client, world["d1"], phone="13911110006"), 409, "registration_conflict")
    assert err["details"]["held_by"] == "深圳南山分销"


def test_policy_get_put_and_bounds(client, world):
    policy = client.get(f"{HQ}/registration-policy", headers=world["hq"]).get_json()
    assert policy["protection_days"] == 30 and policy["max_extensions"] == 1
    with assert_db_unchanged():
        assert_error(client.put(f"{HQ}/registration-policy", json={"protection_days": 0}, headers=world["hq"]),
                     422, "policy_invalid")
        assert_error(client.put(f"{HQ}/registration-policy", json={"protection_days": "30"},
                                headers=world["hq"]), 422)
        assert_error(client.put(f"{HQ}/registration-policy", json={"quota_by_level": {"gold": -1}},
                                headers=world["hq"]), 422)
        assert_error(client.put(f"{HQ}/registration-policy", json={"protection_days": 10},
                                headers=world["d1"]), 403)
    resp = client.put(f"{HQ}/registration-policy", json={"protection_days": 10, "max_extensions": 2},
                      headers=world["hq"])
    assert resp.status_code == 200 and resp.get_json()["protection_days"] == 10
    assert register(client, world["d1"]).get_json()["days_left"] == 10
    assert client.get(f"{HQ}/registration-policy", headers=world["hq"]).get_json()["max_extensions"] == 2


def test_a_retried_extend_or_release_happens_once(client, world):
    client.put(f"{HQ}/registration-policy", json={"max_extensions": 3}, headers=world["hq"])
    reg = register(client, world["d1"]).get_json()
    url = f"{REGISTRATIONS}/{reg['id']}"
    first = client.post(f"{url}/extend", json={"request_id": "ext-1"}, headers=world["d1"])
    again = client.post(f"{url}/extend", json={"request_id": "ext-1"}, headers=world["d1"])
    assert first.status_code == again.status_code == 200
    assert first.get_json()["protected_until"] == again.get_json()["protected_until"]
    assert _reg(reg["id"]).extensions_used == 1
    other = client.post(f"{url}/extend", json={"request_id": "ext-2"}, headers=world["d1"])
    assert other.get_json()["extensions_left"] == 1
    released = client.post(f"{url}/release", json={"request_id": "rel-1"}, headers=world["d1"])
    repeat = client.post(f"{url}/release", json={"request_id": "rel-1"}, headers=world["d1"])
    assert released.status_code == repeat.status_code == 200 and repeat.get_json()["status"] == "released"
    assert [e.action for e in _reg(reg["id"]).events] == ["register", "extend", "extend", "release"]


def test_another_partners_exclusive_territory_is_theirs_to_bring_in(client, world):
    """The one routing function says who serves the place: in D1's exclusive Hangzhou, D2 may not protect a shop,
    D1 and its agent A1 may (A1 in its own line); in Ningbo, which D3 holds shared, anyone may."""
    before = db.session.scalar(sa.select(sa.func.count(Registration.id)))
    err = assert_error(register(client, world["d2"], region_code="330106"), 409, "territory_exclusive")
    assert err["details"] == {"held_by": "杭州西湖分销", "region_code": "330106"}
    assert "杭州西湖分销独家经营" in err["message"]
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == before
    assert register(client, world["d1"], region_code="330106").status_code == 201
    assert register(client, world["a1"], region_code="330106").status_code == 201
    assert register(client, world["d2"], region_code="330203").status_code == 201
