"""Two partners register the same shop at the same instant: exactly one wins (the unique index on the held
identity keys decides, not a read), and the loser is told who won. Real threads on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

import sqlalchemy as sa

from app.channel.registration_models import Registration, RegistrationConflict, RegistrationIdentity
from app.core.clock import BUSINESS_TZ
from app.extensions import db
from tests.registrations.helpers import REGISTRATIONS, new_shop

ROUNDS = 12

# Where nobody holds the territory exclusively, so any of the partners may bring the shop in.
NINGBO = "330203"


def _race(app, bodies_and_headers) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(bodies_and_headers))
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def run(body, headers):
        client = app.test_client()
        barrier.wait()
        resp = client.post(REGISTRATIONS, json=body, headers=headers)
        with lock:
            results.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=run, args=pair) for pair in bodies_and_headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_partners_same_phone_one_winner(postgres, world):
    app = postgres
    names = {world["partners"]["D1"]: "杭州西湖分销", world["partners"]["D2"]: "深圳南山分销"}
    for _ in range(ROUNDS):
        phone = f"137{uuid.uuid4().int % 10**8:08d}"
        results = _race(app, [(new_shop(phone=phone, region_code=NINGBO), world["d1"]),
                              (new_shop(phone=phone, region_code=NINGBO), world["d2"])])
        statuses = sorted(status for status, _ in results)
        assert statuses == [201, 409], results
        winner = next(body for status, body in results if status == 201)
        loser = next(body for status, body in results if status == 409)["error"]
        assert loser["code"] == "registration_conflict"
        assert loser["details"]["held_by"] == names[winner["partner_id"]]
        until = datetime.fromisoformat(winner["protected_until"]).astimezone(BUSINESS_TZ).date().isoformat()
        assert loser["details"]["until"] == until
        with app.app_context():
            held = db.session.scalars(sa.select(RegistrationIdentity.registration_id).where(
                RegistrationIdentity.kind == "phone", RegistrationIdentity.value == phone)).all()
            assert held == [winner["id"]]
            assert db.session.scalar(sa.select(sa.func.count(Registration.id)).where(
                Registration.phone == phone)) == 1
            refused = db.session.scalars(sa.select(RegistrationConflict).where(
                RegistrationConflict.phone == phone)).all()
            assert [(c.holder_partner_id, c.registration_id) for c in refused] == [
                (winner["partner_id"], winner["id"])]


def test_three_partners_same_licence_one_winner(postgres, world):
    app = postgres
    results = _race(app, [(new_shop(licence_no="91310000607216596U", region_code=NINGBO), world[who])
                          for who in ("d1", "d2", "a1")])
    assert sorted(status for status, _ in results) == [201, 409, 409], results
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(RegistrationIdentity.id)).where(
            RegistrationIdentity.kind == "licence")) == 1


def test_one_partner_twice_at_once(postgres, world):
    """The same staff's phone sends one registration twice (same request_id) while a colleague's sends the same
    shop (another request_id): one registration, the repeat answers it, the other is `already_registered`."""
    app = postgres
    body = new_shop()
    results = _race(app, [(body, world["d1"]), (body, world["d1"]), (new_shop(phone=body["phone"]), world["d1"])])
    created = [b for s, b in results if s == 201]
    refused = [b["error"]["code"] for s, b in results if s == 409]
    assert len(created) + len(refused) == 3, results
    assert {b["id"] for b in created} and len({b["id"] for b in created}) == 1, results
    assert set(refused) <= {"already_registered"}, results
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(RegistrationConflict.id))) == 0
