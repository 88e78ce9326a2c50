#!/usr/bin/env python
"""Where a single sell's time goes: sequential sells through the Flask test client on PostgreSQL, the mean wall
and CPU time per sell in Python and in PostgreSQL, and optionally a pyinstrument profile.

Usage: .venv/bin/python scripts/bench/profile_sell.py [sells] [--profile]
Uses its own database (BENCH_DB, default bench_codes), made afresh. BENCH_WHAT_IF="<sql>" runs that SQL after the
set-up (say, dropping an index) to measure a schema change before proposing it. A sell is one call of the SQL
function `scan_sell_one` (app/scans/sql), so PostgreSQL's share is that function's.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

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

    for i in range(50):  # warm-up: caches, connections, prepared statements
        assert sell(n + i)["status"] == "accepted"
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    db_pids = _db_pids(url)
    wall, cpu, db_cpu = time.perf_counter(), time.process_time(), _cpu_seconds(db_pids)
    for i in range(n):
        sell(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db_cpu = _cpu_seconds(db_pids) - db_cpu
    if profiler:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    done = n
    print(f"{done} sequential sells, per sell: {wall / done * 1000:.2f} ms wall, {cpu / done * 1000:.2f} ms CPU in "
          f"Python, {db_cpu / done * 1000:.2f} ms CPU in PostgreSQL")


if __name__ == "__main__":
    main()
