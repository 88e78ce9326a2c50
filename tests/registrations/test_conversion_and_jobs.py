"""A registration converts when its shop becomes a store (invite redeemed, first order, first scan-in), in that
fact's transaction; the expiry, reminder and dormancy jobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.catalog.models import PriceTier, Sku
from app.channel import registrations
from app.channel.models import Store
from app.channel.registration_models import Registration, RegistrationIdentity
from app.codes.models import Code, CodeBatch
from app.codes.services import generate_batch
from app.core.tx import transaction
from app.extensions import db
from app.inventory.services import move_stock, transit_location_id
from tests.conftest import mp_login
from tests.helpers import assert_error
from tests.registrations.helpers import REGISTRATIONS, make_store_owner, register

HQ = "/api/hq/v1"


def _reg(reg_id: int) -> Registration:
    db.session.expire_all()
    return db.session.get(Registration, reg_id)


def _store_for(client, world, reg: dict, **extra) -> int:
    """HQ sets the registered shop up as a store of D1 (same phone)."""
    tier = db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == "retail"))
    db.session.remove()
    resp = client.post(f"{HQ}/stores", json={
        "code": f"T{uuid.uuid4().hex[:8]}", "name": extra.get("name", reg["name"]), "region_code": "330106",
        "distributor_id": world["partners"]["D1"], "price_tier_id": tier, "phone": extra.get("phone", reg["phone"])},
        headers=world["hq"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def _assert_converted(reg_id: int, store_id: int, via: str) -> None:
    reg = _reg(reg_id)
    assert (reg.status, reg.store_id, reg.converted_via) == ("converted", store_id, via)
    assert (reg.events[-1].from_status, reg.events[-1].to_status, reg.events[-1].action) == (
        "protected", "converted", via)
    assert reg.identities, "a converted shop stays held"


def test_a_store_made_does_not_convert_by_itself(client, world):
    reg = register(client, world["d1"]).get_json()
    _store_for(client, world, reg)
    assert _reg(reg["id"]).status == "protected"


def test_invite_redeemed_converts(client, world):
    reg = register(client, world["d1"]).get_json()
    store_id = _store_for(client, world, reg)
    token = client.post(f"{HQ}/invites", json={"role": "store_owner", "store_id": store_id},
                        headers=world["hq"]).get_json()["token"]
    resp = client.post(f"/api/mp/v1/invites/{token}/redeem", json={}, headers=mp_login(client, "new_owner_1"))
    assert resp.status_code == 200, resp.get_json()
    _assert_converted(reg["id"], store_id, "invite")
    listed = client.get(f"{REGISTRATIONS}?status=converted", headers=world["d1"]).get_json()["items"]
    assert [(i["id"], i["store_id"], i["days_left"]) for i in listed] == [(reg["id"], store_id, None)]


def test_first_order_converts_by_name_in_district(client, world):
    reg = register(client, world["d1"], name="文一路 鲜奶铺").get_json()
    store_id = _store_for(client, world, reg, name="文一路鲜奶铺", phone="13812345678")  # another phone
    milk = db.session.scalar(sa.select(Sku.id).where(Sku.code == "MILK250"))
    db.session.remove()
    resp = client.post("/api/mp/v1/orders", json={"request_id": uuid.uuid4().hex, "store_id": store_id,
                                                  "lines": [{"sku_id": milk, "quantity": 6}]}, headers=world["d1"])
    assert resp.status_code == 201, resp.get_json()
    _assert_converted(reg["id"], store_id, "first_order")


def test_first_scan_in_converts(client, world):
    reg = register(client, world["d1"]).get_json()
    store_id = _store_for(client, world, reg)
    milk = db.session.scalar(sa.select(Sku.id).where(Sku.code == "MILK250"))
    with transaction():
        batch = CodeBatch(sku_id=milk, quantity=1, status="pending")
        db.session.add(batch)
    generate_batch(batch.id)
    store = db.session.get(Store, store_id)
    with transaction():
        transit = transit_location_id(store.location_id)
        db.session.execute(sa.update(Code).where(Code.batch_id == batch.id).values(
            state="in_transit", location_id=transit, destination_store_id=store.id,
            destination_distributor_id=store.distributor_id, destination_region=store.city_code))
        move_stock(location_id=transit, sku_id=milk, on_hand=1, kind="ship", reason="test")
    serial = db.session.scalar(sa.select(Code.serial).where(Code.batch_id == batch.id))
    make_store_owner(store_id, "scan_in_owner")
    db.session.remove()
    resp = client.post("/api/mp/v1/scans", json={"request_id": uuid.uuid4().hex, "code": serial,
                                                 "action": "receive", "store_id": store_id,
                                                 "scanned_at": datetime.now(UTC).isoformat()},
                       headers=mp_login(client, "scan_in_owner"))
    assert resp.status_code == 200 and resp.get_json()["status"] == "accepted", resp.get_json()
    _assert_converted(reg["id"], store_id, "scan_in")


def test_expiry_job_frees_the_shop(client, world):
    reg = register(client, world["d1"], phone="13922220001").get_json()
    keep = register(client, world["d1"]).get_json()
    with transaction():
        db.session.execute(sa.update(Registration).where(Registration.id == reg["id"]).values(
            protected_until=datetime.now(UTC) - timedelta(minutes=1)))
    assert registrations.expire_registrations() == 1
    expired = _reg(reg["id"])
    assert expired.status == "expired" and expired.identities == []
    assert (expired.events[-1].to_status, expired.events[-1].user_id) == ("expired", None)
    assert _reg(keep["id"]).status == "protected"
    assert registrations.expire_registrations() == 0
    db.session.remove()
    assert register(client, world["d2"], phone="13922220001", region_code="440305").status_code == 201


def test_a_lapsed_protection_does_not_block_before_the_job_runs(client, world):
    reg = register(client, world["d1"], phone="13922220002").get_json()
    with transaction():
        db.session.execute(sa.update(Registration).where(Registration.id == reg["id"]).values(
            protected_until=datetime.now(UTC) - timedelta(minutes=1)))
    db.session.remove()
    assert register(client, world["d2"], phone="13922220002", region_code="440305").status_code == 201
    assert _reg(reg["id"]).status == "expired"
    assert_error(client.post(f"{REGISTRATIONS}/{reg['id']}/extend", json={}, headers=world["d1"]), 409,
                 "registration_state")


def test_reminder_job_sends_once_after_commit(client, world, fake_wechat):
    soon = register(client, world["d1"]).get_json()
    register(client, world["d1"])  # 30 days left: no reminder
    with transaction():
        db.session.execute(sa.update(Registration).where(Registration.id == soon["id"]).values(
            protected_until=datetime.now(UTC) + timedelta(days=2)))
    before = len(fake_wechat.state.messages)
    assert registrations.remind_expiring() == 1
    sent = fake_wechat.state.messages[before:]
    assert [(m["touser"], m["template_id"]) for m in sent] == [("demo_distributor", "tmpl_registration_expiring")]
    assert sent[0]["data"]["thing1"]["value"] == soon["name"]
    assert _reg(soon["id"]).reminded_at is not None
    assert registrations.remind_expiring() == 0
    # An extension starts a new period, reminded again near its end.
    client.post(f"{REGISTRATIONS}/{soon['id']}/extend", json={}, headers=world["d1"])
    assert _reg(soon["id"]).reminded_at is None


def test_dormancy_is_computed_from_orders_and_scans(client, world):
    reg = register(client, world["d1"]).get_json()
    store_id = _store_for(client, world, reg)
    with transaction():
        assert registrations.convert_for_store(store_id, via="invite") is not None
    url = f"{HQ}/registrations/{reg['id']}/reassign"
    body = {"partner_id": world["partners"]["D2"], "reason": "门店长期不进货"}
    assert_error(client.post(url, json=body, headers=world["hq"]), 409, "store_not_dormant")
    assert registrations.mark_dormant() == 0
    long_ago = datetime.now(UTC) - timedelta(days=120)
    with transaction():
        db.session.execute(sa.update(Registration).where(Registration.id == reg["id"]).values(
            converted_at=long_ago))
    assert registrations.mark_dormant() == 1
    assert _reg(reg["id"]).dormant_since is not None
    agent = {"partner_id": world["partners"]["A2"], "reason": "x"}
    assert_error(client.post(url, json=agent, headers=world["hq"]), 422, "distributor_required")
    resp = client.post(url, json=body, headers=world["hq"])
    assert resp.status_code == 200, resp.get_json()
    new = resp.get_json()
    assert new["status"] == "converted" and new["store_id"] == store_id
    assert db.session.get(Store, store_id).distributor_id == world["partners"]["D2"]
    assert _reg(reg["id"]).status == "reassigned"
    keys = db.session.scalars(sa.select(RegistrationIdentity.registration_id)).all()
    assert set(keys) == {new["id"]}


def test_a_neighbour_is_not_converted(client, world):
    """Another protected shop in the store's district (the quick look finds its area held) is left alone."""
    neighbour = register(client, world["d1"], name="隔壁水果店").get_json()
    reg = register(client, world["d1"], name="街角面包房").get_json()
    store_id = _store_for(client, world, reg, name="街角面包房", phone="13812345679")
    with transaction():
        converted = registrations.convert_for_store(store_id, via="first_order")
    assert converted is not None and converted.id == reg["id"]
    assert _reg(neighbour["id"]).status == "protected"
    with transaction():
        assert registrations.convert_for_store(store_id, via="scan_in") is None  # converted once
    assert [e.action for e in _reg(reg["id"]).events] == ["register", "first_order"]


def test_a_store_for_a_shop_another_partner_protects_is_refused(client, world):
    reg = register(client, world["d1"]).get_json()
    tier = db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == "retail"))
    db.session.remove()
    body = {"code": "T-HELD", "name": "另起的名字", "region_code": "440305", "distributor_id": world["partners"]["D2"],
            "price_tier_id": tier, "phone": reg["phone"]}
    err = assert_error(client.post(f"{HQ}/stores", json=body, headers=world["hq"]), 409, "registration_conflict")
    assert err["details"]["held_by"] == "杭州西湖分销"
    assert db.session.scalar(sa.select(sa.func.count(Store.id)).where(Store.code == "T-HELD")) == 0
    # Under D1 (the holder) the store is made; the registration converts later, by a fact.
    assert client.post(f"{HQ}/stores", json={**body, "distributor_id": world["partners"]["D1"],
                                             "region_code": "330106"}, headers=world["hq"]).status_code == 201
