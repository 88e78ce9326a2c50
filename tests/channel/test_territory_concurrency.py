"""Overlapping exclusive assignments made at the same instant by different HQ users, on PostgreSQL with real
threads: exactly one is written, every other is refused with 409 `territory_taken` naming the winner."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN
from app.accounts.services import create_hq_user
from app.channel import territories
from app.channel.models import Partner, Territory
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import Conflict
from app.extensions import db

NAMES = {"D1": "杭州西湖分销", "D2": "深圳南山分销", "D3": "宁波甬城分销", "D4": "广州天河分销", "D5": "成都蓉城分销"}


def _race(app, attempts: list[tuple[Principal, int, str]]) -> list:
    """Run each (principal, partner, region) exclusive assignment in its own thread, all released at once."""
    barrier = threading.Barrier(len(attempts))
    results: list = [None] * len(attempts)

    def work(i: int) -> None:
        principal, partner_id, region = attempts[i]
        with app.app_context():
            try:
                barrier.wait()
                results[i] = territories.assign_territory(principal, partner_id=partner_id, region_code=region,
                                                          kind="exclusive").id
            except Conflict as err:
                results[i] = err
            except Exception as err:  # anything else is a failure, reported below
                results[i] = err
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(attempts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_hq_users_at_once_exactly_one_wins(postgres, demo):
    app = postgres
    with app.app_context():
        with transaction():
            users = [create_hq_user(username=f"race_{i}", password="admin", role=HQ_ADMIN) for i in range(4)]
        principals = [Principal(u.id, "hq", (Binding(HQ_ADMIN),)) for u in users]
        ids = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
        db.session.remove()
    by_id = {v: k for k, v in ids.items()}
    # Each round: regions that overlap pairwise (the same city, or a province, a city and one district inside it;
    # two districts of one city do not overlap each other).
    rounds = [
        [("D5", "510100"), ("D4", "510100")],
        [("D5", "450000"), ("D4", "450100"), ("D3", "450102"), ("D2", "450100")],
        [("D4", "320100"), ("D5", "320100"), ("D3", "320000"), ("D2", "320102")],
        [("D2", "420100"), ("D3", "420100"), ("D4", "420100"), ("D5", "420100")],
    ]
    for n, attempts in enumerate(rounds):
        results = _race(app, [(principals[i], ids[code], region) for i, (code, region) in enumerate(attempts)])
        won = [r for r in results if isinstance(r, int)]
        refused = [r for r in results if isinstance(r, Conflict)]
        assert len(won) == 1 and len(refused) == len(attempts) - 1, (n, results)
        with app.app_context():
            winner = db.session.get(Territory, won[0])
            holder = NAMES[by_id[winner.partner_id]]
            written = db.session.scalar(sa.select(sa.func.count()).select_from(Territory).where(
                Territory.kind == "exclusive", Territory.region_code.in_([r for _, r in attempts])))
            db.session.remove()
        assert written == 1, (n, written)
        for err in refused:
            assert err.code == "territory_taken" and err.status == 409
            assert err.details["held_by"] == holder and err.details["assignment_id"] == won[0]
            assert holder in err.message


def test_the_race_through_the_api(postgres, demo, client):
    """The same through HTTP: two HQ admins post at once; one 201, one 409 naming the holder."""
    from tests.conftest import hq_login

    app = postgres
    with app.app_context():
        with transaction():
            create_hq_user(username="race_api", password="admin", role=HQ_ADMIN)
        ids = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
        db.session.remove()
    headers = [hq_login(client, "admin"), hq_login(client, "race_api")]
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def post(i: int, partner: str) -> None:
        c = app.test_client()
        barrier.wait()
        resp = c.post("/api/hq/v1/territory-assignments", headers=headers[i],
                      json={"partner_id": ids[partner], "region_code": "510100", "kind": "exclusive"})
        answers[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=post, args=(0, "D5")), threading.Thread(target=post, args=(1, "D4"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a[0] for a in answers)
    assert statuses == [201, 409], answers
    won = next(a[1] for a in answers if a[0] == 201)
    lost = next(a[1] for a in answers if a[0] == 409)
    assert lost["error"]["code"] == "territory_taken"
    assert lost["error"]["details"]["held_by"] == won["partner_name"]
    assert won["partner_name"] in lost["error"]["message"]


def test_siblings_inside_a_taken_parent_race_fairly(postgres, demo):
    """Two districts of one city do not overlap each other, but each overlaps the city: racing all three, either
    the city wins alone or both districts win, never a district and the city."""
    app = postgres
    with app.app_context():
        with transaction():
            users = [create_hq_user(username=f"sib_{i}", password="admin", role=HQ_ADMIN) for i in range(3)]
        principals = [Principal(u.id, "hq", (Binding(HQ_ADMIN),)) for u in users]
        ids = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
        db.session.remove()
    for city, a, b in (("450100", "450102", "450103"), ("420100", "420102", "420103"), ("320100", "320102", "320104")):
        results = _race(app, [(principals[0], ids["D2"], a), (principals[1], ids["D3"], b),
                              (principals[2], ids["D4"], city)])
        assert all(isinstance(r, int | Conflict) for r in results), results
        won = [i for i, r in enumerate(results) if isinstance(r, int)]
        assert won in ([0, 1], [2]), (city, results)
