#!/usr/bin/env python
"""Benchmark: single sells over HTTP (gunicorn on PostgreSQL) against a bare Flask JSON endpoint, same server,
same run. Target: sell requests/s >= 0.35 x bare requests/s; p99 <= 50 ms at 16 connections.

Usage: .venv/bin/python scripts/bench/scan_sell.py [seconds] [connections] [stores]
`stores` (default 10): sells spread over that many demo stores, each by its own owner; 1 puts every sell on one
store and SKU, so all of them queue on one stock row (the worst case, reported separately).
Needs wrk (apt-get install -y wrk). Uses its own database (BENCH_DB, default bench_codes), made afresh.
gunicorn runs BENCH_WORKERS (2) x BENCH_THREADS (4), as scripts/run does. Besides requests/s and p99 it reports
the CPU the app server and PostgreSQL spent per request (from /proc), steadier than requests/s on a shared
machine; BENCH_PROFILE=<folder> also records the workers with py-spy during the sell phase.
"""

import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from common import ROOT, fresh_database, make_app, setup_demo, stock_codes, store_owner_tokens

HERE = Path(__file__).resolve().parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
# BENCH_PROFILE=<folder>: record each worker with py-spy during the sell phase (collapsed stacks, one file each).
PROFILE = os.environ.get("BENCH_PROFILE")


def _py_spy(pid: int, seconds: int) -> subprocess.Popen:
    out = Path(PROFILE) / f"sell-{pid}.txt"
    # --gil: only the thread holding the GIL, so the profile shows where the CPU goes, not who waits.
    cmd = [str(ROOT / ".venv/bin/py-spy"), "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "--gil",
           "-f", "raw", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wrk(url: str, seconds: int, connections: int, env: dict, script: str | None = None) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": p99_ms, "non2xx": int(non2xx.group(1)) if non2xx else 0, "raw": out,
            "seconds": seconds}


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc; 0 for a process that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _server_pids(server_pid: int) -> list[int]:
    """gunicorn's master and its workers."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    return [server_pid, *(int(p) for p in children.read_text().split())]


def _db_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark database."""
    name = url.rsplit("/", 1)[1]
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-Atc",
                          f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'"],
                         capture_output=True, text=True, check=True).stdout
    return [int(p) for p in out.split()]


def measured(run, server_pid: int, url: str) -> dict:
    """Run one wrk phase and add the CPU that the app server and the database spent per request."""
    app_pids, db_before = _server_pids(server_pid), _db_pids(url)
    app0, db0 = _cpu_seconds(app_pids), _cpu_seconds(db_before)
    result = run()
    db_pids = sorted(set(db_before) | set(_db_pids(url)))
    requests = result["rps"] * result["seconds"]
    result["app_cpu_ms"] = (_cpu_seconds(app_pids) - app0) / requests * 1000
    result["db_cpu_ms"] = (_cpu_seconds(db_pids) - db0) / requests * 1000
    return result


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    n_stores = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    url = fresh_database()
    app = make_app(url)
    setup_demo(app)
    stores = [f"S{i}" for i in range(1, n_stores + 1)]
    tokens = store_owner_tokens(app, stores)
    per_store = max(60_000 // n_stores, 6_000)
    lines = {code: [f"{tokens[code]} {s}" for s in stock_codes(app, code, per_store)[0]] for code in stores}
    # Interleave the stores so consecutive requests hit different stores.
    serials = [lines[code][i] for i in range(per_store) for code in stores]
    serials_file = HERE / ".serials.txt"
    serials_file.write_text("\n".join(serials))
    env = {**os.environ, "DATABASE_URL": url, "JOBS_MODE": "inline", "RATELIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING",
           "DB_POOL_SIZE": "10"}
    workers, threads = os.environ.get("BENCH_WORKERS", "2"), os.environ.get("BENCH_THREADS", "4")
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{PORT}", "--workers", workers,
         "--worker-class", "gthread", "--threads", threads, "--chdir", str(HERE), "bench_wsgi:app"],
        env=env, cwd=str(HERE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        wenv = {"SERIALS_FILE": str(serials_file), "WRK_THREADS": "2",
                "SCANNED_AT": datetime.now(UTC).isoformat()}
        wrk(f"http://127.0.0.1:{PORT}/bench/bare/", 2, connections, wenv,
            str(HERE / "bare.lua"))  # warm-up
        bare = measured(lambda: wrk(f"http://127.0.0.1:{PORT}/bench/bare/", seconds, connections, wenv,
                                    str(HERE / "bare.lua")), server.pid, url)
        spies = [_py_spy(pid, seconds) for pid in _server_pids(server.pid)[1:]] if PROFILE else []
        sell = measured(lambda: wrk(f"http://127.0.0.1:{PORT}/api/mp/v1/scans", seconds, connections, wenv,
                                    str(HERE / "sell.lua")), server.pid, url)
        for spy in spies:
            spy.wait(30)
    finally:
        server.terminate()
        server.wait(10)
        serials_file.unlink(missing_ok=True)
    ratio = sell["rps"] / bare["rps"]
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print(f"bare Flask JSON: {bare['rps']:,.0f} req/s, p99 {bare['p99_ms']:.1f} ms, "
          f"app CPU {bare['app_cpu_ms']:.2f} ms/request")
    print(f"sell (POST /api/mp/v1/scans): {sell['rps']:,.0f} req/s, p99 {sell['p99_ms']:.1f} ms, "
          f"non-2xx {sell['non2xx']}, app CPU {sell['app_cpu_ms']:.2f} ms/sell, "
          f"database CPU {sell['db_cpu_ms']:.2f} ms/sell")
    print(f"ratio {ratio:.2f} (target >= 0.35); p99 target <= 50 ms at {connections} connections; "
          f"sells spread over {n_stores} store(s)")
    app_ctx = make_app(url)
    with app_ctx.app_context():
        from app.inventory.services import verify_ledger

        print("ledger check:", "ok" if not verify_ledger() else "MISMATCH")


if __name__ == "__main__":
    main()
