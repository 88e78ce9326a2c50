"""HTTP clients for the concurrency tests: many requests at the same instant, from threads and from processes.

Only the standard library, so a spawned client process starts quickly and holds nothing of the test's state.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Generous: on SQLite every write waits its turn for the database's one writer.
REQUEST_TIMEOUT = 60.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Call:
    """One request: method, path (under the server's base URL), JSON body, headers."""

    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def answer(self) -> str | None:
        """A scan answer's status (accepted, duplicate, refused), or None for any other body."""
        return self.body.get("status") if isinstance(self.body, dict) else None

    @property
    def error_code(self) -> str | None:
        return (self.body.get("error") or {}).get("code") if isinstance(self.body, dict) else None


def call(base_url: str, c: Call, timeout: float = REQUEST_TIMEOUT) -> Reply:
    """Send one request on a connection of its own."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = dict(c.headers)
        payload = None
        if c.body is not None:
            payload = json.dumps(c.body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        conn.request(c.method, c.path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return Reply(resp.status, body, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def _run_threads(base_url: str, calls: list[tuple[int, Call]], go: Any, ready: Any = None) -> list[tuple[int, Any]]:
    """Each call in a thread of its own; all wait for `go`, then fire. Returns (index, Reply or error text)."""
    out: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def one(i: int, c: Call) -> None:
        go.wait(START_TIMEOUT)
        try:
            result: Any = call(base_url, c)
        except Exception as exc:  # reported to the test, which fails on it
            result = f"{type(exc).__name__}: {exc}"
        with lock:
            out.append((i, result))

    threads = [threading.Thread(target=one, args=(i, c), daemon=True) for i, c in calls]
    for t in threads:
        t.start()
    if ready is not None:
        ready.put(("ready", len(threads)))
    for t in threads:
        t.join(START_TIMEOUT + REQUEST_TIMEOUT)
    return out


def _child(base_url: str, calls: list[tuple[int, Call]], go: Any, results: Any) -> None:
    results.put(("done", _run_threads(base_url, calls, go, ready=results)))


def fire(base_url: str, calls: list[Call], *, processes: int = 3) -> list[Reply]:
    """Send every call at the same instant, each from its own thread: a share from threads of this process, the
    rest from `processes` client processes (multiprocessing, spawned). Replies come back in the calls' order.

    A call that failed on the client side (refused connection, timeout) fails the test here.
    """
    groups: list[list[tuple[int, Call]]] = [[] for _ in range(processes + 1)]
    for i, c in enumerate(calls):
        groups[i % len(groups)].append((i, c))
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    children = [ctx.Process(target=_child, args=(base_url, g, go, results), daemon=True) for g in groups[1:] if g]
    replies: dict[int, Any] = {}
    try:
        for p in children:
            p.start()
        ready = done = 0
        while ready < len(children):  # every client process has its threads waiting for the start
            kind, payload = results.get(timeout=START_TIMEOUT)
            ready += kind == "ready"
        local: list[tuple[int, Any]] = []
        local_thread = threading.Thread(target=lambda: local.extend(_run_threads(base_url, groups[0], go)))
        local_thread.start()
        go.set()
        local_thread.join(START_TIMEOUT + REQUEST_TIMEOUT)
        replies.update(local)
        while done < len(children):
            kind, payload = results.get(timeout=START_TIMEOUT + REQUEST_TIMEOUT)
            if kind == "done":
                done += 1
                replies.update(payload)
    finally:
        for p in children:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        results.close()
    missing = [i for i in range(len(calls)) if i not in replies]
    failed = {i: r for i, r in replies.items() if not isinstance(r, Reply)}
    assert not missing and not failed, f"client side failures: missing={missing} failed={failed}"
    return [replies[i] for i in range(len(calls))]

