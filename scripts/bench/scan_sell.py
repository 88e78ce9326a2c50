#!/usr/bin/env python
"""Benchmark: single sells over HTTP (gunicorn on PostgreSQL) against yardsticks served by the same server in
the same run. Target: sell requests/s >= 0.35 x a bare Flask JSON endpoint's; p99 <= 50 ms at 16 connections.

Usage: .venv/bin/python scripts/bench/scan_sell.py [--seconds 6] [--rounds 3] [--connections 16] [--stores 10]
       [--workers 2] [--threads 4] [--split-cpus]

Three endpoints, measured in turn, in `rounds` rounds (the order rotates each round), each phase `seconds` long:
- bare: a bare Flask JSON endpoint (its own tiny Flask app, mounted beside ours);
- ref: a plain Flask-SQLAlchemy write in our app (lock one stock row, insert one row, commit);
- sell: POST /api/mp/v1/scans, each request a fresh unit sold by its store's owner, spread over `stores` stores.
The machine is shared and noisy, so every ratio is taken within one round and the report gives the median of
the rounds (and each round). Also reported: the CPU the app server and PostgreSQL spent per request (from /proc),
steadier than requests/s. Needs wrk (apt-get install -y wrk). Uses its own database (BENCH_DB, default
bench_codes), made afresh. BENCH_PROFILE=<folder> records the workers with py-spy during the first sell phase;
BENCH_SERVER_LOG=<file> keeps gunicorn's log; BENCH_WHAT_IF="<sql>" runs that SQL after the set-up (say, dropping
an index), to measure a schema change before proposing it.

--split-cpus gives PostgreSQL the last CPU to itself and the app server and wrk the others (Linux CPU
affinity, as root), the shape of the deployment, where the database has its own machine. Without it, all three
share every CPU, and on a 2-CPU machine the database takes CPU the app server would otherwise have.
"""

import argparse
import os
import re
import statistics
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from common import ROOT, fresh_database, make_app, setup_demo, stock_codes, store_owner_tokens

HERE = Path(__file__).resolve().parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
PROFILE = os.environ.get("BENCH_PROFILE")


def wrk(url: str, seconds: int, connections: int, env: dict, script: str) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p99_ms": p99_ms, "non2xx": int(non2xx.group(1)) if non2xx else 0, "requests": requests}


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
    """The PostgreSQL processes serving the benchmark database (client backends, autovacuum)."""
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
    result["app_cpu_ms"] = (_cpu_seconds(app_pids) - app0) / result["requests"] * 1000
    result["db_cpu_ms"] = (_cpu_seconds(db_pids) - db0) / result["requests"] * 1000
    return result


def _py_spy(pid: int, seconds: int) -> subprocess.Popen:
    out = Path(PROFILE) / f"sell-{pid}.txt"
    # --gil: only the thread holding the GIL, so the profile shows where the CPU goes, not who waits.
    cmd = [str(ROOT / ".venv/bin/py-spy"), "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "--gil",
           "-f", "raw", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _postgres_pids(url: str) -> list[int]:
    """The PostgreSQL server's processes: the postmaster (from its pid file) and everything it started."""
    name = url.rsplit("/", 1)[1]
    data_dir = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-Atc", "SHOW data_directory"],
                              capture_output=True, text=True, check=True).stdout.strip()
    postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return [postmaster, *children]


