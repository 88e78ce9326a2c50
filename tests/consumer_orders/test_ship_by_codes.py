"""A consumer order's coded goods leave the warehouse by their codes: each unit named (a case brings its units),
marked sold to the consumer with its ship event, in the stock movement's transaction; a count that does not match
the codes is refused and nothing changes. `flask stock verify` proves each warehouse's coded stock is its codes on
the shelf (before, a consumer shipment took the count and left the codes `in_warehouse`)."""

from __future__ import annotations

import sqlalchemy as sa

from app.codes.models import Code, ScanEvent
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import Warehouse
from app.inventory.services import get_level, move_stock
from app.orders.models import ConsumerOrder
from app.scans.books import verify_stock
from tests.conftest import hq_login, mp_login
from tests.consumer_orders.helpers import HQ, MP, ship_codes_for, take
from tests.helpers import table_counts


def _accepted(client, world, lines=None):
    order = take(client, mp_login(client, "demo_distributor"), world, lines=lines).get_json()
    client.post(f"{MP}/consumer-orders/{order['id']}/accept", headers=mp_login(client, "demo_distributor_5"))
    return order


def _central(world) -> Warehouse:
    return db.session.get(Warehouse, world["warehouses"]["WH-CENTRAL"])


def test_the_shipment_moves_each_unit_code_with_its_event(app, client, world):
    hq = hq_login(client)
    milk, tea = world["skus"]["MILK250"], world["skus"]["TEA500"]
    # A whole case of milk (6 提) and one loose tea unit out of a case.
    order = _accepted(client, world, lines=[{"sku_id": milk, "quantity": 6}, {"sku_id": tea, "quantity": 1}])
    codes = ship_codes_for(app, world, order)
    with app.app_context():
        case = db.session.scalar(sa.select(Code).where(Code.serial == codes[0]))
        assert case.kind == "case" and case.sku_id == milk
        loose = db.session.scalar(sa.select(Code).where(Code.serial == codes[1]))
        assert loose.kind == "unit" and loose.sku_id == tea
        tea_case_id = loose.case_id
        central = _central(world)
        before = {s: get_level(location_id=central.location_id, sku_id=s).on_hand for s in (milk, tea)}
        db.session.remove()
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/ship", json={"codes": codes}, headers=hq)
    assert resp.status_code == 200, resp.get_json()
    assert [(ln["unit"], ln["serialized"]) for ln in resp.get_json()["lines"]] == [("提", True), ("提", True)]
    with app.app_context():
        central = _central(world)
        units = db.session.scalars(sa.select(Code).where(Code.kind == "unit", sa.or_(
            Code.case_id == case.id, Code.serial == codes[1]))).all()
        assert len(units) == 7
        order_row = db.session.get(ConsumerOrder, order["id"])
        for u in units:
            assert (u.state, u.location_id, u.store_id) == ("sold", None, None)
            assert u.destination_distributor_id == world["partners"]["D5"] and u.destination_region == "510100"
            assert u.sold_at is not None
        assert db.session.get(Code, case.id).state == "sold"
        # The tea case stays on the shelf with its other units: one loose unit left it.
        assert db.session.get(Code, tea_case_id).state == "in_warehouse"
        assert db.session.scalar(sa.select(sa.func.count()).where(
            Code.case_id == tea_case_id, Code.state == "in_warehouse")) == 3
        events = db.session.scalars(sa.select(ScanEvent).where(ScanEvent.code_id.in_([u.id for u in units]))
                                    .where(ScanEvent.action == "ship")).all()
        assert len(events) == 7 and {e.location_id for e in events} == {central.location_id}
        assert {e.biz_step for e in events} == {"shipping"}
        assert {s: get_level(location_id=central.location_id, sku_id=s).on_hand for s in (milk, tea)} == {
            milk: before[milk] - 6, tea: before[tea] - 1}
        assert order_row.status == "shipped"
        assert verify_stock() == []
        db.session.remove()


