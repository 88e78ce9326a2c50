"""Allocation, reservations, shipping (partial, with codes), delivery by scan-in, routing and commission."""

from __future__ import annotations

import sys
import threading
import types
from datetime import timedelta

import sqlalchemy as sa

from app.accounts.roles import DISTRIBUTOR_STAFF
from app.core.clock import now_utc
from app.core.events import units_received
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import Warehouse
from app.inventory.services import InsufficientStock, get_level, transit_location_id, verify_ledger
from app.orders import fulfilment, payments, services
from app.orders.models import CommissionEntry, Order
from tests.conftest import hq_login, mp_login
from tests.orders.conftest import HQ, MP, admin_principal, paid_order, place, rid


def _level(app, wh_code, sku_id, demo_ids):
    with app.app_context():
        loc = db.session.get(Warehouse, demo_ids["warehouses"][wh_code]).location_id
        level = get_level(location_id=loc, sku_id=sku_id)
        db.session.remove()
    return level


def test_allocation_prefers_city_sub_warehouse_else_central(app, client, demo_ids):
    admin = hq_login(client)
    small = paid_order(app, "S1", [("TEA500", 8)], demo_ids)
    resp = client.post(f"{HQ}/orders/{small}/allocate", json={}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["warehouse_id"] == demo_ids["warehouses"]["WH-HZ"]
    # More than the Hangzhou sub-warehouse holds of one line: the whole order goes to central.
    big = paid_order(app, "S1", [("TEA500", 400), ("MILK250", 6)], demo_ids)
    resp = client.post(f"{HQ}/orders/{big}/allocate", json={}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["warehouse_id"] == demo_ids["warehouses"]["WH-CENTRAL"]
    assert _level(app, "WH-CENTRAL", demo_ids["skus"]["TEA500"], demo_ids).reserved == 400
    # HQ overrides: move it to Shenzhen's sub-warehouse? Not enough there either → 409, nothing changes.
    resp = client.post(f"{HQ}/orders/{big}/allocate", json={"warehouse_id": demo_ids["warehouses"]["WH-SZ"]},
                       headers=admin)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "insufficient_stock"
    assert _level(app, "WH-CENTRAL", demo_ids["skus"]["TEA500"], demo_ids).reserved == 400
    # A feasible override releases the old reservation.
    resp = client.post(f"{HQ}/orders/{small}/allocate", json={"warehouse_id": demo_ids["warehouses"]["WH-SZ"]},
                       headers=admin)
    assert resp.status_code == 200
    assert _level(app, "WH-HZ", demo_ids["skus"]["TEA500"], demo_ids).reserved == 0
    assert _level(app, "WH-SZ", demo_ids["skus"]["TEA500"], demo_ids).reserved == 8
    resp = client.post(f"{HQ}/orders/{small}/allocate", json={"warehouse_id": 999999}, headers=admin)
    assert resp.status_code == 404
    with app.app_context():
        assert verify_ledger() == []
        db.session.remove()


def test_partial_shipment_then_scan_in_completes(app, client, demo_ids):
    admin = hq_login(client)
    bisc = demo_ids["skus"]["BISC"]
    order_id = paid_order(app, "S1", [("BISC", 30)], demo_ids)
    assert client.post(f"{HQ}/orders/{order_id}/allocate", json={}, headers=admin).status_code == 200
    resp = client.post(f"{HQ}/orders/{order_id}/ship", json={"lines": [{"sku_id": bisc, "quantity": 10}]},
                       headers=admin)
    assert resp.status_code == 201, resp.get_json()
    over = client.post(f"{HQ}/orders/{order_id}/ship", json={"lines": [{"sku_id": bisc, "quantity": 30}]},
                       headers=admin)
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "over_shipment"
    assert client.post(f"{HQ}/orders/{order_id}/ship", json={}, headers=admin).status_code == 201  # the other 20
    nothing = client.post(f"{HQ}/orders/{order_id}/ship", json={}, headers=admin)
    assert nothing.status_code == 422 and nothing.get_json()["error"]["code"] == "nothing_to_ship"
    assert client.post(f"{MP}/orders/{order_id}/cancel", json={}, headers=admin).status_code == 409
    with app.app_context():
        store_loc = db.session.scalar(sa.select(Order).where(Order.id == order_id)).store_id
        from app.channel.models import Store

        transit = transit_location_id(db.session.get(Store, store_loc).location_id)
        assert get_level(location_id=transit, sku_id=bisc).on_hand == 30
        # The store scans the goods in (what the scans engineer's code announces), in two goes.
        for quantity in (25, 5):
            with transaction():
                units_received.send(None, store_id=store_loc, sku_id=bisc, quantity=quantity, at=now_utc(),
                                    order_id=order_id, serials=[])
            status = db.session.get(Order, order_id).status
            assert status == ("shipped" if quantity == 25 else "completed")
        db.session.remove()
    detail = client.get(f"{HQ}/orders/{order_id}", headers=admin).get_json()
    assert [s["lines"][0]["received_quantity"] for s in detail["shipments"]] == [10, 20]
    assert detail["lines"][0]["received_quantity"] == 30


def test_ship_with_case_codes(app, client, demo_ids, monkeypatch):
    """Serialized goods ship by codes through the codes engineer's ship_codes (a double stands in for it here)."""
    admin = hq_login(client)
    milk = demo_ids["skus"]["MILK250"]
    calls = []

    def ship_codes(*, serials, from_location_id, to_store_id, order_id, user_id):
        calls.append((tuple(serials), from_location_id, to_store_id, order_id))
        return {milk: 6 * len(serials)}

    monkeypatch.setitem(sys.modules, "app.codes.services", types.SimpleNamespace(ship_codes=ship_codes))
    order_id = paid_order(app, "S1", [("MILK250", 12)], demo_ids)
    before = _level(app, "WH-HZ", milk, demo_ids)
    assert client.post(f"{HQ}/orders/{order_id}/allocate", json={}, headers=admin).status_code == 200
    refused = client.post(f"{HQ}/orders/{order_id}/ship", json={"lines": [{"sku_id": milk, "quantity": 6}]},
                          headers=admin)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "serialized_needs_codes"
    resp = client.post(f"{HQ}/orders/{order_id}/ship", json={"case_codes": ["C1", "C2"]}, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["case_codes"] == ["C1", "C2"] and calls[0][3] == order_id
    after = _level(app, "WH-HZ", milk, demo_ids)
    assert (after.on_hand, after.reserved) == (before.on_hand - 12, before.reserved)
    # The owner confirms receipt without scanning: the order completes; coded stock waits in transit for the scan.
    owner_headers = {"Authorization": client.post(f"{MP}/sessions", json={"code": "demo:demo_store_owner"})
                     .get_json()["token"].join(("Bearer ", ""))}
    resp = client.post(f"{MP}/orders/{order_id}/receive", headers=owner_headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "completed"


def test_two_allocations_race_for_the_last_units(postgres, demo_ids):
    app = postgres
    tea = demo_ids["skus"]["TEA500"]
    on_hand = _level(app, "WH-SZ", tea, demo_ids).on_hand  # 120 in the demo
    orders = [paid_order(app, "S2", [("TEA500", on_hand)], demo_ids) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: dict[int, str] = {}

    def allocate(order_id):
        with app.app_context():
            barrier.wait()
            try:
                fulfilment.allocate_order(admin_principal(app), order_id, warehouse_id=demo_ids["warehouses"]["WH-SZ"])
                results[order_id] = "ok"
            except InsufficientStock as exc:
                results[order_id] = exc.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=allocate, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results.values()) == ["insufficient_stock", "ok"]
    level = _level(app, "WH-SZ", tea, demo_ids)
    assert (level.on_hand, level.reserved) == (on_hand, on_hand)
    with app.app_context():
        statuses = sorted(db.session.get(Order, o).status for o in orders)
        assert statuses == ["allocated", "paid"]
        assert verify_ledger() == []
        db.session.remove()


def test_cross_region_routing_and_commission(app, client, demo_ids):
    from app.channel import services as channel

    admin = hq_login(client)
    with app.app_context():
        from app.channel.models import Partner

        d1 = db.session.get(Partner, demo_ids["partners"]["D1"])
        tier = db.session.scalar(sa.text("SELECT id FROM price_tiers WHERE code='retail'"))
        store = channel.create_store(admin_principal(app), code="SX", name="深圳远方店", region_code="440305",
                                     distributor_id=d1.id, price_tier_id=tier, owner_name="远", phone="13800000099",
                                     address="深圳")
        store_id, d1_path = store.id, d1.path
        dist = Principal(0, "mp", (Binding(DISTRIBUTOR_STAFF, partner_id=d1.id, partner_path=d1_path),))
        from app.accounts.models import User

        dist = Principal(db.session.scalar(sa.select(User.id).where(User.openid == "demo_distributor")), "mp",
                         dist.bindings)
        order = services.create_order(dist, request_id=rid(), store_id=store_id,
                                      lines=[{"sku_id": demo_ids["skus"]["BISC"], "quantity": 100}])
        order_id = order.id
        assert (order.bringing_partner_id, order.routed_partner_id) == (d1.id, demo_ids["partners"]["D2"])
        db.session.remove()
    # The partner it was routed to sees it (read only); another region's partner does not.
    dist2 = mp_login(client, "demo_distributor_2")
    assert client.get(f"{MP}/orders/{order_id}", headers=dist2).status_code == 200
    assert order_id in [o["id"] for o in client.get(f"{MP}/orders", headers=dist2).get_json()["items"]]
    assert client.post(f"{MP}/orders/{order_id}/cancel", json={}, headers=dist2).status_code == 403
    assert client.get(f"{MP}/orders/{order_id}", headers=mp_login(client, "demo_store_owner_2")).status_code == 403
    assert client.put(f"{HQ}/commission-rule", json={"margin_bp": 2000, "bringer_share_bp": 3000},
                      headers=admin).status_code == 200
    with app.app_context():
        # The owner of the new store is not bound; HQ stands in for them in this service test.
        with transaction():
            order = db.session.get(Order, order_id)
            order.move_to("awaiting_payment", action="confirm")
        payments.record_offline_payment(admin_principal(app), order_id, reference="X")
        fulfilment.allocate_order(admin_principal(app), order_id)
        assert db.session.get(Order, order_id).warehouse_id == demo_ids["warehouses"]["WH-SZ"]
        fulfilment.ship_order(admin_principal(app), order_id, case_codes=[])
        with transaction():
            units_received.send(None, store_id=store_id, sku_id=demo_ids["skus"]["BISC"], quantity=100, at=now_utc(),
                                order_id=order_id, serials=[])
        entries = {e.role: (e.partner_id, e.amount_fen) for e in db.session.scalars(
            sa.select(CommissionEntry).where(CommissionEntry.order_id == order_id))}
        db.session.remove()
    margin = 100 * 1800 * 2000 // 10000  # 36,000 fen
    assert entries == {"bringer": (demo_ids["partners"]["D1"], margin * 3 // 10),
                       "servicer": (demo_ids["partners"]["D2"], margin - margin * 3 // 10)}
    report = client.get(f"{HQ}/commissions?partner_id={demo_ids['partners']['D2']}", headers=admin).get_json()
    assert report["total_fen"] >= margin - margin * 3 // 10
    assert any(e["order_id"] == order_id and e["role"] == "servicer" for e in report["entries"])
    assert client.put(f"{HQ}/commission-rule", json={"margin_bp": 20000, "bringer_share_bp": 1},
                      headers=admin).status_code == 422


def test_expire_unconfirmed_and_cli(app, client, distributor, demo_ids):
    from app.orders.cli import orders_cli

    order = place(client, distributor, demo_ids["stores"]["S1"], [{"sku_id": demo_ids["skus"]["MILK250"],
                                                                  "quantity": 6}]).get_json()
    with app.app_context():
        assert services.expire_unconfirmed() == 0
        assert services.expire_unconfirmed(now=now_utc() + timedelta(days=4)) >= 1
        assert db.session.get(Order, order["id"]).status == "cancelled"
        db.session.remove()
    runner = app.test_cli_runner()
    result = runner.invoke(orders_cli, ["expire"])
    assert result.exit_code == 0 and "cancelled=0" in result.output
    result = runner.invoke(orders_cli, ["reconcile", "--older-than-minutes", "0"])
    assert result.exit_code == 0 and "checked=" in result.output
