"""A local fake of api.weixin.qq.com and api.mch.weixin.qq.com, speaking their wire formats (shared/WECHAT-WIRE.md).

The real gateways talk to it over HTTP in tests and in the demo. Control endpoints under `/_fake/` play the parts
WeChat plays on a phone (the user pays, a refund completes) and inject faults (timeouts, busy, errors).

mini-program side: HTTP 200 with `{"errcode", "errmsg"}` bodies ending in " rid: ...", access tokens checked.
Pay side: requests' `Authorization` checked with the merchant public key (401 SIGN_ERROR), 2xx answers signed with
the platform private key under the public key id, notifications AES-256-GCM encrypted with the APIv3 key.
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import requests
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Response, current_app, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WX_JSON = "application/json; encoding=utf-8"
PAY_JSON = "application/json; charset=utf-8"
CHINA_TZ = timezone(timedelta(hours=8))
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
FAULT_MODES = ("timeout", "error", "busy", "errcode")

_SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+$")
_OUT_TRADE_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
_OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
_OPENID_RE = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
_AUTH_RE = re.compile(r"^WECHATPAY2-SHA256-RSA2048\s+(.+)$")
_SUMMARIES = {"TRANSACTION.SUCCESS": "支付成功", "REFUND.SUCCESS": "退款成功", "REFUND.ABNORMAL": "退款异常",
              "REFUND.CLOSED": "退款关闭"}
_TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "REFUND": "转入退款", "CLOSED": "订单已关闭"}


# ---- state ----------------------------------------------------------------------------------------------------


@dataclass
class Token:
    value: str
    expires_at: float
    revoked: bool = False


@dataclass
class Fault:
    path_prefix: str
    mode: str
    times: int = 1
    seconds: float | None = None
    errcode: int | None = None


@dataclass
class Order:
    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total: int
    openid: str
    notify_url: str
    prepay_id: str
    time_expire: str | None = None
    attach: str | None = None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    reason: str | None
    notify_url: str | None
    create_time: str
    status: str = "PROCESSING"
    success_time: str | None = None


@dataclass
class FakeState:
    """Everything the fake remembers; every change happens under `lock`."""

    appid: str
    secret: str
    pay_keys: dict[str, str] | None
    lock: threading.RLock = field(default_factory=threading.RLock)
    stopping: threading.Event = field(default_factory=threading.Event)
    epoch: int = 0
    wake: threading.Event = field(default_factory=threading.Event)
    tokens: dict[str, Token] = field(default_factory=dict)
    stable_token: str | None = None
    classic_token: str | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    phone_codes: dict[str, str] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    not_subscribed: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    # Settings a test or the demo may change through POST /_fake/config.
    invalid_pages: set[str] = field(default_factory=set)
    templates: set[str] | None = None
    fault_timeout_seconds: float = 10.0
    refund_auto_complete: bool = False
    token_lifetime: int = 7200
    # The hang switch (POST /_fake/hang, or FAKE_WECHAT_HANG at start): calls under this prefix wait, unanswered,
    # until it is switched off (then they carry on) or `hang_max_seconds` pass.
    hang_prefix: str | None = None
    hang_released: threading.Event = field(default_factory=threading.Event)
    hang_max_seconds: float = 300.0

    def reset(self) -> None:
        """Forget everything and wake requests sleeping in a timeout fault (they then answer 503)."""
        fresh = FakeState(self.appid, self.secret, self.pay_keys)
        with self.lock:
            self.wake.set()
            self.hang_prefix = None
            self.hang_released.set()
            self.hang_released = threading.Event()
            for name in ("tokens", "codes", "phone_codes", "used_codes", "not_subscribed", "messages", "orders",
                         "refunds", "notifications", "faults", "stats", "invalid_pages", "templates",
                         "fault_timeout_seconds", "refund_auto_complete", "token_lifetime", "stable_token",
                         "classic_token"):
                setattr(self, name, getattr(fresh, name))
            self.epoch += 1
            self.wake = threading.Event()

    def take_fault(self, path: str) -> Fault | None:
        """The first armed fault for `path`, used up by one."""
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path_prefix):
                    fault.times -= 1
                    return fault
        return None


def _state() -> FakeState:
    return current_app.extensions["fake_wechat"]


# ---- wire helpers ---------------------------------------------------------------------------------------------


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _wx(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), 200, content_type=WX_JSON)


def _wx_error(errcode: int, errmsg: str) -> Response:
    """api.weixin.qq.com errors: HTTP 200, errmsg ending in a request id."""
    return _wx({"errcode": errcode, "errmsg": f"{errmsg} rid: {_rid()}"})


def _json_body() -> Any:
    # WeChat reads the body as JSON whatever the Content-Type (wechatpy sends none).
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError:
        return None


def _options() -> dict[str, Any]:
    """A control endpoint's JSON object body, or {}."""
    body = _json_body()
    return body if isinstance(body, dict) else {}


def _now_text(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, CHINA_TZ).isoformat(timespec="seconds")


def _request_id() -> str:
    return secrets.token_hex(16).upper()