def _split_cpus(url: str):
    """PostgreSQL on the last CPU, this process (and so gunicorn and wrk) on the others; returns the undo."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--split-cpus needs at least 2 CPUs")
    db_cpu, app_cpus = {cpus[-1]}, set(cpus[:-1])
    pids = _postgres_pids(url)
    before = {pid: os.sched_getaffinity(pid) for pid in pids}
    for pid in pids:  # backends started later inherit the postmaster's
        os.sched_setaffinity(pid, db_cpu)
    os.sched_setaffinity(0, app_cpus)
    print(f"PostgreSQL on CPU {cpus[-1]}; app server and wrk on CPU {', '.join(map(str, sorted(app_cpus)))}")

    def undo() -> None:
        for pid in _postgres_pids(url):
            try:
                os.sched_setaffinity(pid, before.get(pid, set(cpus)))
            except OSError:
                pass
        os.sched_setaffinity(0, set(cpus))

    return undo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--stores", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4")))
    ap.add_argument("--split-cpus", action="store_true", help="PostgreSQL on a CPU of its own (see above)")
    args = ap.parse_args()

    url = fresh_database()
    app = make_app(url)
    setup_demo(app)
    stores = [f"S{i}" for i in range(1, args.stores + 1)]
    tokens = store_owner_tokens(app, stores)
    # Enough fresh codes for every sell phase at up to 5,000 sells/s.
    per_store = max(5000 * args.seconds * args.rounds // args.stores, 2000)
    lines = {code: [f"{tokens[code]} {s}" for s in stock_codes(app, code, per_store)[0]] for code in stores}
    serials_file = HERE / ".serials.txt"
    # Interleave the stores so consecutive requests hit different stores.
    serials_file.write_text("\n".join(lines[code][i] for i in range(per_store) for code in stores))
    with app.app_context():
        from app.extensions import db

        db.session.execute(db.text("CREATE TABLE bench_ref_rows (id bigserial PRIMARY KEY, level_id bigint,"
                                   " note varchar(64))"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    if os.environ.get("BENCH_WHAT_IF"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", url.rsplit("/", 1)[1], "-c",
                        os.environ["BENCH_WHAT_IF"]], check=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", url.rsplit("/", 1)[1], "-qc", "VACUUM ANALYZE"],
                   check=True)  # the set-up's bulk writes are not left for autovacuum to do during the run
    restore = _split_cpus(url) if args.split_cpus else None
    env = {**os.environ, "DATABASE_URL": url, "JOBS_MODE": "inline", "RATELIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING"}
    server_log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w")  # noqa: SIM115 (the server's lifetime)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{PORT}", "--workers", str(args.workers),
         "--worker-class", "gthread", "--threads", str(args.threads), "--chdir", str(HERE), "bench_wsgi:app"],
        env=env, cwd=str(HERE), stdout=subprocess.DEVNULL, stderr=server_log)
    endpoints = {
        "bare": (f"http://127.0.0.1:{PORT}/bench/bare/", "bare.lua"),
        "ref": (f"http://127.0.0.1:{PORT}/bench/ref/", "bare.lua"),
        "sell": (f"http://127.0.0.1:{PORT}/api/mp/v1/scans", "sell.lua"),
    }
    results: dict[str, list[dict]] = {name: [] for name in endpoints}
    offset = 0
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        base_env = {"SERIALS_FILE": str(serials_file), "WRK_THREADS": "2", "SCANNED_AT": datetime.now(UTC).isoformat()}
        for name, (target, script) in endpoints.items():  # warm-up: every endpoint, every worker
            wrk(target, 2, args.connections, {**base_env, "OFFSET": str(offset), "PHASE": f"warm-{name}"},
                str(HERE / script))
            offset += 20_000 if name == "sell" else 0
        order = list(endpoints)
        for r in range(args.rounds):
            for name in order[r % 3:] + order[:r % 3]:
                target, script = endpoints[name]
                phase_env = {**base_env, "OFFSET": str(offset), "PHASE": f"{r}-{name}"}
                spies = ([_py_spy(pid, args.seconds) for pid in _server_pids(server.pid)[1:]]
                         if PROFILE and name == "sell" and r == 0 else [])
                result = measured(lambda t=target, s=script, e=phase_env: wrk(
                    t, args.seconds, args.connections, e, str(HERE / s)), server.pid, url)
                for spy in spies:
                    spy.wait(30)
                results[name].append(result)
                if name == "sell":
                    offset += result["requests"] + 2000
    finally:
        server.terminate()
        server.wait(10)
        server_log.close()
        serials_file.unlink(missing_ok=True)
        if restore:
            restore()
    report(results, args)
    app_ctx = make_app(url)
    with app_ctx.app_context():
        from app.inventory.services import verify_ledger

        print("ledger check:", "ok" if not verify_ledger() else "MISMATCH")


def report(results: dict[str, list[dict]], args) -> None:
    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    placement = "PostgreSQL on a CPU of its own" if args.split_cpus else "all processes on all CPUs"
    print(f"gunicorn {args.workers} workers x {args.threads} threads, wrk 2 threads x {args.connections} "
          f"connections, {args.rounds} rounds x {args.seconds} s per endpoint, sells over {args.stores} stores; "
          f"{placement}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for name in results:
        rounds = " ".join(f"{r['rps']:,.0f} [{r['app_cpu_ms']:.2f}+{r['db_cpu_ms']:.2f}]" for r in results[name])
        print(f"{name:>5}: {med(name, 'rps'):8,.0f} req/s (rounds: {rounds}), p99 {med(name, 'p99_ms'):.1f} ms "
              f"(worst {max(r['p99_ms'] for r in results[name]):.1f}), app CPU {med(name, 'app_cpu_ms'):.2f} ms, "
              f"database CPU {med(name, 'db_cpu_ms'):.2f} ms per request, non-2xx "
              f"{sum(r['non2xx'] for r in results[name])}")
    best_bare = max(r["rps"] for r in results["bare"])
    for name in ("ref", "sell"):
        ratios = [s["rps"] / b["rps"] for s, b in zip(results[name], results["bare"], strict=True)]
        # A round whose bare phase met one of the machine's slow spells (its CPU per request jumps) would flatter
        # the ratio, so the figure to quote divides the median by the best bare round.
        print(f"{name}/bare ratio: {med(name, 'rps') / best_bare:.3f} (median {name} / best bare); per round "
              + " ".join(f"{x:.3f}" for x in ratios))
    print(f"target: sell/bare >= 0.35; sell p99 <= 50 ms at {args.connections} connections")


if __name__ == "__main__":
    main()