def test_a_count_that_does_not_match_the_codes_is_refused_and_nothing_changes(app, client, world):
    hq = hq_login(client)
    order = _accepted(client, world)  # 2 提 milk, 1 提 tea
    codes = ship_codes_for(app, world, order)
    milk_codes, tea_codes = codes[:2], codes[2:]
    with app.app_context():
        before = table_counts()
        hz = db.session.get(Warehouse, world["warehouses"]["WH-HZ"])
        elsewhere = list(db.session.scalars(sa.select(Code.serial).where(
            Code.kind == "unit", Code.state == "in_warehouse", Code.location_id == hz.location_id,
            Code.sku_id == world["skus"]["TEA500"]).limit(1)))
        a_case = db.session.scalar(sa.select(Code.serial).where(
            Code.kind == "case", Code.state == "in_warehouse", Code.sku_id == world["skus"]["MILK250"],
            Code.location_id == _central(world).location_id).order_by(Code.id.desc()).limit(1))
        db.session.remove()
    cases = [
        ({}, 422, "serialized_needs_codes"),  # coded goods by count alone
        ({"codes": milk_codes}, 409, "codes_quantity_mismatch"),  # the tea is missing
        ({"codes": milk_codes[:1] + tea_codes}, 409, "codes_quantity_mismatch"),  # one milk short
        ({"codes": [a_case, *tea_codes]}, 409, "codes_quantity_mismatch"),  # a case: 6 提 for 2 ordered
        ({"codes": milk_codes + elsewhere}, 409, "codes_not_in_warehouse"),  # in the Hangzhou warehouse
        ({"codes": [*milk_codes, *tea_codes, "NOSUCHCODE12"]}, 409, "codes_not_in_warehouse"),
    ]
    for body, status, code in cases:
        resp = client.post(f"{HQ}/consumer-orders/{order['id']}/ship", json=body, headers=hq)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (status, code), (body, resp.get_json())
    resp = client.post(f"{HQ}/consumer-orders/{order['id']}/ship", json={"codes": milk_codes}, headers=hq)
    assert "数量不符" in resp.get_json()["error"]["message"] and "茉莉花茶" in resp.get_json()["error"]["message"]
    with app.app_context():
        assert table_counts() == before
        assert db.session.get(ConsumerOrder, order["id"]).status == "accepted"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Code).where(
            Code.serial.in_(codes), Code.state != "in_warehouse")) == 0
        db.session.remove()
    # Codes of a SKU the order does not have (uncoded biscuits ship by count beside them).
    bisc = _accepted(client, world, lines=[{"sku_id": world["skus"]["BISC"], "quantity": 1}])
    resp = client.post(f"{HQ}/consumer-orders/{bisc['id']}/ship", json={"codes": milk_codes}, headers=hq)
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409, "codes_not_on_order")
    assert client.post(f"{HQ}/consumer-orders/{bisc['id']}/ship", json={}, headers=hq).status_code == 200
    assert client.post(f"{HQ}/consumer-orders/{order['id']}/ship", json={"codes": codes},
                       headers=hq).status_code == 200


def test_verify_names_the_warehouse_and_sku_whose_stock_is_not_its_codes(app, world):
    """What a consumer shipment did before: the count left the warehouse, the codes stayed on its shelf."""
    with app.app_context():
        assert verify_stock() == []
        central = _central(world)
        milk = world["skus"]["MILK250"]
        with transaction():
            move_stock(location_id=central.location_id, sku_id=milk, on_hand=-2, kind="ship",
                       ref_type="consumer_order", ref_id=1)
        problems = verify_stock()
        assert [p["kind"] for p in problems] == ["warehouse_unit_count"]
        [p] = problems
        assert (p["warehouse_id"], p["warehouse"], p["sku_id"], p["sku"]) == (central.id, "中央仓", milk, "MILK250")
        assert p["on_hand"] + 2 == p["unit_codes"] + p["uncoded_opening"]
        result = app.test_cli_runner().invoke(args=["stock", "verify"])
        assert result.exit_code == 1
        assert f"WAREHOUSE UNIT COUNT warehouse={central.id} (中央仓) sku={milk} (MILK250)" in result.output
        assert "1 serialized warehouse level(s) disagree" in result.output
        db.session.remove()
