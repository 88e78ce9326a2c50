#!/usr/bin/env python
"""Throughput of the scan path as ratios taken in one run against one gunicorn (the machine is shared and noisy).

Targets: a single sell >= 0.30 x a bare Flask endpoint on the same server (all processes sharing the CPUs); a
batch of 500 sells >= 20 x the single-sell rate of the same run, in codes per second. Then how throughput grows
with gunicorn workers 1, 2, 4, 8 (a table: the server restarted for each, bare and single-sell rates).

Usage: .venv/bin/python scripts/bench/throughput.py [--seconds 10] [--connections 16] [--workers 2] [--threads 4]
       [--stores 10] [--batch-clients 4] [--table 1,2,4,8]

- bare: /bench/bare/, the bare Flask JSON endpoint of bench_wsgi.py (its own tiny Flask app beside ours), by wrk;
- sell: POST /api/mp/v1/scans, a fresh unit per request over `stores` stores, by wrk (sell.lua);
- batch: POST /api/mp/v1/scans/batch, 500 fresh units of one store per request, `batch-clients` Python threads
  sending prepared bodies; codes per second = accepted sells / elapsed.
Each phase is `seconds` long after a 2-s warm-up. Needs wrk (apt-get install -y wrk). Uses its own database
(BENCH_DB, default bench_throughput), made afresh. Exit status 1 when a target is missed.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("BENCH_DB", "bench_throughput")
from common import ROOT, fresh_database, make_app, setup_demo, stock_codes, store_owner_tokens
from scan_sell import wrk

HERE = Path(__file__).resolve().parent
PORT = int(os.environ.get("BENCH_PORT", "8766"))


class Server:
    def __init__(self, url: str, workers: int, threads: int):
        env = {**os.environ, "DATABASE_URL": url, "JOBS_MODE": "inline", "RATELIMIT_ENABLED": "0",
               "LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{PORT}", "--workers", str(workers),
             "--worker-class", "gthread", "--threads", str(threads), "--chdir", str(HERE), "bench_wsgi:app"],
            env=env, cwd=str(HERE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(150):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not come up")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


class Singles:
    """wrk phases over one file of "token serial" lines; every phase starts past the codes already used."""

    def __init__(self, lines: list[str], connections: int):
        self.file = HERE / f".throughput-serials-{os.getpid()}.txt"
        self.file.write_text("\n".join(lines))
        self.connections = connections
        self.offset = 0
        self.phase = 0
        self.at = datetime.now(UTC).isoformat()

    def run(self, name: str, seconds: int) -> dict:
        self.phase += 1
        env = {"SERIALS_FILE": str(self.file), "WRK_THREADS": "2", "OFFSET": str(self.offset),
               "PHASE": f"{os.getpid()}-{self.phase}", "SCANNED_AT": self.at}
        if name == "bare":
            return wrk(f"http://127.0.0.1:{PORT}/bench/bare/", seconds, self.connections, env,
                       str(HERE / "bare.lua"))
        result = wrk(f"http://127.0.0.1:{PORT}/api/mp/v1/scans", seconds, self.connections, env,
                     str(HERE / "sell.lua"))
        self.offset += result["requests"] + 2000
        return result


def batches(bodies: list[tuple[str, bytes]], seconds: float, clients: int) -> dict:
    """Send prepared 500-sell batches from `clients` threads for `seconds`; codes/s of accepted sells."""
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "requests": 0, "bad": 0, "times": []}
    until = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        while time.monotonic() < until:
            with lock:
                if state["next"] >= len(bodies):
                    return
                token, body = bodies[state["next"]]
                state["next"] += 1
            started = time.perf_counter()
            conn.request("POST", "/api/mp/v1/scans/batch", body=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            took = time.perf_counter() - started
            with lock:
                state["requests"] += 1
                state["times"].append(took)
                if resp.status == 200:
                    state["accepted"] += json.loads(data)["accepted"]
                else:
                    state["bad"] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    times = sorted(state["times"]) or [float("nan")]
    return {"codes_per_s": state["accepted"] / elapsed, "requests": state["requests"], "bad": state["bad"],
            "p50_ms": times[len(times) // 2] * 1000, "exhausted": state["next"] >= len(bodies)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--stores", type=int, default=10)
    ap.add_argument("--batch-clients", type=int, default=4)
    ap.add_argument("--table", default="1,2,4,8", help="worker counts for the scaling table")
    args = ap.parse_args()
    table = [int(w) for w in args.table.split(",") if w]

    url = fresh_database()
    app = make_app(url)
    setup_demo(app)
    stores = [f"S{i}" for i in range(1, args.stores + 1)]
    tokens = store_owner_tokens(app, stores)
    # Single sells: enough for 1 + len(table) sell phases (and warm-ups) at up to 800 sells/s.
    per_store = 800 * (args.seconds + 2) * (1 + len(table)) // args.stores + 2000
    single = {code: stock_codes(app, code, per_store)[0] for code in stores}
    lines = [f"{tokens[code]} {single[code][i]}" for i in range(per_store) for code in stores]
    # Batches: up to 15,000 codes/s for the batch phase, in 500s of one store each.
    batch_per_store = -(-15000 * (args.seconds + 2) // args.stores // 500) * 500
    now = datetime.now(UTC).isoformat()
    bodies = []
    for code in stores:
        serials = stock_codes(app, code, batch_per_store)[0]
        for i in range(0, len(serials), 500):
            items = [{"request_id": uuid.uuid4().hex, "code": s, "action": "sell", "scanned_at": now}
                     for s in serials[i:i + 500]]
            bodies.append((tokens[code], json.dumps({"items": items}).encode()))
    bodies = [bodies[(i % args.stores) * (len(bodies) // args.stores) + i // args.stores]
              for i in range(len(bodies))]  # interleave the stores
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", url.rsplit("/", 1)[1], "-qc",
                    "VACUUM ANALYZE"], check=True)
    singles = Singles(lines, args.connections)
    failed = []
    try:
        server = Server(url, args.workers, args.threads)
        try:
            singles.run("bare", 2)
            singles.run("sell", 2)
            batches(bodies[:4], 30, 2)  # warm-up
            bare = singles.run("bare", args.seconds)
            sell = singles.run("sell", args.seconds)
            batch = batches(bodies[4:], args.seconds, args.batch_clients)
        finally:
            server.stop()
        rows = []
        for w in table:
            server = Server(url, w, args.threads)
            try:
                singles.run("bare", 2)
                singles.run("sell", 2)
                rows.append((w, singles.run("bare", args.seconds), singles.run("sell", args.seconds)))
            finally:
                server.stop()
    finally:
        singles.file.unlink(missing_ok=True)

    print(f"one run, gunicorn gthread x {args.threads} threads, wrk 2 threads x {args.connections} connections, "
          f"{args.seconds} s per phase, sells over {args.stores} stores; all processes (gunicorn, PostgreSQL, "
          f"wrk) share the CPUs; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    ratio = sell["rps"] / bare["rps"]
    print(f"{args.workers} workers: bare {bare['rps']:,.0f} req/s (p99 {bare['p99_ms']:.1f} ms); single sell "
          f"{sell['rps']:,.0f} req/s (p99 {sell['p99_ms']:.1f} ms, non-2xx {sell['non2xx']}); "
          f"sell/bare {ratio:.3f} (target >= 0.30)")
    batch_ratio = batch["codes_per_s"] / sell["rps"]
    print(f"batch of 500: {batch['codes_per_s']:,.0f} codes/s ({batch['requests']} batches from "
          f"{args.batch_clients} clients, median {batch['p50_ms']:.0f} ms, non-200 {batch['bad']}"
          f"{', ran out of codes' if batch['exhausted'] else ''}); batch/single {batch_ratio:.1f}x (target >= 20)")
    print("workers | bare req/s | sell req/s | sell/bare | sell p99 ms | sell vs 1 worker")
    base = rows[0][2]["rps"] if rows else 1
    for w, b, s in rows:
        print(f"{w:7d} | {b['rps']:10,.0f} | {s['rps']:10,.0f} | {s['rps'] / b['rps']:9.3f} | "
              f"{s['p99_ms']:11.1f} | {s['rps'] / base:.2f}x")
    if ratio < 0.30:
        failed.append("sell/bare")
    if batch_ratio < 20:
        failed.append("batch/single")
    if sell["non2xx"] or batch["bad"] or any(s["non2xx"] for _, _, s in rows):
        failed.append("non-2xx answers")
    with make_app(url).app_context():
        from app.inventory.services import verify_ledger

        problems = verify_ledger()
        print("ledger check:", "ok" if not problems else "MISMATCH")
        if problems:
            failed.append("ledger")
    print("RESULT:", "PASS" if not failed else "FAIL (" + ", ".join(failed) + ")")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
