"""What the fault scripts share: the server as `scripts/run` starts it, private PostgreSQL and Redis, phones, checks.

Every script starts its own servers on ports 8300-8399 (FAULTS_PORT_BASE moves the range), in temporary folders,
and stops them (by the process ids it started) when it ends, however it ends. `FAULTS_REPO` serves another
checkout of the project (e.g. an older commit, to measure before and after); the default is this one.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("FAULTS_REPO") or HERE.parents[1]).resolve()
PY = ROOT / ".venv" / "bin" / "python"
PORT_BASE = int(os.environ.get("FAULTS_PORT_BASE", "8300"))
SHARED_PG = os.environ.get("FAULTS_SHARED_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
DB_PREFIX = "flt_"
sys.path.insert(0, str(ROOT))  # the app of the checkout under test, for data set-up and checks


def reexec_in_venv() -> None:
    """Run the calling script with the project's .venv python (it needs requests, psycopg and the app)."""
    venv = (HERE.parents[1] / ".venv").resolve()
    if Path(sys.prefix).resolve() != venv and os.environ.get("FAULTS_REEXEC") != "1":
        os.environ["FAULTS_REEXEC"] = "1"
        python = HERE.parents[1] / ".venv" / "bin" / "python"
        os.execv(str(python), [str(python), *sys.argv])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(n: int, offset: int = 0) -> list[int]:
    """n free ports in our range (never outside it)."""
    out = []
    for port in range(PORT_BASE + offset, PORT_BASE + 100):
        if port_free(port):
            out.append(port)
            if len(out) == n:
                return out
    raise SystemExit(f"no {n} free ports in {PORT_BASE}-{PORT_BASE + 99}")


