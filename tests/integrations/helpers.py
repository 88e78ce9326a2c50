"""Small helpers for talking to the fake's control API."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from app.integrations.fake_wechat import FakeWeChatHandle


def control(fake: FakeWeChatHandle, path: str, payload: dict[str, Any] | None = None) -> Any:
    """POST to the fake's control API and return its JSON."""
    resp = requests.post(fake.url(path), json=payload or {}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def calls(fake: FakeWeChatHandle, path: str) -> int:
    """How many requests the fake has seen on `path` since the last reset."""
    return requests.get(fake.url("/_fake/stats"), timeout=5).json().get(path, 0)


def get_json(fake: FakeWeChatHandle, path: str) -> Any:
    """GET from the fake's control API and return its JSON."""
    return requests.get(fake.url(path), timeout=5).json()


def new_order_no() -> str:
    """A fresh out_trade_no / out_refund_no."""
    return "T" + uuid.uuid4().hex[:20]
