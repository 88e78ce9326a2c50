"""Targets and actuals (CHANNEL.md §5): versioned targets, actuals from the scans by their stored attribution,
net of returns and undos, the agent's including its distributors', scope, bad input, the .xlsx export."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN
from app.analytics import targets
from app.analytics.target_models import PartnerTarget
from app.channel.models import Partner, Store
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.extensions import db
from tests.conftest import mp_login
from tests.helpers import assert_db_unchanged, assert_error
from tests.scans.helpers import body, codes_in

SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]
PERIOD = now_utc().astimezone(targets.BUSINESS_TZ).strftime("%Y-%m")


def _partner(code: str) -> Partner:
    return db.session.scalar(sa.select(Partner).where(Partner.code == code))


def _actual(code: str, metric: str) -> int:
    pid = _partner(code).id
    return targets.actuals([pid], PERIOD)[(pid, metric)]


def _scan(client, headers, serial: str, action: str) -> int:
    resp = client.post("/api/mp/v1/scans", json=body(serial, action), headers=headers)
    assert resp.status_code in (200, 201), resp.get_json()
    assert resp.get_json()["status"] == "accepted", resp.get_json()
    return resp.get_json()["event_id"]


def _undo(client, headers, event_id: int) -> None:
    resp = client.post(f"/api/mp/v1/scans/{event_id}/undo", json={}, headers=headers)
    assert resp.status_code in (200, 201), resp.get_json()


def test_sell_through_is_net_of_returns_and_undos_and_counts_for_the_agent_too(client, owner):
    before = {(c, m): _actual(c, m) for c in ("D1", "A1", "D2") for m in ("sell_through_units", "active_stores")}
    a, b, c = (code.serial for code in codes_in("S1", n=3))
    _scan(client, owner, a, "sell")
    sold_b = _scan(client, owner, b, "sell")
    _scan(client, owner, c, "sell")
    _undo(client, owner, sold_b)                    # undone: it never counted
    returned = _scan(client, owner, c, "return")    # returned: counts no more
    db.session.remove()
    assert _actual("D1", "sell_through_units") == before[("D1", "sell_through_units")] + 1
    assert _actual("A1", "sell_through_units") == before[("A1", "sell_through_units")] + 1
    assert _actual("D2", "sell_through_units") == before[("D2", "sell_through_units")]
    _undo(client, owner, returned)                  # the return undone: the sell counts again
    db.session.remove()
    assert _actual("D1", "sell_through_units") == before[("D1", "sell_through_units")] + 2
    assert _actual("A1", "sell_through_units") == before[("A1", "sell_through_units")] + 2
    assert _actual("D1", "active_stores") >= 1


def test_a_store_changing_distributor_leaves_its_old_sells_where_they_were(client, owner):
    serial = codes_in("S1", n=1)[0].serial
    d1_before, d2_before = _actual("D1", "sell_through_units"), _actual("D2", "sell_through_units")
    _scan(client, owner, serial, "sell")
    with transaction():
        db.session.execute(sa.update(Store).where(Store.code == "S1").values(distributor_id=_partner("D2").id))
    db.session.remove()
    assert _actual("D1", "sell_through_units") == d1_before + 1
    assert _actual("D2", "sell_through_units") == d2_before
    # A return after the move still counts against the sell's distributor.
    _scan(client, owner, serial, "return")
    db.session.remove()
    assert _actual("D1", "sell_through_units") == d1_before
    assert _actual("D2", "sell_through_units") == d2_before


def test_a_change_is_a_new_version_and_the_same_value_again_changes_nothing(demo):
    d1 = _partner("D1").id
    first = targets.set_target(SYSTEM, partner_id=d1, period="2031-03", metric="sell_in_fen", value=100_000)
    again = targets.set_target(SYSTEM, partner_id=d1, period="2031-03", metric="sell_in_fen", value=100_000)
    assert again.id == first.id and again.version == 1
    second = targets.set_target(SYSTEM, partner_id=d1, period="2031-03", metric="sell_in_fen", value=120_000)
    assert second.version == 2
    history = targets.target_history(SYSTEM, d1, "2031-03", "sell_in_fen")
    assert [(t.version, t.value, t.superseded_at is not None) for t in history] == [
        (1, 100_000, True), (2, 120_000, False)]
    rows = targets.list_targets(SYSTEM, "2031-03", partner_id=d1)
    assert [(r["metric"], r["target"], r["actual"], r["variance"], r["attainment_bp"]) for r in rows] == [
        ("sell_in_fen", 120_000, 0, -120_000, 0)]


def test_two_live_rows_for_one_target_are_refused_by_the_index(demo):
    d1 = _partner("D1").id
    targets.set_target(SYSTEM, partner_id=d1, period="2031-04", metric="new_stores", value=3)
    with pytest.raises(sa.exc.IntegrityError), transaction():
        db.session.add(PartnerTarget(partner_id=d1, period="2031-04", metric="new_stores", value=4, version=2))
    db.session.rollback()


@pytest.mark.parametrize("change, words", [
    ({"metric": "profit"}, "指标"), ({"value": -1}, "目标值"), ({"period": "1999-12"}, "月份"),
    ({"period": "2026-13"}, "月份"), ({"period": "202612"}, "月份"),
    ({"sku_group_id": 3, "metric": "new_stores"}, "商品组"),
])
def test_bad_input_is_a_422_in_chinese_and_changes_nothing(client, admin, change, words):
    payload = {"partner_id": _partner("D1").id, "period": "2031-05", "metric": "sell_in_fen", "value": 5} | change
    with assert_db_unchanged("partner_targets"):
        resp = client.post("/api/hq/v1/targets", json=payload, headers=admin)
    err = assert_error(resp, 422)
    assert words in err["message"] + str(err["details"]), err


def test_hq_sets_and_reads_with_actuals_and_the_xlsx_has_the_same_figures(client, admin):
    d1 = _partner("D1").id
    resp = client.post("/api/hq/v1/targets", headers=admin,
                       json={"partner_id": d1, "period": PERIOD, "metric": "sell_through_units", "value": 7})
    assert resp.status_code == 201, resp.get_json()
    resp = client.get(f"/api/hq/v1/targets?period={PERIOD}&partner_id={d1}", headers=admin)
    assert resp.status_code == 200, resp.get_json()
    row = next(r for r in resp.get_json()["items"] if r["metric"] == "sell_through_units")
    assert row["target"] == 7 and row["actual"] == _actual("D1", "sell_through_units")
    assert row["variance"] == row["actual"] - 7
    resp = client.get(f"/api/hq/v1/targets?period={PERIOD}&partner_id={d1}&format=xlsx", headers=admin)
    assert resp.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    header = [c.value for c in sheet[1]]
    lines = [dict(zip(header, [c.value for c in r], strict=True)) for r in sheet.iter_rows(min_row=2)]
    assert len(lines) == len(resp_json := client.get(f"/api/hq/v1/targets?period={PERIOD}&partner_id={d1}",
                                                        headers=admin).get_json()["items"])
    got = {(x["指标"], x["目标"], x["实际"], x["差额"]) for x in lines}
    assert got == {(r["metric_name"], r["target"], r["actual"], r["variance"]) for r in resp_json}


def test_partner_staff_see_their_own_and_the_agent_its_subtree(client, demo):
    ids = {c: _partner(c).id for c in ("D1", "D2", "A1")}
    for code in ids:
        targets.set_target(SYSTEM, partner_id=ids[code], period=PERIOD, metric="new_stores", value=2)
    staff = mp_login(client, "demo_distributor")
    mine = client.get(f"/api/mp/v1/targets?period={PERIOD}", headers=staff).get_json()["items"]
    assert {r["partner_id"] for r in mine} == {ids["D1"]}
    agent = mp_login(client, "demo_agent")
    theirs = client.get(f"/api/mp/v1/targets?period={PERIOD}", headers=agent).get_json()["items"]
    assert {ids["D1"], ids["A1"]} <= {r["partner_id"] for r in theirs} and ids["D2"] not in {
        r["partner_id"] for r in theirs}
    owner = mp_login(client, "demo_store_owner")
    assert client.get(f"/api/mp/v1/targets?period={PERIOD}", headers=owner).status_code == 403
    # Partner staff cannot set targets.
    resp = client.post("/api/hq/v1/targets", headers=staff,
                       json={"partner_id": ids["D1"], "period": PERIOD, "metric": "new_stores", "value": 9})
    assert resp.status_code in (401, 403)


def test_the_demo_has_targets_for_this_and_last_month_with_one_changed(demo):
    from app.demo.targets import periods

    this, last = periods()
    for period in (this, last):
        rows = targets.list_targets(SYSTEM, period)
        assert {r["partner_code"] for r in rows} >= {"D1", "D2", "D3", "D4", "D5", "A1", "A2"}
        assert all(len([r for r in rows if r["partner_code"] == c]) == 4 for c in ("D1", "D5"))
    d1 = _partner("D1").id
    assert [t.version for t in targets.target_history(SYSTEM, d1, last, "sell_through_units")] == [1, 2]
    a1 = next(r for r in targets.list_targets(SYSTEM, this, partner_id=_partner("A1").id)
              if r["metric"] == "sell_in_fen")
    assert a1["target"] == 800_000


@pytest.mark.parametrize("period", ["2100-01", "1999-12", "2026-00", "26-01", ""])
def test_the_service_refuses_a_month_out_of_range(demo, period):
    with pytest.raises(targets.ValidationFailed) as err:
        targets.set_target(SYSTEM, partner_id=_partner("D1").id, period=period, metric="new_stores", value=1)
    assert err.value.code == "invalid_period"
    with pytest.raises(targets.ValidationFailed):
        targets.list_targets(SYSTEM, period)


def test_an_agents_sell_in_counts_its_distributors_paid_orders_net_of_refunds(demo):
    from app.orders.models import Order

    order_id = db.session.scalar(sa.select(Order.id).order_by(Order.id).limit(1))
    d1, a1 = _partner("D1").id, _partner("A1").id

    def place(**values):
        with transaction():
            db.session.execute(sa.update(Order).where(Order.id == order_id).values(**values))
        db.session.remove()
        return {c: _actual(c, "sell_in_fen") for c in ("D1", "A1", "D2")}

    before = place(paid_at=targets.month_bounds("2001-01")[0], routed_partner_id=d1, routed_agent_id=a1)
    after = place(paid_at=now_utc(), paid_fen=1_000, refunded_fen=300)
    assert after == {"D1": before["D1"] + 700, "A1": before["A1"] + 700, "D2": before["D2"]}


def test_new_stores_count_registrations_converted_in_the_month(demo):
    from app.channel.registration_models import Registration

    reg_id = db.session.scalar(sa.select(Registration.id).order_by(Registration.id).limit(1))
    d1, a1 = _partner("D1").id, _partner("A1").id

    def place(**values):
        with transaction():
            db.session.execute(sa.update(Registration).where(Registration.id == reg_id).values(**values))
        db.session.remove()
        return {c: _actual(c, "new_stores") for c in ("D1", "A1", "D2")}

    before = place(status="expired", partner_id=d1, agent_id=a1)
    after = place(status="converted", converted_at=now_utc())
    assert after == {"D1": before["D1"] + 1, "A1": before["A1"] + 1, "D2": before["D2"]}
