"""The WeChat Pay gateway over HTTP against the fake: prepay, payment params, queries, notifications, refunds."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask

from app.errors import ValidationFailed
from app.integrations import wechatpay as wechatpay_module
from app.integrations.fake_wechat import build_notification, signed_headers
from app.integrations.wechatpay import (
    InvalidNotification,
    PayError,
    PayOrderNotFound,
    PayUnavailable,
    WeChatPayGateway,
    generate_pay_keys,
    get_wechatpay,
    pay_config_from_keys,
    write_demo_pay_keys,
)
from tests.integrations.conftest import APPID
from tests.integrations.helpers import calls, control, get_json, new_order_no


def _prepay(pay: WeChatPayGateway, out_trade_no: str, total_fen: int = 1990, openid: str = "o_alice") -> str:
    return pay.create_jsapi_prepay(out_trade_no=out_trade_no, description="新品饮料 x2", total_fen=total_fen,
                                   openid=openid)


def _verify(public_pem: str, signature: str, message: bytes) -> None:
    key = serialization.load_pem_public_key(public_pem.encode())
    key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())


# ---- prepay and wx.requestPayment -------------------------------------------------------------------------------


def test_prepay_and_payment_params_signature_verifies(pay, pay_keys):
    prepay_id = _prepay(pay, new_order_no())
    params = pay.request_payment_params(prepay_id)

    assert prepay_id.startswith("wx")
    assert params["package"] == f"prepay_id={prepay_id}"
    assert params["signType"] == "RSA"
    assert re.fullmatch(r"\d{10}", params["timeStamp"])
    assert len(params["nonceStr"]) == 32
    message = f"{APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    _verify(pay_keys["merchant_public_key"], params["paySign"], message)
    with pytest.raises(InvalidSignature):
        _verify(pay_keys["platform_public_key"], params["paySign"], message)


def test_prepay_is_idempotent_for_the_same_amount_and_refuses_a_changed_one(pay):
    out_trade_no = new_order_no()
    first = _prepay(pay, out_trade_no, 1990)

    assert _prepay(pay, out_trade_no, 1990) == first
    with pytest.raises(PayError) as err:
        _prepay(pay, out_trade_no, 2990)
    assert err.value.pay_code == "INVALID_REQUEST"
    assert err.value.http_status == 400
    assert err.value.status == 502 and err.value.code == "pay_error"


def test_prepay_with_expiry(pay, fake):
    out_trade_no = new_order_no()
    pay.create_jsapi_prepay(out_trade_no=out_trade_no, description="饮料", total_fen=100, openid="o_alice",
                            time_expire=datetime.now(UTC) + timedelta(minutes=30))

    order = get_json(fake, f"/_fake/orders/{out_trade_no}")
    assert order["time_expire"].endswith("+08:00")


@pytest.mark.parametrize("kwargs", [
    {"out_trade_no": "short"},
    {"out_trade_no": "x" * 33},
    {"total_fen": 0},
    {"total_fen": 1.5},
    {"description": ""},
    {"openid": ""},
])
def test_prepay_validates_before_calling_wechat_pay(pay, fake, kwargs):
    params = {"out_trade_no": new_order_no(), "description": "饮料", "total_fen": 100, "openid": "o_alice", **kwargs}

    with pytest.raises(ValidationFailed):
        pay.create_jsapi_prepay(**params)
    assert calls(fake, "/v3/pay/transactions/jsapi") == 0


# ---- query, pay, notification -----------------------------------------------------------------------------------


def test_query_is_notpay_then_success_after_the_user_pays(pay, fake, receiver):
    out_trade_no = new_order_no()
    _prepay(pay, out_trade_no, 1990)

    unpaid = pay.query_by_out_trade_no(out_trade_no)
    assert unpaid["trade_state"] == "NOTPAY"
    assert "transaction_id" not in unpaid

    paid = control(fake, f"/_fake/pay/{out_trade_no}/pay")
    assert paid["status_code"] == 204

    order = pay.query_by_out_trade_no(out_trade_no)
    assert order["trade_state"] == "SUCCESS"
    assert order["transaction_id"] == paid["transaction_id"]
    assert order["amount"]["total"] == 1990
    assert order["payer"] == {"openid": "o_alice"}

    # What the merchant received is exactly what the control API reports having sent.
    [delivered] = receiver.received
    assert delivered["body"] == paid["body"].encode()
    notice = pay.parse_notification(delivered["headers"], delivered["body"])
    assert notice["event_type"] == "TRANSACTION.SUCCESS"
    assert notice["resource"]["out_trade_no"] == out_trade_no
    assert notice["resource"]["transaction_id"] == paid["transaction_id"]
    assert notice["resource"]["trade_state"] == "SUCCESS"
    assert notice["resource"]["amount"]["total"] == 1990


def test_replayed_notification_parses_to_the_same_id(pay, fake):
    out_trade_no = new_order_no()
    _prepay(pay, out_trade_no)
    paid = control(fake, f"/_fake/pay/{out_trade_no}/pay", {"notify": False})

    first = pay.parse_notification(paid["headers"], paid["body"].encode())
    again = pay.parse_notification(paid["headers"], paid["body"].encode())
    assert first["id"] == again["id"]  # the app's handling must be idempotent on it


def test_query_of_unknown_order_is_not_found(pay):
    with pytest.raises(PayOrderNotFound) as err:
        pay.query_by_out_trade_no(new_order_no())
    assert err.value.status == 404 and err.value.code == "pay_order_not_found"
    assert err.value.pay_code == "ORDER_NOT_EXIST"


def test_close_order_then_query_says_closed(pay):
    out_trade_no = new_order_no()
    _prepay(pay, out_trade_no)

    pay.close_order(out_trade_no)  # a signed 204 with an empty body
    assert pay.query_by_out_trade_no(out_trade_no)["trade_state"] == "CLOSED"


# ---- notification checks ----------------------------------------------------------------------------------------


def _notice(pay_keys, **kwargs):
    resource = {"out_trade_no": "T123456", "transaction_id": "4200000001", "trade_state": "SUCCESS",
                "amount": {"total": 100}}
    return build_notification(pay_keys, "TRANSACTION.SUCCESS", resource, **kwargs)


def _reason(pay, headers, body, **kwargs) -> str:
    with pytest.raises(InvalidNotification) as err:
        pay.parse_notification(headers, body, **kwargs)
    assert err.value.status == 400 and err.value.code == "invalid_notification"
    return err.value.details["reason"]


def test_a_fresh_signed_notification_parses(pay, pay_keys):
    headers, body = _notice(pay_keys)
    notice = pay.parse_notification({k.lower(): v for k, v in headers.items()}, body)
    assert notice["resource"]["out_trade_no"] == "T123456"


def test_forged_signature_is_rejected(pay, pay_keys):
    forger = generate_pay_keys()
    headers, body = _notice({**forger, "public_key_id": pay_keys["public_key_id"], "apiv3_key": pay_keys["apiv3_key"]})
    assert _reason(pay, headers, body) == "bad_signature"


def test_body_changed_after_signing_is_rejected(pay, pay_keys):
    headers, body = _notice(pay_keys)
    assert _reason(pay, headers, body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.CLOSED")) == "bad_signature"


def test_tampered_ciphertext_is_rejected_even_when_signed(pay, pay_keys):
    headers, body = _notice(pay_keys)
    envelope = json.loads(body)
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[0] ^= 1
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    body = json.dumps(envelope).encode()
    headers.update(signed_headers(pay_keys, body))
    assert _reason(pay, headers, body) == "undecryptable"


def test_notification_for_another_apiv3_key_is_rejected(pay, pay_keys):
    headers, body = _notice({**pay_keys, "apiv3_key": "A" * 32})
    assert _reason(pay, headers, body) == "undecryptable"


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamp_is_rejected(pay, pay_keys, skew):
    headers, body = _notice(pay_keys, timestamp=int(time.time()) + skew)
    assert _reason(pay, headers, body) == "stale_timestamp"


def test_timestamp_within_five_minutes_is_accepted(pay, pay_keys):
    now = time.time()
    headers, body = _notice(pay_keys, timestamp=int(now) - 290)
    assert pay.parse_notification(headers, body, now=now)["event_type"] == "TRANSACTION.SUCCESS"


def test_signtest_probe_is_rejected(pay, pay_keys):
    headers, body = _notice(pay_keys)
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    assert _reason(pay, headers, body) == "signature_probe"


def test_wrong_serial_is_rejected(pay, pay_keys):
    headers, body = _notice(pay_keys)
    headers["Wechatpay-Serial"] = "PUB_KEY_ID_" + "9" * 34
    assert _reason(pay, headers, body) == "unknown_serial"


@pytest.mark.parametrize("header", ["Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce",
                                    "Wechatpay-Serial"])
def test_missing_header_is_rejected(pay, pay_keys, header):
    headers, body = _notice(pay_keys)
    del headers[header]
    assert _reason(pay, headers, body) == "missing_headers"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "x", "resource": {"algorithm": "AEAD_AES_256_GCM"}}'])
def test_malformed_but_signed_body_is_rejected(pay, pay_keys, body):
    assert _reason(pay, signed_headers(pay_keys, body), body) == "malformed"


# ---- refunds ----------------------------------------------------------------------------------------------------


def _paid_order(pay, fake, total_fen: int = 1990) -> str:
    out_trade_no = new_order_no()
    _prepay(pay, out_trade_no, total_fen)
    control(fake, f"/_fake/pay/{out_trade_no}/pay", {"notify": False})
    return out_trade_no


def test_refund_flow(pay, fake, receiver):
    out_trade_no = _paid_order(pay, fake, 1990)
    out_refund_no = new_order_no()

    refund = pay.refund(out_trade_no=out_trade_no, out_refund_no=out_refund_no, refund_fen=990, total_fen=1990,
                        reason="缺货")
    assert refund["status"] == "PROCESSING"
    assert refund["amount"]["refund"] == 990
    assert pay.query_by_out_trade_no(out_trade_no)["trade_state"] == "REFUND"

    done = control(fake, f"/_fake/refunds/{out_refund_no}/complete")
    assert done["status_code"] == 204
    [delivered] = receiver.received
    notice = pay.parse_notification(delivered["headers"], delivered["body"])
    assert notice["event_type"] == "REFUND.SUCCESS"
    assert notice["resource"]["out_refund_no"] == out_refund_no
    assert notice["resource"]["refund_status"] == "SUCCESS"
    assert notice["resource"]["amount"]["refund"] == 990
    assert pay.query_refund(out_refund_no)["status"] == "SUCCESS"


def test_refund_is_idempotent_on_out_refund_no_and_capped_at_the_order_total(pay, fake):
    out_trade_no = _paid_order(pay, fake, 1000)
    out_refund_no = new_order_no()
    args = {"out_trade_no": out_trade_no, "total_fen": 1000, "reason": "退货"}

    first = pay.refund(out_refund_no=out_refund_no, refund_fen=600, **args)
    assert pay.refund(out_refund_no=out_refund_no, refund_fen=600, **args)["refund_id"] == first["refund_id"]
    with pytest.raises(PayError) as err:
        pay.refund(out_refund_no=new_order_no(), refund_fen=600, **args)
    assert err.value.pay_code == "INVALID_REQUEST"


def test_refund_completes_by_itself_when_configured(pay, fake, receiver):
    control(fake, "/_fake/config", {"refund_auto_complete": True})
    out_trade_no = _paid_order(pay, fake)
    out_refund_no = new_order_no()

    pay.refund(out_trade_no=out_trade_no, out_refund_no=out_refund_no, refund_fen=100, total_fen=1990, reason="")

    assert receiver.arrived.wait(timeout=5)
    notice = pay.parse_notification(receiver.received[0]["headers"], receiver.received[0]["body"])
    assert notice["event_type"] == "REFUND.SUCCESS"


# ---- faults and misconfiguration --------------------------------------------------------------------------------


def test_prepay_timeout_is_unavailable_and_a_retry_works(make_pay, fake):
    pay = make_pay(timeout=0.5)
    out_trade_no = new_order_no()
    control(fake, "/_fake/faults", {"path_prefix": "/v3/pay/transactions/jsapi", "mode": "timeout", "seconds": 5})

    started = time.monotonic()
    with pytest.raises(PayUnavailable) as err:
        _prepay(pay, out_trade_no)
    assert time.monotonic() - started < 2
    assert err.value.retryable is True
    assert err.value.status == 503 and err.value.code == "pay_unavailable"

    assert _prepay(pay, out_trade_no).startswith("wx")


def test_busy_wechat_pay_is_unavailable(pay, fake):
    control(fake, "/_fake/faults", {"path_prefix": "/v3/pay/transactions/out-trade-no/", "mode": "busy"})

    with pytest.raises(PayUnavailable) as err:
        pay.query_by_out_trade_no(new_order_no())
    assert err.value.pay_code == "SYSTEM_ERROR"
    assert err.value.http_status == 500


def test_request_signed_with_the_wrong_merchant_key_gets_sign_error(make_pay):
    pay = make_pay(private_key_pem=generate_pay_keys()["merchant_private_key"])

    with pytest.raises(PayError) as err:
        _prepay(pay, new_order_no())
    assert err.value.pay_code == "SIGN_ERROR"
    assert err.value.http_status == 401


def test_answer_not_signed_by_our_platform_key_is_refused(make_pay):
    pay = make_pay(public_key_pem=generate_pay_keys()["platform_public_key"])

    with pytest.raises(PayError) as err:
        _prepay(pay, new_order_no())
    assert type(err.value) is PayError


# ---- keys and Flask wiring --------------------------------------------------------------------------------------


def test_generated_keys_have_the_right_shapes(pay_keys):
    assert re.fullmatch(r"[0-9A-F]{40}", pay_keys["merchant_cert_serial_no"])
    assert re.fullmatch(r"PUB_KEY_ID_\d{34}", pay_keys["public_key_id"])
    assert len(pay_keys["apiv3_key"]) == 32
    for name in ("merchant_private_key", "platform_private_key"):
        assert pay_keys[name].startswith("-----BEGIN PRIVATE KEY-----")
    for name in ("merchant_public_key", "platform_public_key"):
        assert pay_keys[name].startswith("-----BEGIN PUBLIC KEY-----")


def test_demo_keys_are_written_once(tmp_path):
    first = write_demo_pay_keys(tmp_path / "instance")
    again = write_demo_pay_keys(tmp_path / "instance")

    assert first == again
    assert (tmp_path / "instance" / "wechatpay-demo-keys.json").stat().st_mode & 0o777 == 0o600


def test_get_wechatpay_without_keys_is_unavailable():
    app = Flask(__name__)
    app.config.update(WECHAT_APPID=APPID, WECHATPAY_MCHID="1900000109")
    wechatpay_module.init_app(app)

    with app.app_context(), pytest.raises(PayUnavailable) as err:
        get_wechatpay()
    assert err.value.message == "微信支付未配置"


def test_get_wechatpay_builds_lazily_from_settings(pay_keys, fake):
    app = Flask(__name__)
    app.config.update(WECHAT_APPID=APPID, WECHATPAY_NOTIFY_URL="http://127.0.0.1:9/notify",
                      WECHATPAY_API_BASE=fake.base_url, WECHAT_TIMEOUT=2.0, **pay_config_from_keys(pay_keys))
    wechatpay_module.init_app(app)

    with app.app_context():
        gateway = get_wechatpay()
        assert get_wechatpay() is gateway
        assert _prepay(gateway, new_order_no()).startswith("wx")
