"""The fake's wire formats, checked directly over HTTP (shared/WECHAT-WIRE.md), where the gateways hide them."""

from __future__ import annotations

import re

import pytest
import requests

from tests.integrations.conftest import APPID, SECRET
from tests.integrations.helpers import control, get_json

RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")


def _stable(fake, **body):
    payload = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, **body}
    return requests.post(fake.url("/cgi-bin/stable_token"), json=payload, timeout=5)


def test_token_success_has_no_errcode_and_stable_token_repeats(fake):
    first, second = _stable(fake), _stable(fake)

    assert first.status_code == 200
    assert set(first.json()) == {"access_token", "expires_in"}
    assert second.json()["access_token"] == first.json()["access_token"]
    assert 0 < second.json()["expires_in"] <= 7200
    assert _stable(fake, force_refresh=True).json()["access_token"] != first.json()["access_token"]


def test_classic_token_rotates(fake):
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    first = requests.get(fake.url("/cgi-bin/token"), params=params, timeout=5).json()
    second = requests.get(fake.url("/cgi-bin/token"), params=params, timeout=5).json()

    assert first["access_token"] != second["access_token"]
    # The old token keeps working during the 5-minute overlap.
    resp = requests.post(fake.url("/wxa/business/getuserphonenumber"), params={"access_token": first["access_token"]},
                         json={"code": "demo:13800000000"}, timeout=5)
    assert resp.json()["errcode"] == 0


@pytest.mark.parametrize(("body", "errcode"), [
    ({"appid": "wxother"}, 40013),
    ({"secret": "nope"}, 40125),
    ({"grant_type": "password"}, 40002),
])
def test_token_errors_are_http_200_with_rid(fake, body, errcode):
    resp = _stable(fake, **body)

    assert resp.status_code == 200
    assert resp.json()["errcode"] == errcode
    assert RID.search(resp.json()["errmsg"])


@pytest.mark.parametrize(("params", "errcode"), [({}, 41001), ({"access_token": "bogus"}, 40001)])
def test_calls_check_the_access_token(fake, params, errcode):
    resp = requests.post(fake.url("/cgi-bin/message/subscribe/send"), params=params, json={}, timeout=5)
    assert resp.json()["errcode"] == errcode


def test_phone_country_code_is_a_string(fake):
    token = _stable(fake).json()["access_token"]
    resp = requests.post(fake.url("/wxa/business/getuserphonenumber"), params={"access_token": token},
                         json={"code": "demo:13800000000"}, timeout=5)

    info = resp.json()["phone_info"]
    assert info["countryCode"] == "86"
    assert info["watermark"]["appid"] == APPID


@pytest.mark.parametrize(("body", "errcode"), [
    ({"touser": "", "template_id": "t", "data": {"thing1": {"value": "x"}}}, 40003),
    ({"touser": "o_a", "template_id": "t", "data": {"thing1": {"value": "x" * 21}}}, 47003),
    ({"touser": "o_a", "template_id": "t", "data": {}}, 47003),
])
def test_subscribe_send_validates(fake, body, errcode):
    token = _stable(fake).json()["access_token"]
    resp = requests.post(fake.url("/cgi-bin/message/subscribe/send"), params={"access_token": token}, json=body,
                         timeout=5)
    assert resp.json()["errcode"] == errcode


@pytest.mark.parametrize(("body", "errcode"), [
    ({"scene": "x" * 33}, 40169),
    ({"scene": "a b"}, 40129),
    ({"scene": "ok", "page": "/pages/index"}, 41030),
])
def test_wxa_code_errors_are_json(fake, body, errcode):
    token = _stable(fake).json()["access_token"]
    resp = requests.post(fake.url("/wxa/getwxacodeunlimit"), params={"access_token": token}, json=body, timeout=5)

    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["errcode"] == errcode


def test_pay_call_without_a_valid_signature_is_sign_error(fake):
    resp = requests.post(fake.url("/v3/pay/transactions/jsapi"), json={"appid": APPID},
                         headers={"Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",'
                                                   'signature="c2ln",timestamp="1",serial_no="S"'}, timeout=5)

    assert resp.status_code == 401
    assert resp.json()["code"] == "SIGN_ERROR"
    assert resp.headers["Request-ID"]
    assert "Wechatpay-Signature" not in resp.headers  # only 2xx answers are signed


def test_signed_pay_answer_carries_wechatpay_headers(pay, pay_keys, fake):
    pay.create_jsapi_prepay(out_trade_no="HEADERS001", description="x", total_fen=1, openid="o_a")
    notice = control(fake, "/_fake/pay/HEADERS001/pay", {"notify": False})

    headers = notice["headers"]
    assert headers["Wechatpay-Serial"] == pay_keys["public_key_id"]
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert re.fullmatch(r"\d{10}", headers["Wechatpay-Timestamp"])
    assert get_json(fake, "/_fake/orders/HEADERS001")["trade_state"] == "SUCCESS"