def _children(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _stop_group(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process group we started (its leader is `proc`), then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)


# ---- private servers ------------------------------------------------------------------------------------------


class PrivatePostgres:
    """A throw-away PostgreSQL cluster of our own (initdb in a temp folder, trust auth, run as user postgres)."""

    def __init__(self, port: int):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not bins:
            raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(bins[-1])
        self.version = self.bin.parent.name
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="flt-pg-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, cwd=self.dir)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def createdb(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server of our own on a port in our range, no persistence."""

    def __init__(self, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def fresh_shared_db(name: str) -> str:
    """A database of ours (flt_*) on the shared PostgreSQL, dropped and made afresh."""
    assert name.startswith(DB_PREFIX)
    host = SHARED_PG.split("@", 1)[1].split(":")[0]
    port = SHARED_PG.rsplit(":", 1)[1]
    for cmd in (["dropdb", "-h", host, "-p", port, "-U", "postgres", "--if-exists", "--force", name],
                ["createdb", "-h", host, "-p", port, "-U", "postgres", name]):
        subprocess.run(cmd, check=True, capture_output=True)
    return f"{SHARED_PG}/{name}"


# ---- the server as scripts/run starts it ----------------------------------------------------------------------


class Stack:
    """`scripts/run` (migrate, seed, fake WeChat, gunicorn 2 workers x 4 threads) with our ports and settings."""

    def __init__(self, name: str, database_url: str, *, redis_url: str | None = None,
                 env: dict[str, str] | None = None):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"flt-{name}-"))
        self.port, self.fake_port = pick_ports(2)
        self.database_url = database_url
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1", "PORT": str(self.port), "FAKE_WECHAT_PORT": str(self.fake_port),
            "DATABASE_URL": database_url, "WECHATPAY_DEMO_KEYS": str(self.dir / "wechatpay-demo-keys.json"),
            "DEMO_HISTORY_DAYS": "3", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4",
        }
        self.env.pop("FAULTS_REEXEC", None)
        self.env.pop("JOBS_MODE", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        self.env.update(env or {})
        self.base = f"http://127.0.0.1:{self.port}"
        self.fake = f"http://127.0.0.1:{self.fake_port}"
        self.logfile = self.dir / "server.log"
        self.proc: subprocess.Popen | None = None
        self._app = None
        # The in-process app (data set-up and checks) reads the same settings as the server.
        for key in ("DATABASE_URL", "WECHATPAY_DEMO_KEYS", "REDIS_URL"):
            if key in self.env:
                os.environ[key] = self.env[key]
            else:
                os.environ.pop(key, None)

    def start(self, timeout: float = 300) -> None:
        log(f"starting scripts/run of {ROOT} on :{self.port} (fake WeChat :{self.fake_port}), log {self.logfile}")
        out = self.logfile.open("ab")
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"scripts/run exited ({self.proc.returncode}); see {self.logfile}")
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200 and \
                        requests.get(self.fake + "/_fake/stats", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the server did not come up in {timeout} s; see {self.logfile}")

    def gunicorn_master(self) -> int:
        for pid in _children(self.proc.pid):
            if "gunicorn" in _cmdline(pid):
                return pid
        raise RuntimeError("no gunicorn master under scripts/run")

    def workers(self) -> list[int]:
        return sorted(_children(self.gunicorn_master()))

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
            self.proc = None

    def log_text(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        env = {**self.env, "FLASK_APP": "wsgi.py"}
        return subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    def stock_verify(self) -> tuple[bool, str]:
        done = self.flask("stock", "verify")
        return done.returncode == 0, (done.stdout + done.stderr).strip().splitlines()[-1]

    # -- in-process access to the same database, for set-up and checks --

    def app(self):
        if self._app is None:
            from app import create_app

            cfg: dict[str, Any] = {"SQLALCHEMY_DATABASE_URI": self.database_url.replace(
                "postgresql://", "postgresql+psycopg://", 1), "JOBS_MODE": "inline", "RATELIMIT_ENABLED": False}
            if cfg["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
                # The script's own checks run after the faults: its pooled connections may have died with them.
                cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "pool_size": 2}
            self._app = create_app(cfg)
        return self._app

    def stock_units(self, store_code: str, n: int) -> tuple[int, list[str]]:
        """n fresh unit codes of the first serialized SKU on the store's shelf (booked in with their ledger rows)."""
        import sqlalchemy as sa

        from app.catalog.models import Sku
        from app.channel.models import Store
        from app.codes.models import Code, CodeBatch
        from app.codes.services import generate_batch
        from app.core.tx import transaction
        from app.extensions import db
        from app.inventory.services import move_stock

        with self.app().app_context():
            sku_id = db.session.scalar(sa.select(Sku.id).where(Sku.serialized.is_(True)).order_by(Sku.id))
            store = db.session.scalar(sa.select(Store).where(Store.code == store_code))
            with transaction():
                batch = CodeBatch(sku_id=sku_id, quantity=n, status="pending")
                db.session.add(batch)
            generate_batch(batch.id)
            with transaction():
                db.session.execute(sa.update(Code).where(Code.batch_id == batch.id).values(
                    state="in_store", store_id=store.id, location_id=store.location_id,
                    destination_store_id=store.id, destination_distributor_id=store.distributor_id,
                    destination_region=store.city_code))
                move_stock(location_id=store.location_id, sku_id=sku_id, on_hand=n, kind="receive",
                           reason="fault script")
            serials = list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id,
                                                                            Code.kind == "unit").order_by(Code.id)))
            db.session.remove()
        return sku_id, serials

    def on_hand(self, store_code: str, sku_id: int) -> int:
        import sqlalchemy as sa

        from app.channel.models import Store
        from app.extensions import db
        from app.inventory.services import get_level

        with self.app().app_context():
            loc = db.session.scalar(sa.select(Store.location_id).where(Store.code == store_code))
            value = get_level(location_id=loc, sku_id=sku_id).on_hand
            db.session.remove()
        return value

    def sells_per_serial(self, serials: list[str]) -> tuple[Counter[str], Counter[str]]:
        """(sell events per serial, code state per serial) for these serials."""
        import sqlalchemy as sa

        from app.codes.models import Code, ScanEvent
        from app.extensions import db

        sells: Counter[str] = Counter()
        states: Counter[str] = Counter()
        with self.app().app_context():
            for i in range(0, len(serials), 1000):
                chunk = serials[i:i + 1000]
                for serial, n in db.session.execute(
                        sa.select(Code.serial, sa.func.count(ScanEvent.id))
                        .join(ScanEvent, ScanEvent.code_id == Code.id)
                        .where(Code.serial.in_(chunk), ScanEvent.action == "sell").group_by(Code.serial)):
                    sells[serial] = n
                for serial, state in db.session.execute(sa.select(Code.serial, Code.state)
                                                        .where(Code.serial.in_(chunk))):
                    states[serial] = state
            db.session.remove()
        return sells, states

    def close_app(self) -> None:
        if self._app is not None:
            from app.extensions import db

            with self._app.app_context():
                db.session.remove()
                db.engine.dispose()


