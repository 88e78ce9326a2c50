"""The shipping desk's answer to one scan (`app.orders.picking.check_scan`), every refusal reason, on the demo:
S1's paid order of 6 山泉纯牛奶 (one case) allocated to 杭州分仓."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN, WAREHOUSE_OPERATOR
from app.catalog.models import Sku
from app.channel.models import Store
from app.codes.models import Code
from app.codes.parse import new_serial
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import Forbidden
from app.extensions import db
from app.inventory.models import Warehouse
from app.orders import picking
from app.orders.models import Order

ADMIN = Principal(user_id=1, kind="hq", bindings=(Binding(HQ_ADMIN),))


def _wh(code):
    return db.session.scalar(sa.select(Warehouse).where(Warehouse.code == code))


def _case(sku_code, *, state="in_warehouse", warehouse=None, store=None, n=0):
    sku = db.session.scalar(sa.select(Sku.id).where(Sku.code == sku_code))
    stmt = sa.select(Code.serial).where(Code.kind == "case", Code.sku_id == sku, Code.state == state)
    if warehouse:
        stmt = stmt.where(Code.location_id == _wh(warehouse).location_id)
    if store:
        column = Code.destination_store_id if state == "in_transit" else Code.store_id
        stmt = stmt.where(column == db.session.scalar(sa.select(Store.id).where(Store.code == store)))
    return list(db.session.scalars(stmt.order_by(Code.id)))[n]


@pytest.fixture()
def order(demo):
    return db.session.scalar(sa.select(Order).where(Order.status == "allocated"))


def check(order, code, scanned=(), principal=ADMIN):
    return picking.check_scan(principal, order.id, code, scanned=list(scanned))


def test_a_case_on_the_shelf_is_accepted_with_its_sku_count_and_what_is_left(order):
    case = _case("MILK250", warehouse="WH-HZ")
    answer = check(order, case)
    assert answer["accepted"] and answer["reason"] == "accepted"
    assert (answer["sku_name"], answer["units"], answer["kind"]) == ("山泉纯牛奶", 6, "case")
    assert answer["scanned"] == [case] and answer["needs"][0]["missing"] == 0 and answer["needs"][0]["scanned"] == 6
    assert "山泉纯牛奶 6 提" in answer["message"]
    # The printed URL and the grouped spelling name the same case.
    assert check(order, "-".join(case[i:i + 4] for i in range(0, 14, 4)))["accepted"]


@pytest.mark.parametrize(("code", "scanned", "reason", "words"), [
    (lambda: _case("MILK250", warehouse="WH-HZ"), lambda: [_case("MILK250", warehouse="WH-HZ")], "duplicate",
     "已经扫过"),
    (lambda: _case("MILK250", warehouse="WH-HZ", n=1), lambda: [_case("MILK250", warehouse="WH-HZ")],
     "already_enough", "已经够了"),
    (lambda: _case("TEA500", warehouse="WH-HZ"), list, "wrong_sku", "茉莉花茶"),
    (lambda: _case("MILK250", warehouse="WH-SZ"), list, "other_warehouse", "深圳分仓"),
    (lambda: _case("MILK250", warehouse="WH-CENTRAL"), list, "other_warehouse", "中央仓"),
    (lambda: _case("MILK250", state="in_transit", store="S1"), list, "in_transit", "老王便利店"),
    (lambda: _case("MILK250", state="in_store", store="S2"), list, "at_store", "李姐烟酒店"),
    (lambda: _case("MILK250", state="issued"), list, "not_put_away", "还没有入库"),
    (new_serial, list, "unknown_code", "没有这个码"),
    (lambda: "hello", list, "not_a_code", "码"),
])
def test_refusals(order, code, scanned, reason, words):
    answer = check(order, code(), scanned())
    assert not answer["accepted"] and answer["reason"] == reason, answer
    assert words in answer["message"], answer["message"]
    assert set(answer) >= {"needs", "scanned", "message"}


def test_more_than_the_order_still_needs_and_the_contents_of_a_scanned_case(order):
    case, other = _case("MILK250", warehouse="WH-HZ"), _case("MILK250", warehouse="WH-HZ", n=1)
    unit = db.session.scalar(sa.select(Code.serial).where(Code.case_id == sa.select(Code.id).where(
        Code.serial == other).scalar_subquery()).order_by(Code.id))
    first = check(order, unit)
    assert first["accepted"] and first["units"] == 1 and first["needs"][0]["missing"] == 5
    answer = check(order, case, [unit])
    assert answer["reason"] == "over_quantity" and "只还差 5 提" in answer["message"], answer["message"]
    assert check(order, other, [unit])["reason"] == "duplicate_contents"
    assert check(order, unit, [other])["reason"] == "duplicate_contents"


def test_a_case_with_a_unit_gone_asks_for_unit_codes(order):
    case = _case("MILK250", warehouse="WH-HZ")
    with transaction():
        unit = db.session.scalar(sa.select(Code).where(Code.case_id == sa.select(Code.id).where(
            Code.serial == case).scalar_subquery()).order_by(Code.id))
        unit.state = "sold"
    assert check(order, case)["reason"] == "case_incomplete"


def test_an_order_not_allocated_is_not_ready_and_other_warehouses_operators_are_refused(order):
    proxy = db.session.scalar(sa.select(Order).where(Order.status == "awaiting_confirmation"))
    answer = check(proxy, _case("MILK250", warehouse="WH-HZ"))
    assert answer["reason"] == "order_not_ready" and "待确认" in answer["message"]
    assert picking.desk(ADMIN, proxy.id)["ready"] is False
    assert picking.desk(ADMIN, order.id)["ready"] is True
    hz = Principal(user_id=1, kind="hq", bindings=(Binding(WAREHOUSE_OPERATOR, warehouse_id=_wh("WH-HZ").id),))
    sz = Principal(user_id=1, kind="hq", bindings=(Binding(WAREHOUSE_OPERATOR, warehouse_id=_wh("WH-SZ").id),))
    assert check(order, _case("MILK250", warehouse="WH-HZ"), principal=hz)["accepted"]
    with pytest.raises(Forbidden):
        check(order, _case("MILK250", warehouse="WH-HZ"), principal=sz)
