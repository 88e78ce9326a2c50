"""Closing a month (CHANNEL.md §8): one transaction for every partner, twice changes nothing, a race has one
winner (unique close row), a fault mid-close leaves nothing, recompute writes exactly the difference, tier
history, statements as JSON and .xlsx with the same figures, the mini-program sees its own partner only."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import openpyxl
import pytest
import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN
from app.accounts.services import create_hq_user
from app.analytics import targets
from app.assessment import services
from app.assessment.models import PartnerAssessment, PeriodClose, RebateEntry
from app.channel.models import Partner, Store
from app.codes.models import Code
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import Conflict
from app.extensions import db
from app.orders.models import Order
from app.ratings.models import StoreRating
from app.scans.models import DiversionAlert
from tests.conftest import mp_login
from tests.helpers import assert_error

SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]
P1, P2 = "2024-03", "2024-04"
SCHEME = {"weights": {"attainment": 50, "rating": 30, "training": 20, "attainment_cap_bp": 12000,
                      "diversion_penalty": 5},
          "tiers": [{"name": "铜牌", "min_score": 0, "rebate_bp": 50},
                    {"name": "银牌", "min_score": 60, "rebate_bp": 150},
                    {"name": "金牌", "min_score": 90, "rebate_bp": 300}],
          "base": "sell_in"}
TABLES = (PeriodClose, PartnerAssessment, RebateEntry)


def _ids() -> dict[str, int]:
    return dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())


def _counts() -> tuple[int, ...]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(t)) for t in TABLES)


def _month(period: str, days: int = 3):
    return targets.month_bounds(period)[0] + timedelta(days=days)


def _world(period: str = P1) -> dict[str, int]:
    """In `period`: two paid orders of D1's stores (one 10,001 fen, one 5,000 with 1,000 refunded), one of D2's,
    D1's sell-in target, three ratings of D1 (enough to count) and two diversion alerts at D1's stores."""
    ids = _ids()
    orders = db.session.scalars(sa.select(Order.id).order_by(Order.id).limit(3)).all()
    stores = db.session.scalars(sa.select(Store).where(Store.distributor_id == ids["D1"]).order_by(Store.id)).all()
    code = db.session.scalar(sa.select(Code).limit(1))
    with transaction():
        for oid, (pid, fen, refunded) in zip(orders, [(ids["D1"], 10_001, 0), (ids["D1"], 5_000, 1_000),
                                                      (ids["D2"], 7_777, 0)], strict=True):
            agent = db.session.get(Partner, pid).parent_id
            db.session.execute(sa.update(Order).where(Order.id == oid).values(
                paid_at=_month(period), paid_fen=fen, refunded_fen=refunded, routed_partner_id=pid,
                routed_agent_id=agent))
        for i, s in enumerate(stores[:3]):
            db.session.add(StoreRating(store_id=s.id, distributor_id=ids["D1"], period=period, score=4 + (i == 0),
                                       user_id=1, request_id=f"r-{period}-{i}", created_at=_month(period)))
        for _ in range(2):
            db.session.add(DiversionAlert(code_id=code.id, sku_id=code.sku_id, source="sell", policy="alert",
                                          actual_distributor_id=ids["D1"], created_at=_month(period)))
    targets.set_target(SYSTEM, partner_id=ids["D1"], period=period, metric="sell_in_fen", value=10_000)
    services.put_scheme(SYSTEM, period=period, **SCHEME)
    db.session.remove()
    return ids


def _latest(period: str) -> dict[int, PartnerAssessment]:
    return services.latest_assessments(period)


def _ledger(period: str) -> dict[int, int]:
    return dict(db.session.execute(sa.select(RebateEntry.partner_id, sa.func.sum(RebateEntry.amount_fen))
                                   .where(RebateEntry.period == period).group_by(RebateEntry.partner_id)).all())


def test_close_scores_every_partner_and_the_ledger_sums_to_the_statements(demo):
    ids = _world()
    close = services.close_period(SYSTEM, P1)
    latest = _latest(P1)
    assessed = set(db.session.scalars(sa.select(Partner.id).where(Partner.kind.in_(("agent", "distributor")))))
    assert set(latest) == assessed and close.partners == len(assessed)
    d1 = latest[ids["D1"]]
    # sell-in 10,001 + 4,000 = 14,001 fen against a 10,000 target → 14,001 bp capped at 12,000; ratings 13/3 of 5.
    assert d1.inputs["sell_in_fen"] == 14_001 and d1.base_fen == 14_001
    assert d1.parts["attainment_bp"] == 12_000 and d1.parts["rating_bp"] == 13 * 2000 // 3
    assert d1.inputs["alerts"] == 2 and d1.parts["penalty_x100"] == 1000
    assert d1.score_x100 == (50 * 12000 + 30 * 8666 + 20 * 10000) // 100 - 1000
    assert d1.tier_name == "金牌" and d1.rebate_fen == (14_001 * 300 + 5000) // 10000 == 420
    assert latest[ids["A1"]].inputs["alerts"] == 2          # the agent counts its distributors' alerts
    assert latest[ids["A1"]].base_fen == 14_001             # and their sell-in
    assert latest[ids["D2"]].rebate_fen == (7_777 * 300 + 5000) // 10000
    assert _ledger(P1) == {pid: a.rebate_fen for pid, a in latest.items()}
    assert close.rebate_fen == sum(a.rebate_fen for a in latest.values())
    assert {a.movement for a in latest.values()} == {"new"}


def test_closing_twice_changes_nothing_and_answers_the_existing_close(client, admin, demo):
    _world()
    first = client.post(f"/api/hq/v1/periods/{P1}/close", headers=admin)
    assert first.status_code == 201, first.get_json()
    before = _counts()
    err = assert_error(client.post(f"/api/hq/v1/periods/{P1}/close", headers=admin), 409, "period_closed")
    assert err["details"]["version"] == 1 and err["details"]["rebate_fen"] == first.get_json()["rebate_fen"]
    assert _counts() == before
    # The scheme of a closed month is frozen too.
    assert_error(client.put("/api/hq/v1/assessment-scheme", json={"period": P1, **SCHEME}, headers=admin),
                 409, "period_closed")


def test_only_an_ended_month_with_a_scheme_can_be_closed(client, admin, demo):
    before = _counts()
    this_month = now_utc().astimezone(targets.BUSINESS_TZ).strftime("%Y-%m")
    services.put_scheme(SYSTEM, period=this_month, **SCHEME)
    assert_error(client.post(f"/api/hq/v1/periods/{this_month}/close", headers=admin), 422, "period_not_ended")
    assert_error(client.post("/api/hq/v1/periods/2023-01/close", headers=admin), 422, "scheme_missing")
    assert_error(client.post("/api/hq/v1/periods/2023-13/close", headers=admin), 422)
    assert_error(client.post("/api/hq/v1/periods/2023-02/recompute", json={"reason": "x"}, headers=admin),
                 404, "period_not_closed")
    assert _counts() == before


def test_a_fault_in_the_middle_of_the_close_leaves_nothing(demo, monkeypatch):
    _world()
    before = _counts()
    real = services._rows

    def half_then_crash(*args, **kwargs):
        real(*args, **kwargs)   # the assessment rows and rebate entries are written (not committed) ...
        raise RuntimeError("injected fault mid-close")

    monkeypatch.setattr(services, "_rows", half_then_crash)
    with pytest.raises(RuntimeError):
        services.close_period(SYSTEM, P1)
    db.session.remove()
    assert _counts() == before
    monkeypatch.setattr(services, "_rows", real)
    assert services.close_period(SYSTEM, P1).version == 1


def test_two_hq_users_closing_at_once_one_closes_the_other_gets_period_closed(app, demo):
    """On either engine: PostgreSQL's second INSERT waits on the unique index, then fails; SQLite's second
    transaction waits for the first (BEGIN IMMEDIATE), then finds the close."""
    _world()
    with transaction():
        users = [create_hq_user(username=f"closer_{i}", password="admin", role=HQ_ADMIN) for i in range(2)]
    principals = [Principal(u.id, "hq", (Binding(HQ_ADMIN),)) for u in users]
    db.session.remove()
    barrier, results = threading.Barrier(2), [None, None]

    def work(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                results[i] = services.close_period(principals[i], P1).id
            except Exception as exc:
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].code == "period_closed", results
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PeriodClose)
                             .where(PeriodClose.period == P1)) == 1
    assert db.session.scalar(sa.select(sa.func.count(sa.distinct(RebateEntry.version)))
                             .where(RebateEntry.period == P1)) == 1
    latest = _latest(P1)
    assert _ledger(P1) == {pid: a.rebate_fen for pid, a in latest.items()}


def test_a_late_refund_after_close_is_written_by_recompute_as_exactly_the_difference(client, admin, demo):
    ids = _world()
    services.close_period(SYSTEM, P1)
    before = _latest(P1)[ids["D1"]]
    before_rebate = before.rebate_fen
    # A refund arrives after the close, on the 10,001 fen order: D1's sell-in drops by 6,001 fen.
    oid = db.session.scalar(sa.select(Order.id).where(Order.paid_fen == 10_001))
    with transaction():
        db.session.execute(sa.update(Order).where(Order.id == oid).values(refunded_fen=6_001))
    db.session.remove()
    assert _latest(P1)[ids["D1"]].rebate_fen == before_rebate   # nothing changes silently
    assert_error(client.post(f"/api/hq/v1/periods/{P1}/recompute", json={"reason": ""}, headers=admin), 422)
    resp = client.post(f"/api/hq/v1/periods/{P1}/recompute", json={"reason": "3 月订单退款"}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    after = _latest(P1)
    d1 = after[ids["D1"]]
    assert d1.version == 2 and d1.base_fen == 8_000
    expected_d1 = (8_000 * d1.rebate_bp + 5000) // 10000
    assert d1.rebate_fen == expected_d1
    adjust = db.session.scalars(sa.select(RebateEntry).where(RebateEntry.kind == "adjust",
                                                             RebateEntry.period == P1)).all()
    by = {e.partner_id: e for e in adjust}
    assert by[ids["D1"]].amount_fen == expected_d1 - before_rebate and by[ids["D1"]].reason == "3 月订单退款"
    assert ids["A1"] in by and ids["D2"] not in by              # the agent moved too; D2 did not
    assert resp.get_json() == {"period": P1, "version": 2, "changed": 2,
                               "difference_fen": sum(e.amount_fen for e in adjust)}
    assert _ledger(P1) == {pid: a.rebate_fen for pid, a in after.items()}
    close = db.session.scalar(sa.select(PeriodClose).where(PeriodClose.period == P1))
    assert close.version == 2 and close.rebate_fen == sum(a.rebate_fen for a in after.values())
    # Nothing moved since: nothing written, no version.
    counts = _counts()
    again = client.post(f"/api/hq/v1/periods/{P1}/recompute", json={"reason": "再算一次"}, headers=admin)
    assert again.get_json()["changed"] == 0 and again.get_json()["version"] == 2 and _counts() == counts
    # The statement shows the same figures as the ledger.
    st = client.get(f"/api/hq/v1/rebate-statements?period={P1}&partner_id={ids['D1']}", headers=admin).get_json()
    item = st["items"][0]
    assert item["rebate_fen"] == item["ledger_fen"] == expected_d1
    assert [e["kind"] for e in item["entries"]] == ["close", "adjust"]


def test_tier_history_promoted_kept_demoted_against_the_previous_close(demo):
    ids = _world(P1)
    services.close_period(SYSTEM, P1)
    # In P2: no ratings, no alerts; D1's target unmet (0 of 10,000) → demoted; D3 (no target) kept.
    targets.set_target(SYSTEM, partner_id=ids["D1"], period=P2, metric="sell_in_fen", value=10_000)
    targets.set_target(SYSTEM, partner_id=ids["D2"], period=P2, metric="sell_in_fen", value=10_000)
    # D4 beats its target in P2 (attainment capped at 120%): above 100 points, the new top tier → promoted.
    targets.set_target(SYSTEM, partner_id=ids["D4"], period=P2, metric="sell_in_fen", value=100)
    oid = db.session.scalars(sa.select(Order.id).order_by(Order.id).offset(2).limit(1)).one()  # D2's P1 order, moved
    with transaction():
        db.session.execute(sa.update(Order).where(Order.id == oid).values(
            paid_at=_month(P2), paid_fen=500, refunded_fen=0, routed_partner_id=ids["D4"],
            routed_agent_id=db.session.get(Partner, ids["D4"]).parent_id))
    db.session.remove()
    services.put_scheme(SYSTEM, period=P2, **{**SCHEME, "tiers": [
        {"name": "铜牌", "min_score": 0, "rebate_bp": 50}, {"name": "银牌", "min_score": 45, "rebate_bp": 150},
        {"name": "金牌", "min_score": 90, "rebate_bp": 300}, {"name": "钻石", "min_score": 101, "rebate_bp": 400}]})
    services.close_period(SYSTEM, P2)
    p1, p2 = _latest(P1), _latest(P2)
    assert p1[ids["D1"]].tier_name == "金牌" and p2[ids["D1"]].tier_name == "银牌"
    assert p2[ids["D1"]].movement == "demoted" and p2[ids["D1"]].previous_tier == "金牌"
    assert p2[ids["D3"]].movement == "kept"
    from app.assessment.queries import tier_history
    assert [h["period"] for h in tier_history(ids["D1"])][-2:] == [P2, P1]
    assert p2[ids["D4"]].movement == "promoted" and p2[ids["D4"]].tier_name == "钻石"


def test_statements_json_and_xlsx_have_the_same_figures_and_the_page_lists_them(client, admin, demo):
    ids = _world()
    services.close_period(SYSTEM, P1)
    body = client.get(f"/api/hq/v1/rebate-statements?period={P1}", headers=admin).get_json()
    d1 = next(i for i in body["items"] if i["partner_id"] == ids["D1"])
    assert {line["item"] for line in d1["lines"]} >= {"目标达成", "门店评分", "培训完成率", "窜货扣分", "总分",
                                                      "返点（分）"}
    resp = client.get(f"/api/hq/v1/rebate-statements?period={P1}&format=xlsx", headers=admin)
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    wb = openpyxl.load_workbook(io.BytesIO(resp.data))
    rows = list(wb["返点汇总"].iter_rows(values_only=True))
    header = rows[0]
    xlsx = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    for item in body["items"]:
        x = xlsx[item["partner_code"]]
        assert (x["总分"], x["等级"], x["返点（分）"], x["返点基数（分）"]) == (
            item["score"], item["tier_name"], item["rebate_fen"], item["base_fen"])
    listing = client.get(f"/api/hq/v1/assessments?period={P1}", headers=admin).get_json()
    assert listing["rebate_fen"] == sum(i["rebate_fen"] for i in body["items"])
    assert_error(client.get(f"/api/hq/v1/rebate-statements?period=2020-01&partner_id={ids['D1']}", headers=admin),
                 404, "statement_not_found")


def test_partner_staff_see_their_own_partner_only(client, demo):
    ids = _world()
    services.close_period(SYSTEM, P1)
    d1 = mp_login(client, "demo_distributor")
    agent = mp_login(client, "demo_agent")
    mine = client.get(f"/api/mp/v1/assessments?period={P1}", headers=d1).get_json()
    assert [i["partner_id"] for i in mine["items"]] == [ids["D1"]] and mine["closed"] is True
    assert [i["partner_id"] for i in client.get(f"/api/mp/v1/assessments?period={P1}",
                                                headers=agent).get_json()["items"]] == [ids["A1"]]
    rebates = client.get(f"/api/mp/v1/rebates?period={P1}", headers=d1).get_json()
    assert {e["partner_id"] for e in rebates["items"]} == {ids["D1"]}
    assert rebates["total_fen"] == _latest(P1)[ids["D1"]].rebate_fen
    owner = mp_login(client, "demo_store_owner")
    assert_error(client.get(f"/api/mp/v1/rebates?period={P1}", headers=owner), 403)


@pytest.mark.parametrize(("change", "code"), [
    ({"tiers": [{"name": "a", "min_score": 10, "rebate_bp": 1}]}, "tiers_gap"),
    ({"tiers": [{"name": "a", "min_score": 0, "rebate_bp": 1}, {"name": "b", "min_score": 0, "rebate_bp": 2}]},
     "tiers_not_increasing"),
    ({"weights": {"attainment": 50, "rating": 50, "training": 50}}, "weights_not_100"),
    ({"base": "sell_through"}, "base_unsupported"),
    ({"base": "x"}, None), ({"period": "2024-13"}, None), ({"tiers": []}, None),
    ({"tiers": [{"name": "a", "min_score": 0, "rebate_bp": 10001}]}, None),
    ({"weights": {"attainment": "50", "rating": 50, "training": 0}}, None),
    ({"extra": 1}, None),
])
def test_bad_schemes_are_a_422_and_change_nothing(client, admin, demo, change, code):
    payload = {"period": P1, **SCHEME} | change
    assert_error(client.put("/api/hq/v1/assessment-scheme", json=payload, headers=admin), 422, code)
    assert_error(client.get(f"/api/hq/v1/assessment-scheme?period={P1}", headers=admin), 404, "scheme_not_found")


def test_the_demo_has_schemes_for_last_and_this_month_and_last_month_closed(client, admin, demo):
    from app.demo.targets import periods

    this, last = periods()
    closed = client.get(f"/api/hq/v1/assessments?period={last}", headers=admin).get_json()
    assert closed["close"]["version"] == 1 and len(closed["items"]) == 7
    assert {i["partner_code"] for i in closed["items"]} == {"A1", "A2", "D1", "D2", "D3", "D4", "D5"}
    assert closed["rebate_fen"] == sum(_ledger(last).values())
    assert client.get(f"/api/hq/v1/assessment-scheme?period={this}", headers=admin).status_code == 200
    assert client.get(f"/api/hq/v1/assessments?period={this}", headers=admin).get_json()["close"] is None
