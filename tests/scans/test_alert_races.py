"""On PostgreSQL with real threads: two people moving one alert at once (one wins, the other is told why), and
one phone's simultaneous reloads of a unit counted once."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from app.accounts.models import User
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import AppError
from app.extensions import db
from app.scans import alerts as alert_services
from app.scans.models import DiversionAlert, DiversionAlertEvent
from app.verification.services import verify
from tests.scans.helpers import codes_in

N = 6


def _admin() -> Principal:
    uid = db.session.scalar(sa.select(User.id).where(User.username == "admin"))
    return Principal(user_id=uid, kind="hq", bindings=(Binding(role="hq_admin"),))


def _run(app, work) -> list[str]:
    barrier = threading.Barrier(N)
    results: list[str] = []

    def one(i):
        with app.app_context():
            barrier.wait()
            try:
                results.append(work(i))
            except AppError as exc:
                results.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_one_of_many_simultaneous_status_changes_wins(postgres, demo):
    app = postgres
    code = codes_in("S1")[0]
    with transaction():
        alert = DiversionAlert(code_id=code.id, sku_id=code.sku_id, source="sell", policy="alert")
        db.session.add(alert)
    alert_id = alert.id
    db.session.remove()
    results = _run(app, lambda i: alert_services.change_status(
        _admin(), alert_id, status="investigating", note=f"第 {i} 位").status)
    won = [r for r in results if r == "investigating"]
    assert len(won) == 1 and results.count("alert_transition_refused") == N - 1, results
    db.session.remove()
    events = db.session.scalars(sa.select(DiversionAlertEvent).where(DiversionAlertEvent.alert_id == alert_id)).all()
    assert len(events) == 1 and events[0].to_status == won[0] == db.session.get(DiversionAlert, alert_id).status


def test_a_phones_simultaneous_reloads_count_once(postgres, demo):
    app = postgres
    serial = codes_in("S1")[0].serial
    counts = _run(app, lambda i: str(verify(serial, viewer="a" * 64)["times_verified"]))
    assert counts == ["1"] * N, counts
    others = _run(app, lambda i: str(verify(serial, viewer=f"{i:064d}")["times_verified"]))
    assert sorted(others) == [str(n) for n in range(2, N + 2)], others