@lru_cache(maxsize=8)
def _private_key(pem: str) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


@lru_cache(maxsize=8)
def _public_key(pem: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, RSAPublicKey)
    return key


def _rsa_sign(private_pem: str, message: bytes) -> str:
    signature = _private_key(private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def signed_headers(pay_keys: dict[str, str], body: bytes, timestamp: int | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """The `Wechatpay-*` headers WeChat Pay puts on an answer or a notification with this body."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = nonce or secrets.token_hex(16)
    return {
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": _rsa_sign(pay_keys["platform_private_key"], f"{ts}\n{nonce}\n".encode() + body + b"\n"),
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Serial": pay_keys["public_key_id"],
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def build_notification(pay_keys: dict[str, str], event_type: str, resource: dict[str, Any],
                       timestamp: int | None = None, *, notification_id: str | None = None) -> tuple[dict[str, str],
                                                                                                  bytes]:
    """A signed, encrypted notification as WeChat Pay POSTs it: `(headers, body)`."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    plaintext = json.dumps(resource, ensure_ascii=False).encode()
    ciphertext = AESGCM(pay_keys["apiv3_key"].encode()).encrypt(nonce.encode(), plaintext, original_type.encode())
    envelope = {
        "id": notification_id or str(uuid.uuid4()),
        "create_time": _now_text(ts),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": _SUMMARIES.get(event_type, ""),
        "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": original_type,
                     "nonce": nonce},
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Request-ID": _request_id(), **signed_headers(pay_keys, body, ts)}
    return headers, body


def _pay_ok(payload: dict[str, Any] | None, status: int = 200) -> Response:
    """A 2xx pay answer, signed like WeChat Pay's (an empty 204 body signs as an empty line)."""
    keys = _state().pay_keys
    assert keys is not None
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    resp = Response(body, status, content_type=PAY_JSON)
    resp.headers["Request-ID"] = _request_id()
    resp.headers.update(signed_headers(keys, body))
    return resp


def _pay_error(status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> Response:
    """A pay error: only 2xx answers are signed, as the official SDKs check status before signature."""
    payload: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        payload["detail"] = detail
    resp = Response(json.dumps(payload, ensure_ascii=False), status, content_type=PAY_JSON)
    resp.headers["Request-ID"] = _request_id()
    return resp


def _param_error(location: str, message: str) -> Response:
    return _pay_error(400, "PARAM_ERROR", message, {"location": "body", "value": location})


def _control(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status, content_type="application/json")


# ---- faults and counting --------------------------------------------------------------------------------------


def _before_request() -> Response | None:
    if request.path.startswith("/_fake/"):
        return None
    state = _state()
    with state.lock:
        state.stats[request.path] += 1
        epoch, wake = state.epoch, state.wake
        hang = state.hang_prefix is not None and request.path.startswith(state.hang_prefix)
        released = state.hang_released
    if hang:
        # WeChat hung: the connection is open, nothing comes back until the switch is turned off.
        released.wait(state.hang_max_seconds)
        if state.stopping.is_set():
            return Response("fake stopping", 503, content_type="text/plain")
    fault = state.take_fault(request.path)
    if fault is None:
        return None
    pay = request.path.startswith("/v3/")
    if fault.mode == "timeout":
        # Sleep past the client's timeout, then carry on as WeChat would: the work is done, the answer lost.
        wake.wait(fault.seconds if fault.seconds is not None else state.fault_timeout_seconds)
        if state.epoch != epoch or state.stopping.is_set():
            return Response("fake reset while sleeping", 503, content_type="text/plain")
        return None
    if fault.mode == "busy":
        return _pay_error(500, "SYSTEM_ERROR", "系统繁忙，请稍后重试") if pay else _wx_error(-1, "system error")
    if fault.mode == "errcode" and not pay:
        return _wx_error(int(fault.errcode or -1), "fault injected")
    return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, content_type="text/html")


# ---- access tokens --------------------------------------------------------------------------------------------


def _issue_token(state: FakeState) -> Token:
    token = Token(f"{secrets.randbelow(90) + 10}_{secrets.token_urlsafe(96)}", time.time() + state.token_lifetime)
    state.tokens[token.value] = token
    return token


def _token_error() -> Response | None:
    """40001/42001/41001 as WeChat answers them on any call that needs a token."""
    value = request.args.get("access_token")
    if not value:
        return _wx_error(41001, "access_token missing")
    state = _state()
    with state.lock:
        token = state.tokens.get(value)
    if token is None or token.revoked:
        return _wx_error(40001, "invalid credential, access_token is invalid or not latest")
    if time.time() >= token.expires_at:
        return _wx_error(42001, "access_token expired")
    return None


def _check_app(appid: Any, secret: Any) -> Response | None:
    state = _state()
    if not appid:
        return _wx_error(41002, "appid missing")
    if not secret:
        return _wx_error(41004, "appsecret missing")
    if appid != state.appid:
        return _wx_error(40013, "invalid appid")
    if secret != state.secret:
        return _wx_error(40125, "invalid appsecret")
    return None


def cgi_token() -> Response:
    """GET /cgi-bin/token: a new token each call; the previous one keeps working for 5 minutes."""
    if request.args.get("grant_type") != "client_credential":
        return _wx_error(40002, "invalid grant_type")
    error = _check_app(request.args.get("appid"), request.args.get("secret"))
    if error:
        return error
    state = _state()
    with state.lock:
        old = state.tokens.get(state.classic_token or "")
        if old:
            old.expires_at = min(old.expires_at, time.time() + 300)
        token = _issue_token(state)
        state.classic_token = token.value
    return _wx({"access_token": token.value, "expires_in": state.token_lifetime})


def stable_token() -> Response:
    """POST /cgi-bin/stable_token: the same token (with its remaining lifetime) until 5 minutes before expiry."""
    if request.method != "POST":
        return _wx_error(43002, "require POST method")
    body = _json_body()
    if not isinstance(body, dict):
        return _wx_error(47001, "data format error")
    if body.get("grant_type") != "client_credential":
        return _wx_error(40002, "invalid grant_type")
    error = _check_app(body.get("appid"), body.get("secret"))
    if error:
        return error
    state = _state()
    now = time.time()
    with state.lock:
        current = state.tokens.get(state.stable_token or "")
        if body.get("force_refresh") and current:
            current.revoked = True
        if current is None or current.revoked or current.expires_at - now <= 300:
            current = _issue_token(state)
            state.stable_token = current.value
    return _wx({"access_token": current.value, "expires_in": int(current.expires_at - now)})


# ---- mini-program APIs ----------------------------------------------------------------------------------------


def jscode2session() -> Response:
    """GET /sns/jscode2session: `demo:<openid>` codes are reusable; codes from /_fake/codes are single use."""
    error = _check_app(request.args.get("appid"), request.args.get("secret"))
    if error:
        return error
    code = request.args.get("js_code") or ""
    if not code:
        return _wx_error(41008, "missing code")
    state = _state()
    with state.lock:
        if code in state.used_codes:
            return _wx_error(40163, "code been used")
        registered = state.codes.pop(code, None)
        if registered is not None:
            state.used_codes.add(code)
    if registered is None:
        openid = code.removeprefix("demo:")
        if not code.startswith("demo:") or not _OPENID_RE.match(openid):
            return _wx_error(40029, "invalid code")
        registered = {"openid": openid}
    payload = {"session_key": base64.b64encode(secrets.token_bytes(16)).decode(), "openid": registered["openid"]}
    if registered.get("unionid"):
        payload["unionid"] = registered["unionid"]
    return _wx(payload)


def getuserphonenumber() -> Response:
    """POST /wxa/business/getuserphonenumber: `demo:<11 digits>` or a code from /_fake/phone-codes."""
    error = _token_error()
    if error:
        return error
    body = _json_body()
    code = body.get("code") if isinstance(body, dict) else None
    if not code or not isinstance(code, str):
        return _wx_error(40029, "invalid code")
    state = _state()
    with state.lock:
        phone = state.phone_codes.pop(code, None)
    if phone is None:
        phone = code.removeprefix("demo:")
        if not code.startswith("demo:") or not re.fullmatch(r"1\d{10}", phone):
            return _wx_error(40029, "invalid code")
    return _wx({"errcode": 0, "errmsg": "ok", "phone_info": {
        "phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86",
        "watermark": {"timestamp": int(time.time()), "appid": state.appid}}})


def getwxacodeunlimit() -> Response:
    """POST /wxa/getwxacodeunlimit: a real PNG (a QR code of the scene) or an errcode body."""
    error = _token_error()
    if error:
        return error
    body = _json_body()
    if not isinstance(body, dict):
        return _wx_error(40169, "invalid length for scene, or the data is not json string")
    scene = body.get("scene")
    if not isinstance(scene, str) or not 1 <= len(scene) <= 32:
        return _wx_error(40169, "invalid length for scene, or the data is not json string")
    if not _SCENE_RE.match(scene):
        return _wx_error(40129, "invalid scene")
    if "scancode_time" in body:
        return _wx_error(85096, "not allow include scancode_time field")
    page = body.get("page")
    state = _state()
    if page is not None and (not isinstance(page, str) or page.startswith("/") or "?" in page
                             or page in state.invalid_pages):
        return _wx_error(41030, "invalid page")
    width = body.get("width", 430)
    if not isinstance(width, int) or not 280 <= width <= 1280 \
            or body.get("env_version", "release") not in ("release", "trial", "develop"):
        return _wx_error(40097, "invalid args")
    qr = segno.make(scene, error="m", micro=False)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=max(1, width // qr.symbol_size()[0]))
    return Response(buf.getvalue(), 200, content_type="image/png")


def subscribe_send() -> Response:
    """POST /cgi-bin/message/subscribe/send: validates like WeChat and records what it accepts."""
    error = _token_error()
    if error:
        return error
    body = _json_body()
    if not isinstance(body, dict):
        return _wx_error(47001, "data format error")
    state = _state()
    touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
    if not touser or not isinstance(touser, str):
        return _wx_error(40003, "invalid openid")
    if not template_id or (state.templates is not None and template_id not in state.templates):
        return _wx_error(40037, "invalid template_id")
    if not isinstance(data, dict) or not data:
        return _wx_error(47003, "argument invalid! data")
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value or (key.startswith("thing") and len(value) > 20):
            return _wx_error(47003, f"argument invalid! data.{key}.value")
    if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
        return _wx_error(47003, "argument invalid! miniprogram_state")
    page = body.get("page")
    if page is not None and (not isinstance(page, str) or page.split("?")[0] in state.invalid_pages):
        return _wx_error(41030, "invalid page")
    with state.lock:
        if touser in state.not_subscribed:
            return _wx_error(43101, "user refuse to accept the msg")
        state.messages.append({"touser": touser, "template_id": template_id, "page": body.get("page"),
                               "data": data, "miniprogram_state": body.get("miniprogram_state"),
                               "lang": body.get("lang"), "sent_at": _now_text()})
    return _wx({"errcode": 0, "errmsg": "ok"})


# ---- WeChat Pay v3 --------------------------------------------------------------------------------------------


def _verify_pay_request() -> Response | str:
    """Check the merchant's signature on this request; returns the mchid or the error to send."""
    keys = _state().pay_keys
    if keys is None:
        return _pay_error(500, "SYSTEM_ERROR", "fake WeChat Pay has no keys")
    match = _AUTH_RE.match(request.headers.get("Authorization", ""))
    fields = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) if match else {}
    url = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
    message = (f"{request.method}\n{url}\n{fields.get('timestamp', '')}\n{fields.get('nonce_str', '')}\n".encode()
               + request.get_data() + b"\n")
    issue = None
    if not all(fields.get(name) for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")):
        issue = "authorization header malformed"
    elif fields["serial_no"] != keys["merchant_cert_serial_no"]:
        issue = "serial_no not match"
    elif not fields["timestamp"].isdigit() or abs(time.time() - int(fields["timestamp"])) > 300:
        issue = "timestamp expired"
    else:
        try:
            _public_key(keys["merchant_public_key"]).verify(base64.b64decode(fields["signature"]), message,
                                                            padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            issue = "sign not match"
    if issue:
        return _pay_error(401, "SIGN_ERROR", "签名错误，请检查后再试", {
            "detail": {"issue": issue}, "field": "signature", "location": "authorization",
            "sign_information": {"method": request.method, "sign_message_length": len(message),
                                 "truncated_sign_message": message[:64].decode("utf-8", "replace"), "url": url}})
    serial = request.headers.get("Wechatpay-Serial")
    if serial and serial != keys["public_key_id"]:
        return _pay_error(400, "INVALID_REQUEST", "Wechatpay-Serial 对应的公钥或证书不存在")
    return fields["mchid"]


def _transaction(order: Order) -> dict[str, Any]:
    """The order as query and TRANSACTION.SUCCESS show it; unpaid orders have no payment fields."""
    payload: dict[str, Any] = {
        "amount": {"payer_currency": "CNY", "total": order.total}, "appid": order.appid, "mchid": order.mchid,
        "out_trade_no": order.out_trade_no, "promotion_detail": [], "scene_info": {"device_id": ""},
        "trade_state": order.trade_state, "trade_state_desc": _TRADE_STATE_DESC.get(order.trade_state, ""),
    }
    if order.transaction_id:
        payload.update({
            "transaction_id": order.transaction_id, "trade_type": "JSAPI", "bank_type": "OTHERS",
            "attach": order.attach or "", "success_time": order.success_time, "payer": {"openid": order.openid},
            "amount": {"total": order.total, "payer_total": order.total, "currency": "CNY", "payer_currency": "CNY"},
        })
    return payload


def _refund_payload(refund: Refund) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no, "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱", "create_time": refund.create_time, "status": refund.status,
        "funds_account": "AVAILABLE", "promotion_detail": [],
        "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                   "payer_refund": refund.refund, "settlement_refund": refund.refund,
                   "settlement_total": refund.total, "discount_refund": 0, "currency": "CNY"},
    }
    if refund.success_time:
        payload["success_time"] = refund.success_time
    return payload


def _refund_notice(refund: Refund, state: FakeState) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "mchid": state.orders[refund.out_trade_no].mchid, "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no, "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
        "refund_status": refund.status, "user_received_account": "支付用户零钱",
        "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                   "payer_refund": refund.refund},
    }
    if refund.success_time:
        payload["success_time"] = refund.success_time
    return payload


def _valid_notify_url(url: Any) -> bool:
    # WeChat wants https; the fake also takes http so a local app can receive notifications.
    return isinstance(url, str) and bool(re.match(r"^https?://[^\s?#]+$", url)) and len(url) <= 255


def jsapi_prepay() -> Response:
    """POST /v3/pay/transactions/jsapi: same out_trade_no and amount → same prepay_id."""
    mchid = _verify_pay_request()
    if isinstance(mchid, Response):
        return mchid
    body = _json_body()
    if not isinstance(body, dict):
        return _param_error("/body", "请求体不是有效的 JSON")
    for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
        if not body.get(name):
            return _param_error(f"/body/{name}", f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，"
                                                 "此字段为必填项")
    amount, payer = body.get("amount"), body.get("payer")
    total = amount.get("total") if isinstance(amount, dict) else None
    openid = payer.get("openid") if isinstance(payer, dict) else None
    state = _state()
    if body["appid"] != state.appid or body["mchid"] != mchid:
        return _pay_error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    if not _OUT_TRADE_NO_RE.match(str(body["out_trade_no"])):
        return _param_error("/body/out_trade_no", "商户订单号格式错误：6-32 位数字、大小写字母、_-|*")
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        return _param_error("/body/amount/total", "订单金额必须是大于 0 的整数（分）")
    if amount.get("currency", "CNY") != "CNY":
        return _param_error("/body/amount/currency", "币种只支持 CNY")
    if not openid:
        return _param_error("/body/payer/openid", "输入源“/body/payer/openid”映射到字段“用户标识”必填性规则校验失败")
    if not _valid_notify_url(body["notify_url"]):
        return _param_error("/body/notify_url", "通知地址格式错误")
    if not isinstance(body["description"], str) or len(body["description"]) > 127:
        return _param_error("/body/description", "商品描述长度超限")
    if body.get("time_expire") is not None:
        try:
            datetime.fromisoformat(body["time_expire"])
        except (TypeError, ValueError):
            return _param_error("/body/time_expire", "time_expire 格式错误")
    with state.lock:
        order = state.orders.get(body["out_trade_no"])
        if order is not None:
            if order.trade_state != "NOTPAY":
                if order.trade_state == "CLOSED":
                    return _pay_error(400, "ORDER_CLOSED", "订单已关闭")
                return _pay_error(400, "ORDERPAID", "该订单已支付")
            if order.total != total or order.openid != openid:
                return _pay_error(400, "INVALID_REQUEST", "201 商户订单号重复")
            return _pay_ok({"prepay_id": order.prepay_id})
        order = Order(out_trade_no=body["out_trade_no"], appid=body["appid"], mchid=mchid,
                      description=body["description"], total=total, openid=openid, notify_url=body["notify_url"],
                      prepay_id=f"wx{time.strftime('%d%H%M%S')}{secrets.token_hex(12)}0000",
                      time_expire=body.get("time_expire"), attach=body.get("attach"))
        state.orders[order.out_trade_no] = order
    return _pay_ok({"prepay_id": order.prepay_id})


def query_order(out_trade_no: str) -> Response:
    """GET /v3/pay/transactions/out-trade-no/{no}?mchid=: NOTPAY without payment fields, or the paid order."""
    mchid = _verify_pay_request()
    if isinstance(mchid, Response):
        return mchid
    if request.args.get("mchid") != mchid:
        return _param_error("/query/mchid", "mchid 必填且须与商户号一致")
    state = _state()
    with state.lock:
        order = state.orders.get(out_trade_no)
        if order is None:
            return _pay_error(404, "ORDER_NOT_EXIST", "订单不存在")
        return _pay_ok(_transaction(order))


def close_order(out_trade_no: str) -> Response:
    """POST /v3/pay/transactions/out-trade-no/{no}/close: 204; a paid order cannot be closed."""
    mchid = _verify_pay_request()
    if isinstance(mchid, Response):
        return mchid
    body = _json_body()
    if not isinstance(body, dict) or body.get("mchid") != mchid:
        return _param_error("/body/mchid", "mchid 必填且须与商户号一致")
    state = _state()
    with state.lock:
        order = state.orders.get(out_trade_no)
        if order is None:
            return _pay_error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.trade_state in ("SUCCESS", "REFUND"):
            return _pay_error(400, "ORDERPAID", "该订单已支付")
        order.trade_state = "CLOSED"
    return _pay_ok(None, 204)


def create_refund() -> Response:
    """POST /v3/refund/domestic/refunds: PROCESSING; the REFUND.* notification comes on completion."""
    mchid = _verify_pay_request()
    if isinstance(mchid, Response):
        return mchid
    body = _json_body()
    if not isinstance(body, dict):
        return _param_error("/body", "请求体不是有效的 JSON")
    amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
    refund_fen, total = amount.get("refund"), amount.get("total")
    if not _OUT_REFUND_NO_RE.match(str(body.get("out_refund_no") or "")):
        return _param_error("/body/out_refund_no", "商户退款单号格式错误")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund_fen, total)):
        return _param_error("/body/amount", "退款金额和原订单金额必须是大于 0 的整数（分）")
    if amount.get("currency") != "CNY":
        return _param_error("/body/amount/currency", "退款币种必填，且只支持 CNY")
    if body.get("notify_url") is not None and not _valid_notify_url(body["notify_url"]):
        return _param_error("/body/notify_url", "通知地址格式错误")
    state = _state()
    with state.lock:
        order = state.orders.get(body.get("out_trade_no") or "")
        if order is None and body.get("transaction_id"):
            order = next((o for o in state.orders.values() if o.transaction_id == body["transaction_id"]), None)
        if order is None or order.mchid != mchid:
            return _pay_error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = state.refunds.get(body["out_refund_no"])
        if existing is not None:
            if existing.refund != refund_fen or existing.out_trade_no != order.out_trade_no:
                return _pay_error(400, "INVALID_REQUEST", "退款单号已存在，请求参数与之前不一致")
            return _pay_ok(_refund_payload(existing))
        if order.transaction_id is None:
            return _pay_error(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != order.total:
            return _pay_error(400, "INVALID_REQUEST", "订单金额与实际金额不一致")
        refunded = sum(r.refund for r in state.refunds.values()
                       if r.out_trade_no == order.out_trade_no and r.status in ("PROCESSING", "SUCCESS"))
        if refund_fen > order.total - refunded:
            return _pay_error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = Refund(out_refund_no=body["out_refund_no"], refund_id=f"50{secrets.randbelow(10**27):027d}",
                        out_trade_no=order.out_trade_no, transaction_id=order.transaction_id, refund=refund_fen,
                        total=total, reason=body.get("reason"), notify_url=body.get("notify_url"),
                        create_time=_now_text())
        state.refunds[refund.out_refund_no] = refund
        order.trade_state = "REFUND"
        resp = _pay_ok(_refund_payload(refund))
    if state.refund_auto_complete:
        # After the answer is sent, as WeChat does: the caller never sees the notification first.
        app = current_app._get_current_object()
        resp.call_on_close(lambda: _complete_refund_in(app, refund.out_refund_no))
    return resp


def query_refund(out_refund_no: str) -> Response:
    """GET /v3/refund/domestic/refunds/{out_refund_no}."""
    mchid = _verify_pay_request()
    if isinstance(mchid, Response):
        return mchid
    state = _state()
    with state.lock:
        refund = state.refunds.get(out_refund_no)
        if refund is None:
            return _pay_error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return _pay_ok(_refund_payload(refund))


# ---- notifications and control API ----------------------------------------------------------------------------


def _deliver(state: FakeState, url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """POST a notification; called without the state lock, since the receiver may call the fake back."""
    record: dict[str, Any] = {"url": url, "headers": headers, "body": body.decode(), "status_code": None,
                              "error": None}
    try:
        record["status_code"] = requests.post(url, data=body, headers=headers, timeout=5).status_code
    except requests.RequestException as exc:
        record["error"] = str(exc)
    with state.lock:
        state.notifications.append(record)
    return record


def control_pay(out_trade_no: str) -> Response:
    """POST /_fake/pay/{no}/pay: the user pays; sends TRANSACTION.SUCCESS unless `{"notify": false}`."""
    state = _state()
    options = _options()
    if state.pay_keys is None:
        return _control({"error": "no pay keys"}, 409)
    with state.lock:
        order = state.orders.get(out_trade_no)
        if order is None:
            return _control({"error": "no such order"}, 404)
        if order.trade_state != "NOTPAY":
            return _control({"error": f"order is {order.trade_state}"}, 409)
        if order.time_expire and datetime.fromisoformat(order.time_expire).timestamp() < time.time():
            return _control({"error": "order expired"}, 409)
        order.trade_state = "SUCCESS"
        order.transaction_id = f"4200{time.strftime('%Y%m%d')}{secrets.randbelow(10**16):016d}"
        order.success_time = _now_text()
        headers, body = build_notification(state.pay_keys, "TRANSACTION.SUCCESS", _transaction(order))
        notify_url = order.notify_url
    result: dict[str, Any] = {"transaction_id": order.transaction_id, "notify_url": notify_url,
                              "headers": headers, "body": body.decode(), "status_code": None, "error": None}
    if options.get("notify", True):
        record = _deliver(state, notify_url, headers, body)
        result.update(status_code=record["status_code"], error=record["error"])
    return _control(result)


def _complete_refund(state: FakeState, out_refund_no: str, status: str = "SUCCESS",
                     notify: bool = True) -> dict[str, Any] | None:
    if state.pay_keys is None:
        return None
    with state.lock:
        refund = state.refunds.get(out_refund_no)
        if refund is None or refund.status != "PROCESSING":
            return None
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = _now_text()
        headers, body = build_notification(state.pay_keys, f"REFUND.{status}", _refund_notice(refund, state))
        # A refund without its own notify_url is reported to the order's, standing in for the merchant default.
        notify_url = refund.notify_url or state.orders[refund.out_trade_no].notify_url
    result: dict[str, Any] = {"refund_id": refund.refund_id, "notify_url": notify_url, "headers": headers,
                              "body": body.decode(), "status_code": None, "error": None}
    if notify:
        record = _deliver(state, notify_url, headers, body)
        result.update(status_code=record["status_code"], error=record["error"])
    return result


def _complete_refund_in(app: Flask, out_refund_no: str) -> None:
    _complete_refund(app.extensions["fake_wechat"], out_refund_no)


def control_complete_refund(out_refund_no: str) -> Response:
    """POST /_fake/refunds/{no}/complete `{"status": "SUCCESS"|"ABNORMAL"|"CLOSED", "notify": true}`."""
    options = _options()
    status = options.get("status", "SUCCESS")
    if status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
        return _control({"error": "status must be SUCCESS, ABNORMAL or CLOSED"}, 400)
    result = _complete_refund(_state(), out_refund_no, status, bool(options.get("notify", True)))
    if result is None:
        return _control({"error": "no such processing refund"}, 404)
    return _control(result)


def control_messages() -> Response:
    """GET /_fake/messages: the subscribe messages accepted so far."""
    state = _state()
    with state.lock:
        return _control(list(state.messages))


def control_not_subscribed() -> Response:
    """POST /_fake/not-subscribed `{"openid"}`: later messages to this user get 43101."""
    body = _options()
    if not body.get("openid"):
        return _control({"error": "openid required"}, 400)
    state = _state()
    with state.lock:
        state.not_subscribed.add(body["openid"])
    return _control({"ok": True})


def control_codes() -> Response:
    """POST /_fake/codes `{"openid", "unionid"?}`: a single-use wx.login code."""
    body = _options()
    if not body.get("openid"):
        return _control({"error": "openid required"}, 400)
    code = body.get("code") or secrets.token_hex(16)
    state = _state()
    with state.lock:
        state.codes[code] = {"openid": body["openid"], **({"unionid": body["unionid"]} if body.get("unionid") else {})}
        state.used_codes.discard(code)
    return _control({"code": code})


def control_phone_codes() -> Response:
    """POST /_fake/phone-codes `{"phone"}`: a single-use getPhoneNumber code."""
    body = _options()
    if not re.fullmatch(r"\d{5,20}", str(body.get("phone") or "")):
        return _control({"error": "phone required"}, 400)
    code = secrets.token_hex(16)
    state = _state()
    with state.lock:
        state.phone_codes[code] = body["phone"]
    return _control({"code": code})


def control_revoke_tokens() -> Response:
    """POST /_fake/tokens/revoke `{"mode": "invalid"|"expired"}`: current tokens now get 40001 / 42001."""
    mode = _options().get("mode", "invalid")
    if mode not in ("invalid", "expired"):
        return _control({"error": "mode must be invalid or expired"}, 400)
    state = _state()
    with state.lock:
        for token in state.tokens.values():
            if mode == "invalid":
                token.revoked = True
            else:
                token.expires_at = min(token.expires_at, time.time() - 1)
    return _control({"ok": True, "revoked": len(state.tokens)})


def control_faults() -> Response:
    """POST /_fake/faults `{"path_prefix", "mode": timeout|error|busy|errcode, "times", "seconds"?, "errcode"?}`."""
    body = _options()
    if not isinstance(body.get("path_prefix"), str) or body.get("mode") not in FAULT_MODES:
        return _control({"error": f"path_prefix and mode ({', '.join(FAULT_MODES)}) required"}, 400)
    fault = Fault(body["path_prefix"], body["mode"], int(body.get("times", 1)),
                  float(body["seconds"]) if body.get("seconds") is not None else None,
                  int(body["errcode"]) if body.get("errcode") is not None else None)
    state = _state()
    with state.lock:
        state.faults.append(fault)
        return _control([asdict(f) for f in state.faults])


def control_hang() -> Response:
    """POST /_fake/hang `{"path_prefix": "/sns/"}` hangs every call under the prefix; `{"path_prefix": null}` lets
    the hung calls carry on (answered late) and stops hanging. `"max_seconds"` bounds a hang (default 300)."""
    body = _options()
    prefix = body.get("path_prefix")
    if prefix is not None and not isinstance(prefix, str):
        return _control({"error": "path_prefix must be a string or null"}, 400)
    state = _state()
    with state.lock:
        if body.get("max_seconds") is not None:
            state.hang_max_seconds = float(body["max_seconds"])
        if prefix is None:
            state.hang_released.set()
            state.hang_released = threading.Event()
        state.hang_prefix = prefix
        return _control({"path_prefix": state.hang_prefix, "max_seconds": state.hang_max_seconds})


def control_config() -> Response:
    """GET/POST /_fake/config: invalid_pages, templates (allow-list or null), fault_timeout_seconds, ..."""
    state = _state()
    body = _options() if request.method == "POST" else {}
    with state.lock:
        if "invalid_pages" in body:
            state.invalid_pages = set(body["invalid_pages"] or ())
        if "templates" in body:
            state.templates = None if body["templates"] is None else set(body["templates"])
        if "fault_timeout_seconds" in body:
            state.fault_timeout_seconds = float(body["fault_timeout_seconds"])
        if "refund_auto_complete" in body:
            state.refund_auto_complete = bool(body["refund_auto_complete"])
        if "token_lifetime" in body:
            state.token_lifetime = int(body["token_lifetime"])
        return _control({"invalid_pages": sorted(state.invalid_pages),
                         "templates": None if state.templates is None else sorted(state.templates),
                         "fault_timeout_seconds": state.fault_timeout_seconds,
                         "refund_auto_complete": state.refund_auto_complete, "token_lifetime": state.token_lifetime})


def control_reset() -> Response:
    """POST /_fake/reset: forget everything (orders, tokens, messages, faults, stats, settings)."""
    _state().reset()
    return _control({"ok": True})


def control_stats() -> Response:
    """GET /_fake/stats: calls per path (faulted calls included)."""
    state = _state()
    with state.lock:
        return _control(dict(state.stats))


def control_notifications() -> Response:
    """GET /_fake/notifications: every notification sent, with the receiver's status code."""
    state = _state()
    with state.lock:
        return _control(list(state.notifications))


def control_order(out_trade_no: str) -> Response:
    """GET /_fake/orders/{no}: the fake's view of an order, for debugging the demo."""
    state = _state()
    with state.lock:
        order = state.orders.get(out_trade_no)
        if order is None:
            return _control({"error": "no such order"}, 404)
        return _control(asdict(order))


# ---- assembly -------------------------------------------------------------------------------------------------

_ROUTES: list[tuple[str, Any, list[str]]] = [
    ("/cgi-bin/token", cgi_token, ["GET"]),
    ("/cgi-bin/stable_token", stable_token, ["GET", "POST"]),
    ("/sns/jscode2session", jscode2session, ["GET"]),
    ("/wxa/business/getuserphonenumber", getuserphonenumber, ["POST"]),
    ("/wxa/getwxacodeunlimit", getwxacodeunlimit, ["POST"]),
    ("/cgi-bin/message/subscribe/send", subscribe_send, ["POST"]),
    ("/v3/pay/transactions/jsapi", jsapi_prepay, ["POST"]),
    ("/v3/pay/transactions/out-trade-no/<out_trade_no>", query_order, ["GET"]),
    ("/v3/pay/transactions/out-trade-no/<out_trade_no>/close", close_order, ["POST"]),
    ("/v3/refund/domestic/refunds", create_refund, ["POST"]),
    ("/v3/refund/domestic/refunds/<out_refund_no>", query_refund, ["GET"]),
    ("/_fake/pay/<out_trade_no>/pay", control_pay, ["POST"]),
    ("/_fake/refunds/<out_refund_no>/complete", control_complete_refund, ["POST"]),
    ("/_fake/messages", control_messages, ["GET"]),
    ("/_fake/not-subscribed", control_not_subscribed, ["POST"]),
    ("/_fake/codes", control_codes, ["POST"]),
    ("/_fake/phone-codes", control_phone_codes, ["POST"]),
    ("/_fake/tokens/revoke", control_revoke_tokens, ["POST"]),
    ("/_fake/faults", control_faults, ["POST"]),
    ("/_fake/hang", control_hang, ["POST"]),
    ("/_fake/config", control_config, ["GET", "POST"]),
    ("/_fake/reset", control_reset, ["POST"]),
    ("/_fake/stats", control_stats, ["GET"]),
    ("/_fake/notifications", control_notifications, ["GET"]),
    ("/_fake/orders/<out_trade_no>", control_order, ["GET"]),
]


def create_fake_wechat(*, appid: str, secret: str, pay_keys: dict[str, str] | None) -> Flask:
    """The fake as a Flask app; its state is `app.extensions["fake_wechat"]`. Pay routes need `pay_keys`."""
    app = Flask(__name__)
    app.extensions["fake_wechat"] = FakeState(appid, secret, dict(pay_keys) if pay_keys else None)
    app.before_request(_before_request)
    for rule, view, methods in _ROUTES:
        app.add_url_rule(rule, view.__name__, view, methods=methods)
    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request access log line (errors are still logged)."""


@dataclass
class FakeWeChatHandle:
    """A fake running in a background thread; `base_url` has no trailing slash."""

    base_url: str
    app: Flask
    state: FakeState
    server: BaseWSGIServer
    thread: threading.Thread

    def url(self, path: str) -> str:
        """An absolute URL on the fake for `path` (e.g. "/_fake/stats")."""
        return self.base_url + path

    def reset(self) -> None:
        """Forget all state (see `FakeState.reset`)."""
        self.state.reset()

    def stop(self) -> None:
        """Wake sleeping fault handlers, stop serving and close the socket."""
        self.state.stopping.set()
        self.state.wake.set()
        self.state.hang_released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakeWeChatHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fake_wechat_in_thread(*, appid: str, secret: str, pay_keys: dict[str, str] | None,
                                host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> FakeWeChatHandle:
    """Serve the fake on a threaded werkzeug server in a daemon thread (port 0 picks a free port)."""
    app = create_fake_wechat(appid=appid, secret=secret, pay_keys=pay_keys)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler if quiet else None)
    thread = threading.Thread(target=server.serve_forever, name="fake-wechat", daemon=True)
    thread.start()
    return FakeWeChatHandle(f"http://{host}:{server.server_port}", app, app.extensions["fake_wechat"], server, thread)