# ---- phones ---------------------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Tally:
    """Every HTTP attempt: its status (or the client-side error), when it started and ended, how long it took."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, status: int | str, started: float, ended: float, *, retry_after: str | None = None,
            code: str | None = None) -> None:
        with self.lock:
            self.attempts.append({"kind": kind, "status": status, "started": started, "ended": ended,
                                  "retry_after": retry_after, "code": code})

    def by_status(self, kind: str | None = None) -> Counter:
        return Counter(a["status"] for a in self.attempts if kind is None or a["kind"] == kind)

    def latencies(self, kind: str, since: float = 0, until: float = float("inf"), status: int | None = None):
        return [a["ended"] - a["started"] for a in self.attempts if a["kind"] == kind and since <= a["started"] < until
                and (status is None or a["status"] == status)]


def login_mp(base: str, openid: str = "demo_store_owner") -> dict[str, str]:
    import requests

    resp = requests.post(base + "/api/mp/v1/sessions", json={"code": f"demo:{openid}"}, timeout=30)
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def login_hq(base: str) -> dict[str, str]:
    import requests

    resp = requests.post(base + "/api/hq/v1/sessions", json={"username": "admin", "password": "admin"}, timeout=30)
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def send_until_answered(session, tally: Tally, kind: str, method: str, url: str, *, json_body: Any,
                        headers: dict[str, str], max_attempts: int = 120, timeout: float = 30,
                        give_up_at: float | None = None) -> tuple[int | None, Any]:
    """What a phone does: send, and on no answer, a 5xx or a 429, wait and resend the very same request."""
    import requests

    for _ in range(max_attempts):
        if give_up_at is not None and time.monotonic() > give_up_at:
            break
        started = time.monotonic()
        try:
            resp = session.request(method, url, json=json_body, headers=headers, timeout=(3, timeout))
        except requests.RequestException as exc:
            tally.add(kind, f"no answer ({exc.__class__.__name__})", started, time.monotonic())
            time.sleep(0.3)
            continue
        ended = time.monotonic()
        try:
            data = resp.json()
        except ValueError:
            data = None
        code = (data or {}).get("error", {}).get("code") if isinstance(data, dict) else None
        tally.add(kind, resp.status_code, started, ended, retry_after=resp.headers.get("Retry-After"), code=code)
        if resp.status_code >= 500 or resp.status_code == 429:
            wait = resp.headers.get("Retry-After")
            time.sleep(min(float(wait), 1.0) if wait and wait.isdigit() else 0.3)
            continue
        return resp.status_code, data
    return None, None


def sell_body(serial: str) -> dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "code": serial, "action": "sell", "scanned_at": now_iso()}


def run_threads(targets: Iterable[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    return threads


def join_all(threads: list[threading.Thread], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0))
    return not any(t.is_alive() for t in threads)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def summary_line(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"n={len(values)} p50 {ms(pct(values, 50))}, p90 {ms(pct(values, 90))}, p99 {ms(pct(values, 99))}, "
            f"max {ms(max(values))}, mean {ms(statistics.fmean(values))}")


def fmt_counter(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))) or "none"


class Report:
    """Lines for the final report, and whether every check passed."""

    def __init__(self, title: str):
        self.title = title
        self.lines: list[str] = []
        self.failed: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def check(self, ok: bool, text: str) -> None:
        self.lines.append(f"[{'ok' if ok else 'FAIL'}] {text}")
        if not ok:
            self.failed.append(text)

    def print(self) -> int:
        print()
        print(f"===== {self.title} =====")
        for text in self.lines:
            print(text)
        print(f"RESULT: {'PASS' if not self.failed else 'FAIL (' + str(len(self.failed)) + ' check(s))'}")
        return 0 if not self.failed else 1


def dump_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str))
