"""Month partitions of scan_events and stock_movements on PostgreSQL (app/core/partitions.py): the layout, the
unique keys kept exact in their side tables, the scheduled maker of coming months (rows stranded in DEFAULT
moved), pruning of a month-bounded query, and the archive command."""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import datetime

import pytest
import sqlalchemy as sa

from app.core import partitions
from app.core.clock import BUSINESS_TZ
from app.extensions import db


@pytest.fixture()
def pg(postgres, foundation_demo):
    return postgres


def _ids(conn) -> dict:
    return {"sku": conn.exec_driver_sql("SELECT min(id) FROM skus").scalar(),
            "store": conn.exec_driver_sql("SELECT min(id) FROM stores").scalar(),
            "location": conn.exec_driver_sql("SELECT min(id) FROM locations").scalar(),
            "user": conn.exec_driver_sql("SELECT min(id) FROM users").scalar()}


def _event(conn, ids, at: datetime, *, request_id: str | None = None, corrects: int | None = None) -> int:
    return conn.exec_driver_sql(
        "INSERT INTO scan_events (sku_id, quantity, action, biz_step, disposition, store_id, location_id, event_time,"
        " recorded_at, user_id, diverted, request_id, corrects_event_id)"
        " VALUES (%(sku)s, 1, 'sell', 'retail_selling', 'retail_sold', %(store)s, %(location)s, %(at)s, %(at)s,"
        " %(user)s, false, %(rid)s, %(corrects)s) RETURNING id",
        {**ids, "at": at, "rid": request_id, "corrects": corrects}).scalar()


def _at(year: int, month: int, day: int = 15) -> datetime:
    return datetime(year, month, day, 12, tzinfo=BUSINESS_TZ)


