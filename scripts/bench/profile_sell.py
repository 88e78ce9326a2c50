#!/usr/bin/env python
"""Where a single sell's time goes: sequential sells through the Flask test client on PostgreSQL, with the
statements of one sell listed, the mean wall and CPU time per sell, and optionally a pyinstrument profile.

Usage: .venv/bin/python scripts/bench/profile_sell.py [sells] [--profile]
Uses its own database (BENCH_DB, default bench_codes), made afresh. BENCH_WHAT_IF="<sql>" runs that SQL after the
set-up (say, dropping an index) to measure a schema change before proposing it. The hot path's own statements
run through the driver (`app.scans.services._pg_row`), so SQLAlchemy's listing below shows only the others.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from common import fresh_database, make_app, setup_demo, stock_codes, store_owner_tokens
from scan_sell import _cpu_seconds, _db_pids


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 500
    profile = "--profile" in sys.argv
    url = fresh_database()
    app = make_app(url)
    setup_demo(app)
    token = store_owner_tokens(app, ["S1"])["S1"]
    serials, _ = stock_codes(app, "S1", n + 50)
    if os.environ.get("BENCH_WHAT_IF"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", url.rsplit("/", 1)[1], "-c",
                        os.environ["BENCH_WHAT_IF"]], check=True)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    at = datetime.now(UTC).isoformat()

    def sell(i: int) -> dict:
        r = client.post("/api/mp/v1/scans", headers=headers,
                        json={"request_id": f"p{i}", "code": serials[i], "action": "sell", "scanned_at": at})
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    for i in range(50):  # warm-up: caches, pool
        sell(n + i)
    statements: list[str] = []
    from app.extensions import db

    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    timings: dict[str, list[float]] = {}
    started: list[float] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        started.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        timings.setdefault(statement, []).append(time.perf_counter() - started.pop())

    sa.event.listen(engine, "before_cursor_execute", record)
    answer = sell(0)
    sa.event.remove(engine, "before_cursor_execute", record)
    assert answer["status"] == "accepted", answer
    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    for i in range(1, 201):
        sell(i)
    sa.event.remove(engine, "before_cursor_execute", before)
    sa.event.remove(engine, "after_cursor_execute", after)
    print(f"statements in one sell: {len(statements)} (plus BEGIN/COMMIT from the driver); "
          "mean time in the driver over 200 sells:")
    for s in statements:
        spent = timings.get(s, [0])
        print(f"  {sum(spent) / len(spent) * 1000:6.3f} ms", " ".join(s.split())[:110])
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    db_pids = _db_pids(url)
    wall, cpu, db_cpu = time.perf_counter(), time.process_time(), _cpu_seconds(db_pids)
    for i in range(201, n):
        sell(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db_cpu = _cpu_seconds(db_pids) - db_cpu
    if profiler:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    done = n - 201
    print(f"{done} sequential sells, per sell: {wall / done * 1000:.2f} ms wall, {cpu / done * 1000:.2f} ms CPU in "
          f"Python, {db_cpu / done * 1000:.2f} ms CPU in PostgreSQL")


if __name__ == "__main__":
    main()
