"""Fixtures for the gateway tests: the real gateways over HTTP against the fake WeChat, no database.

One fake server and one notification receiver run for the whole session; each test starts from a reset fake.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis import Redis, RedisError
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.integrations.fake_wechat import FakeWeChatHandle, start_fake_wechat_in_thread
from app.integrations.wechat import WeChatGateway
from app.integrations.wechatpay import WeChatPayGateway, generate_pay_keys

APPID, SECRET = "wxint00000000001", "integration-secret"
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def pay_keys() -> dict[str, str]:
    return generate_pay_keys()


@pytest.fixture(scope="session")
def fake_server(pay_keys) -> Iterator[FakeWeChatHandle]:
    handle = start_fake_wechat_in_thread(appid=APPID, secret=SECRET, pay_keys=pay_keys)
    yield handle
    handle.stop()


@pytest.fixture()
def fake(fake_server) -> Iterator[FakeWeChatHandle]:
    """The fake, reset before and after the test (after: wakes handlers still sleeping in a timeout fault)."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@dataclass
class Receiver:
    """A merchant notify_url: records every POST and answers `status`."""

    base_url: str = ""
    status: int = 204
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/notify") -> str:
        return self.base_url + path

    def reset(self) -> None:
        self.status = 204
        self.received.clear()
        self.arrived.clear()


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()

    @Request.application
    def app(request: Request) -> Response:
        receiver.received.append({"path": request.path, "headers": dict(request.headers),
                                  "body": request.get_data()})
        receiver.arrived.set()
        return Response(status=receiver.status)

    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.base_url = f"http://127.0.0.1:{server.server_port}"
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def receiver(receiver_server) -> Receiver:
    receiver_server.reset()
    return receiver_server


@pytest.fixture()
def make_wechat(fake) -> Iterator[Callable[..., WeChatGateway]]:
    """Build WeChat gateways against the fake (closed after the test)."""
    made: list[WeChatGateway] = []

    def make(**kwargs: Any) -> WeChatGateway:
        kwargs.setdefault("timeout", 2.0)
        gateway = WeChatGateway(kwargs.pop("appid", APPID), kwargs.pop("secret", SECRET),
                                kwargs.pop("api_base", fake.base_url), **kwargs)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture()
def wechat(make_wechat) -> WeChatGateway:
    return make_wechat()


@pytest.fixture()
def make_pay(fake, pay_keys, receiver) -> Callable[..., WeChatPayGateway]:
    """Build WeChat Pay gateways against the fake, notifying `receiver`; keyword arguments override."""

    def make(**overrides: Any) -> WeChatPayGateway:
        params: dict[str, Any] = {
            "mchid": pay_keys["mchid"], "appid": APPID, "private_key_pem": pay_keys["merchant_private_key"],
            "cert_serial_no": pay_keys["merchant_cert_serial_no"], "apiv3_key": pay_keys["apiv3_key"],
            "public_key_pem": pay_keys["platform_public_key"], "public_key_id": pay_keys["public_key_id"],
            "notify_url": receiver.url(), "api_base": fake.base_url, "timeout": 2.0,
        }
        params.update(overrides)
        return WeChatPayGateway(**params)

    return make


@pytest.fixture()
def pay(make_pay) -> WeChatPayGateway:
    return make_pay()


@pytest.fixture()
def redis_store() -> Iterator[tuple[Redis, str]]:
    """A Redis client on db 15 and a key prefix of our own, cleaned up after; skips if Redis is down."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        client.close()
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); the shared-token test needs it")
    prefix = f"test-wechat-{uuid.uuid4().hex}"
    yield client, prefix
    keys = client.keys(prefix + "*")
    if keys:
        client.delete(*keys)
    client.close()