def test_both_tables_are_partitioned_by_month_with_the_coming_months_and_a_default(pg):
    with db.engine.connect() as conn:
        year, month = partitions.current_month()
        for table in partitions.PARTITIONED:
            assert partitions.is_partitioned(conn, table)
            names = {p.name for p in partitions.partitions(conn, table)}
            wanted = {partitions.partition_name(table, y, m) for y, m in partitions.months_from((year, month), 4)}
            assert wanted | {f"{table}_default"} <= names
        key = conn.exec_driver_sql("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                                   " WHERE conname = 'pk_scan_events'").scalar()
        assert key == "PRIMARY KEY (id, recorded_at)"


def test_a_request_id_and_an_undo_stay_unique_across_months(pg):
    with db.engine.begin() as conn:
        ids = _ids(conn)
        first = _event(conn, ids, _at(*partitions.current_month()), request_id="r-1")
    # The same request a month later (another partition): still refused by the engine, not by a read.
    with pytest.raises(sa.exc.IntegrityError, match="uq_scan_event_requests_user_id_request_id"), \
            db.engine.begin() as conn:
        _event(conn, ids, _at(*partitions.months_from(partitions.current_month(), 2)[1]), request_id="r-1")
    with db.engine.begin() as conn:
        _event(conn, ids, _at(*partitions.current_month()), corrects=first)
    with pytest.raises(sa.exc.IntegrityError, match="pk_scan_event_corrections"), db.engine.begin() as conn:
        _event(conn, ids, _at(*partitions.months_from(partitions.current_month(), 3)[2]), corrects=first)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scan_events").scalar() == 2


def test_the_job_makes_a_month_and_moves_its_rows_out_of_default(pg):
    far = (2031, 5)
    with db.engine.begin() as conn:
        ids = _ids(conn)
        stranded = _event(conn, ids, _at(*far))
        assert conn.exec_driver_sql("SELECT count(*) FROM scan_events_default").scalar() == 1
    with db.engine.begin() as conn:
        done = partitions.ensure_months(conn, ahead=0, first=far)
    assert done["scan_events_p2031_05"] == "created, moved 1 rows from default"
    assert done["stock_movements_p2031_05"] == "created"
    with db.engine.begin() as conn:
        assert partitions.ensure_months(conn, ahead=0, first=far)["scan_events_p2031_05"] == "exists"
        assert conn.exec_driver_sql("SELECT count(*) FROM scan_events_default").scalar() == 0
        assert conn.exec_driver_sql("SELECT id FROM scan_events_p2031_05").scalars().all() == [stranded]
        assert {p.name for p in partitions.partitions(conn, "scan_events")} >= {"scan_events_default"}
    # The scheduled job itself: idempotent, this month and the next three exist.
    assert set(partitions.create_coming_partitions().values()) == {"exists"}


def _plan(conn, sql: str, params: dict) -> str:
    return "\n".join(conn.exec_driver_sql("EXPLAIN (COSTS OFF) " + sql, params).scalars())


def test_a_month_bounded_query_scans_only_that_months_partition(pg, capsys):
    with db.engine.begin() as conn:
        ids = _ids(conn)
        this = partitions.current_month()
        months = partitions.months_from(this, 3)
        for y, m in months:
            _event(conn, ids, _at(y, m))
        start = datetime(*months[1], 1, tzinfo=BUSINESS_TZ)
        end = datetime(*partitions.next_month(*months[1]), 1, tzinfo=BUSINESS_TZ)
        # The sell-through of a store within a month, and the trace of a code within a time range.
        sell_through = _plan(conn, "SELECT sku_id, sum(quantity) FROM scan_events WHERE store_id = %(s)s"
                                   " AND action = 'sell' AND recorded_at >= %(a)s AND recorded_at < %(b)s"
                                   " GROUP BY sku_id", {"s": ids["store"], "a": start, "b": end})
        trace = _plan(conn, "SELECT * FROM scan_events WHERE code_id = %(c)s AND recorded_at >= %(a)s"
                            " AND recorded_at < %(b)s ORDER BY id", {"c": 1, "a": start, "b": end})
        ledger = _plan(conn, "SELECT sum(delta_on_hand) FROM stock_movements WHERE location_id = %(l)s"
                             " AND created_at >= %(a)s AND created_at < %(b)s", {"l": ids["location"], "a": start,
                                                                                  "b": end})
    with capsys.disabled():
        print("\n--- sell-through, one month ---\n" + sell_through + "\n--- trace by code ---\n" + trace
              + "\n--- ledger, one month ---\n" + ledger)
    wanted = partitions.partition_name("scan_events", *months[1])
    for plan in (sell_through, trace):
        assert set(re.findall(r" on (scan_events_\w+)", plan)) == {wanted}, plan
    assert set(re.findall(r" on (stock_movements_\w+)", ledger)) == {
        partitions.partition_name("stock_movements", *months[1])}, ledger


def test_archive_writes_the_old_month_checks_it_and_drops_it(pg, tmp_path, app):
    with db.engine.begin() as conn:
        ids = _ids(conn)
        partitions.ensure_months(conn, ahead=0, first=(2025, 3))
        old = [_event(conn, ids, _at(2025, 3, d)) for d in (1, 2, 3)]
        kept = _event(conn, ids, _at(*partitions.current_month()))
    result = app.test_cli_runner().invoke(args=["partitions", "archive", "--before", "2025-04", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "scan_events_p2025_03: 3 rows" in result.output
    with gzip.open(tmp_path / "scan_events_p2025_03.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert sorted(int(r["id"]) for r in rows) == old
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('scan_events_p2025_03')").scalar() is None
        assert conn.exec_driver_sql("SELECT id FROM scan_events").scalars().all() == [kept]
    listed = app.test_cli_runner().invoke(args=["partitions", "list"])
    assert "scan_events_default" in listed.output and "scan_events_p2025_03" not in listed.output
    bad = app.test_cli_runner().invoke(args=["partitions", "archive", "--before", "2025-13"])
    assert bad.exit_code != 0


def test_verify_reports_a_reference_to_a_missing_event(pg):
    from app.scans.books import verify_event_references

    with db.engine.begin() as conn:
        ids = _ids(conn)
        first = _event(conn, ids, _at(*partitions.current_month()))
        conn.exec_driver_sql("UPDATE scan_events SET parent_event_id = %(p)s WHERE id = %(i)s",
                             {"p": first + 1000, "i": first})
    assert verify_event_references() == [{"kind": "dangling_event", "table": "scan_events",
                                          "column": "parent_event_id", "event_id": first + 1000, "rows": 1}]


def test_on_sqlite_the_tables_stay_plain_and_the_job_and_commands_do_nothing(app, clean_db):
    with db.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            pytest.skip("SQLite only")
    assert partitions.create_coming_partitions() == {}
    runner = app.test_cli_runner()
    assert "SQLite keeps plain tables" in runner.invoke(args=["partitions", "list"]).output
    assert "SQLite keeps plain tables" in runner.invoke(args=["partitions", "archive", "--before", "2025-01"]).output
