"""The WeChat gateway over HTTP against the fake: login, tokens, phone numbers, codes, messages, faults."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from flask import Flask

from app.errors import ValidationFailed
from app.integrations import wechat as wechat_module
from app.integrations.wechat import (
    WeChatError,
    WeChatGateway,
    WeChatInvalidCode,
    WeChatNotSubscribed,
    WeChatRateLimited,
    WeChatUnavailable,
    get_wechat,
)
from tests.integrations.conftest import APPID, SECRET
from tests.integrations.helpers import calls, control, get_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---- login ------------------------------------------------------------------------------------------------------


def test_login_with_demo_code_returns_openid_and_session_key(wechat, fake):
    result = wechat.code_to_session("demo:o_alice")

    assert result["openid"] == "o_alice"
    assert len(result["session_key"]) >= 16
    assert "unionid" not in result
    # jscode2session needs no access token, so a login never waits on (or fails for) a token fetch.
    assert calls(fake, "/cgi-bin/stable_token") == 0


def test_registered_code_gives_unionid_and_is_single_use(wechat, fake):
    code = control(fake, "/_fake/codes", {"openid": "o_bob", "unionid": "u_bob"})["code"]

    result = wechat.code_to_session(code)
    assert (result["openid"], result["unionid"]) == ("o_bob", "u_bob")
    with pytest.raises(WeChatInvalidCode) as err:
        wechat.code_to_session(code)
    assert err.value.errcode == 40163
    assert err.value.status == 400 and err.value.code == "wechat_invalid_code"


@pytest.mark.parametrize("code", ["nonsense", "demo:", "demo:has space"])
def test_invalid_code_is_wechat_invalid_code(wechat, code):
    with pytest.raises(WeChatInvalidCode) as err:
        wechat.code_to_session(code)
    assert err.value.errcode == 40029
    assert err.value.details == {"errcode": 40029}


# ---- access token -----------------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused(wechat, fake):
    wechat.get_phone_number("demo:13800000001")
    wechat.get_phone_number("demo:13800000002")

    assert calls(fake, "/cgi-bin/stable_token") == 1
    assert calls(fake, "/cgi-bin/token") == 0


def test_token_is_shared_across_gateways_through_redis(make_wechat, fake, redis_store):
    redis, prefix = redis_store
    first = make_wechat(redis=redis, token_prefix=prefix)
    second = make_wechat(redis=redis, token_prefix=prefix)

    first.get_phone_number("demo:13800000001")
    second.get_phone_number("demo:13800000002")

    assert calls(fake, "/cgi-bin/stable_token") == 1
    assert redis.get(f"{prefix}:{APPID}_access_token") is not None


def test_concurrent_refresh_fetches_once_under_the_redis_lock(make_wechat, fake, redis_store):
    redis, prefix = redis_store
    gateways = [make_wechat(redis=redis, token_prefix=prefix) for _ in range(3)]
    # A slow token endpoint, so all three workers want a token while the first fetch is in flight.
    control(fake, "/_fake/faults", {"path_prefix": "/cgi-bin/stable_token", "mode": "timeout", "seconds": 0.3,
                                    "times": 3})
    errors: list[Exception] = []

    def work(gateway: WeChatGateway, n: int) -> None:
        try:
            gateway.get_phone_number(f"demo:1380000000{n}")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(g, n)) for n, g in enumerate(gateways)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert errors == []
    assert calls(fake, "/cgi-bin/stable_token") == 1


@pytest.mark.parametrize(("mode", "errcode"), [("invalid", 40001), ("expired", 42001)])
def test_rejected_token_is_refreshed_once_and_the_call_retried(wechat, fake, mode, errcode):
    wechat.get_phone_number("demo:13800000001")
    control(fake, "/_fake/tokens/revoke", {"mode": mode})

    assert wechat.get_phone_number("demo:13800000002")["phone"] == "13800000002"
    assert calls(fake, "/cgi-bin/stable_token") == 2
    assert calls(fake, "/wxa/business/getuserphonenumber") == 3


def test_token_error_that_persists_is_not_retried_forever(wechat, fake):
    control(fake, "/_fake/faults", {"path_prefix": "/wxa/business/getuserphonenumber", "mode": "errcode",
                                    "errcode": 40001, "times": 10})

    with pytest.raises(WeChatError) as err:
        wechat.get_phone_number("demo:13800000001")
    assert err.value.errcode == 40001
    assert calls(fake, "/wxa/business/getuserphonenumber") == 2


def test_wrong_secret_fails_the_token_fetch(make_wechat):
    gateway = make_wechat(secret="wrong")

    with pytest.raises(WeChatError) as err:
        gateway.get_phone_number("demo:13800000001")
    assert err.value.errcode == 40125
    assert err.value.status == 502 and err.value.code == "wechat_error"


# ---- faults -----------------------------------------------------------------------------------------------------


def test_timeout_becomes_wechat_unavailable_quickly(make_wechat, fake):
    gateway = make_wechat(timeout=0.5)
    control(fake, "/_fake/faults", {"path_prefix": "/sns/jscode2session", "mode": "timeout", "seconds": 5})

    started = time.monotonic()
    with pytest.raises(WeChatUnavailable) as err:
        gateway.code_to_session("demo:o_alice")
    assert time.monotonic() - started < 2
    assert err.value.retryable is True
    assert err.value.status == 503 and err.value.code == "wechat_unavailable"
    # The fault is used up: the next login goes through.
    assert gateway.code_to_session("demo:o_alice")["openid"] == "o_alice"


def test_token_fetch_timeout_becomes_wechat_unavailable(make_wechat, fake):
    gateway = make_wechat(timeout=0.5)
    control(fake, "/_fake/faults", {"path_prefix": "/cgi-bin/stable_token", "mode": "timeout", "seconds": 5})

    with pytest.raises(WeChatUnavailable):
        gateway.get_phone_number("demo:13800000001")


@pytest.mark.parametrize(("fault", "expected", "errcode"), [
    ({"mode": "busy"}, WeChatUnavailable, -1),
    ({"mode": "error"}, WeChatUnavailable, None),
    ({"mode": "errcode", "errcode": 45011}, WeChatRateLimited, 45011),
    ({"mode": "errcode", "errcode": 40226}, WeChatInvalidCode, 40226),
])
def test_wechat_failures_map_to_our_errors(wechat, fake, fault, expected, errcode):
    control(fake, "/_fake/faults", {"path_prefix": "/sns/jscode2session", **fault})

    with pytest.raises(expected) as err:
        wechat.code_to_session("demo:o_alice")
    assert type(err.value) is expected
    assert err.value.errcode == errcode


def test_unreachable_wechat_is_unavailable(make_wechat):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = make_wechat(api_base=f"http://127.0.0.1:{port}/")

    with pytest.raises(WeChatUnavailable):
        gateway.code_to_session("demo:o_alice")


# ---- phone number -----------------------------------------------------------------------------------------------


def test_phone_number(wechat):
    assert wechat.get_phone_number("demo:13912345678") == {
        "phone": "13912345678", "pure_phone": "13912345678", "country_code": "86"}


def test_registered_phone_code_is_single_use(wechat, fake):
    code = control(fake, "/_fake/phone-codes", {"phone": "13700000000"})["code"]

    assert wechat.get_phone_number(code)["phone"] == "13700000000"
    with pytest.raises(WeChatInvalidCode):
        wechat.get_phone_number(code)


def test_phone_number_with_bad_code(wechat):
    with pytest.raises(WeChatInvalidCode) as err:
        wechat.get_phone_number("demo:123")
    assert err.value.errcode == 40029


# ---- mini-program codes -----------------------------------------------------------------------------------------


def test_wxa_code_is_a_png(wechat, fake):
    image = wechat.get_wxa_code_unlimited("p=AB12&s=9", page="pages/product/index", width=280)

    assert image.startswith(PNG_SIGNATURE)
    assert len(image) > 100
    assert calls(fake, "/wxa/getwxacodeunlimit") == 1


@pytest.mark.parametrize("scene", ["", "x" * 33, "has space", "中文", "a%b"])
def test_wxa_code_rejects_bad_scene_before_calling_wechat(wechat, fake, scene):
    with pytest.raises(ValidationFailed):
        wechat.get_wxa_code_unlimited(scene)
    assert calls(fake, "/wxa/getwxacodeunlimit") == 0


def test_wxa_code_rejects_a_page_with_leading_slash(wechat):
    with pytest.raises(ValidationFailed):
        wechat.get_wxa_code_unlimited("abc", page="/pages/index")


def test_wxa_code_for_unreleased_page_is_a_wechat_error(wechat, fake):
    control(fake, "/_fake/config", {"invalid_pages": ["pages/new/index"]})

    with pytest.raises(WeChatError) as err:
        wechat.get_wxa_code_unlimited("abc", page="pages/new/index")
    assert err.value.errcode == 41030


# ---- subscribe messages -----------------------------------------------------------------------------------------


def test_subscribe_message_is_recorded_with_thing_values_cut_to_20(wechat, fake):
    long_name = "一款名字特别特别特别特别特别长的新品饮料礼盒装"
    wechat.send_subscribe_message("o_alice", "tmpl_order_paid",
                                  {"thing1": long_name, "amount2": {"value": "¥12.00"}}, page="pages/order/index")

    [message] = get_json(fake, "/_fake/messages")
    assert message["touser"] == "o_alice"
    assert message["template_id"] == "tmpl_order_paid"
    assert message["page"] == "pages/order/index"
    thing = message["data"]["thing1"]["value"]
    assert len(thing) == 20 and thing.endswith("…") and long_name.startswith(thing[:-1])
    assert message["data"]["amount2"] == {"value": "¥12.00"}


def test_subscribe_message_to_unsubscribed_user(wechat, fake):
    control(fake, "/_fake/not-subscribed", {"openid": "o_carol"})

    with pytest.raises(WeChatNotSubscribed) as err:
        wechat.send_subscribe_message("o_carol", "tmpl_order_paid", {"thing1": "到货"})
    assert err.value.errcode == 43101
    assert err.value.retryable is False
    assert get_json(fake, "/_fake/messages") == []


def test_subscribe_message_with_unknown_template(wechat, fake):
    control(fake, "/_fake/config", {"templates": ["tmpl_order_paid"]})

    with pytest.raises(WeChatError) as err:
        wechat.send_subscribe_message("o_alice", "tmpl_unknown", {"thing1": "到货"})
    assert err.value.errcode == 40037


# ---- Flask wiring -----------------------------------------------------------------------------------------------


def test_init_app_builds_lazily_and_once(fake):
    app = Flask(__name__)
    # An unreachable base URL: the app must still start.
    app.config.update(WECHAT_APPID=APPID, WECHAT_SECRET=SECRET, WECHAT_API_BASE="http://127.0.0.1:9/",
                      WECHAT_TIMEOUT=0.5)
    wechat_module.init_app(app)

    with app.app_context():
        gateway = get_wechat()
        assert isinstance(gateway, WeChatGateway)
        assert get_wechat() is gateway
        assert app.extensions["wechat"] is gateway
        gateway.close()


def test_get_wechat_without_settings_is_unavailable():
    app = Flask(__name__)
    app.config.update(WECHAT_APPID="", WECHAT_SECRET="")
    wechat_module.init_app(app)

    with app.app_context(), pytest.raises(WeChatUnavailable):
        get_wechat()
