"""The demo seeded once and restored for each test that asks for it, instead of seeded again every time.

Seeding the demo runs its use cases (about a second; more on PostgreSQL), and most tests start from it. The first
test to ask for a seed runs it and keeps what it left: every table's rows, the ids' counters, and what the fake
WeChat remembers. Each later test gets exactly that back (a fraction of the time): the tables emptied and refilled
with the same rows, the counters set where the seed left them, the fake's memory restored.

A kept seed is used only while it is recent (`MAX_AGE`) and from the same business day, so what a test sees is what
a seed at that moment would have written, give or take the minute: the demo's history is relative to "now". Where
a restore cannot be done (PostgreSQL without the right to skip foreign-key checks while refilling), the seed runs
again, as before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.core import partitions
from app.core.clock import now_utc, today_business
from app.extensions import db
from tests.helpers import clear_tables

MAX_AGE = timedelta(seconds=90)
# What the fake WeChat remembers that a seed may have changed (its settings and faults are reset for every test).
_FAKE_FIELDS = ("tokens", "stable_token", "classic_token", "codes", "phone_codes", "used_codes", "not_subscribed",
                "messages", "orders", "refunds", "notifications", "stats")


@dataclass
class _Kept:
    taken_at: datetime
    day: date
    rows: dict[str, list[dict[str, Any]]]
    # Tables the models do not declare (PostgreSQL: the unique keys of the partitioned scan_events, which its
    # trigger fills; the restore switches triggers off, so they are refilled here).
    side: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counters: list[tuple[str, int | None, bool]] = field(default_factory=list)
    fake: dict[str, Any] = field(default_factory=dict)


_kept: dict[tuple[str, str], _Kept] = {}
_restore_refused: set[str] = set()


def seeded(key: str, seed: Callable[[], None], fake_wechat) -> None:
    """Leave the database (and the fake WeChat) as `seed()` leaves an empty one."""
    url = str(db.engine.url)
    kept = _kept.get((key, url))
    if kept is not None and _usable(kept) and url not in _restore_refused:
        if _restore(kept, fake_wechat):
            return
        _restore_refused.add(url)
    clear_tables()
    seed()
    db.session.remove()
    _kept[(key, url)] = _take(fake_wechat)


def forget() -> None:
    """Drop every kept seed (a test that changed what seeding writes, e.g. a setting, calls this after)."""
    _kept.clear()


def _usable(kept: _Kept) -> bool:
    return now_utc() - kept.taken_at <= MAX_AGE and today_business() == kept.day


def _take(fake_wechat) -> _Kept:
    with db.engine.connect() as conn:
        rows = {t.name: [dict(r._mapping) for r in conn.execute(sa.select(t))] for t in db.metadata.sorted_tables}
        counters: list[tuple[str, int | None, bool]] = []
        side: dict[str, list[dict[str, Any]]] = {}
        if conn.dialect.name == "postgresql":
            side = {name: [dict(r._mapping) for r in conn.execute(sa.text(f'SELECT * FROM "{name}"'))]
                    for name in partitions.side_tables(conn)}
            counters = [(f'"{s}"."{n}"', v, v is not None) for s, n, v in conn.execute(sa.text(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()"))]
        elif conn.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
            counters = [(n, v, True) for n, v in conn.execute(sa.text("SELECT name, seq FROM sqlite_sequence"))]
    state = fake_wechat.state
    with state.lock:
        fake = {name: copy.deepcopy(getattr(state, name)) for name in _FAKE_FIELDS}
    return _Kept(now_utc(), today_business(), rows, side, counters, fake)


def _restore(kept: _Kept, fake_wechat) -> bool:
    clear_tables()
    try:
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Rows go back table by table; a table that refers to itself (a case's units) would trip its own
                # foreign key half-way. The rows are the ones the seed wrote, which held every key.
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in db.metadata.sorted_tables:
                rows = kept.rows[table.name]
                if rows:
                    conn.execute(table.insert(), rows)
            for name, side_rows in kept.side.items():
                if side_rows:
                    conn.execute(sa.Table(name, sa.MetaData(), autoload_with=conn).insert(), side_rows)
            if conn.dialect.name == "postgresql":
                for name, value, called in kept.counters:
                    conn.execute(sa.text("SELECT setval(:s, :v, :c)"),
                                 {"s": name, "v": value if value is not None else 1, "c": called})
            else:
                for name, value, _ in kept.counters:
                    conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :v)"),
                                 {"n": name, "v": value})
    except sa.exc.DBAPIError:
        db.session.remove()
        return False
    state = fake_wechat.state
    with state.lock:
        for name, value in kept.fake.items():
            setattr(state, name, copy.deepcopy(value))
    return True
