"""The one gateway to WeChat Pay API v3 (api.mch.weixin.qq.com), over wechatpayv3, in "WeChat Pay public key" mode.

Requests are signed with the merchant key by wechatpayv3 and its answers verified with the WeChat Pay public key.
Notifications are verified here rather than by wechatpayv3, which has no freshness check, cannot tell a probe from
a forgery, and answers most failures with a bare `None`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app
from wechatpayv3 import WeChatPay, WeChatPayType

from app.core import metrics
from app.errors import AppError, ValidationFailed
from app.integrations.guard import check_no_open_transaction
from app.integrations.slots import CallSlots, error_kind, slots_for

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.mch.weixin.qq.com"
DEMO_KEYS_FILENAME = "wechatpay-demo-keys.json"
DEMO_MCHID = "1900000109"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
NOTIFICATION_MAX_SKEW = 300  # seconds either way, as the official SDKs do
CHINA_TZ = timezone(timedelta(hours=8))

# `|` is allowed by WeChat but requests percent-encodes it after wechatpayv3 has signed the raw path.
OUT_TRADE_NO_RE = re.compile(r"^[0-9A-Za-z_\-*]{6,32}$")
OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-*@]{1,64}$")


class PayError(AppError):
    """WeChat Pay refused a call; `pay_code` is its error code (e.g. INVALID_REQUEST), `http_status` its status."""

    status, code, message = 502, "pay_error", "微信支付出错了，请稍后再试"
    retryable = False

    def __init__(self, message: str | None = None, *, pay_code: str | None = None, http_status: int | None = None,
                 pay_message: str | None = None, **kwargs: Any):
        details = dict(kwargs.pop("details", None) or {})
        if pay_code:
            details.setdefault("pay_code", pay_code)
        super().__init__(message, details=details, **kwargs)
        self.pay_code = pay_code
        self.http_status = http_status
        self.pay_message = pay_message


class PayUnavailable(PayError):
    """WeChat Pay timed out, could not be reached, is busy (5xx) or is not configured."""

    status, code, message = 503, "pay_unavailable", "微信支付暂时不可用，请稍后再试"
    retryable = True


class PayBusy(PayUnavailable):
    """Every slot for WeChat calls in this process is taken (WeChat is slow or hung): refused without calling."""

    code, message = "pay_busy", "微信支付繁忙，请稍后再试"


class PayOrderNotFound(PayError):
    """WeChat Pay has no such order (or refund)."""

    status, code, message = 404, "pay_order_not_found", "微信支付中找不到这笔订单"


class InvalidNotification(AppError):
    """A callback that is not provably from WeChat Pay, is stale, or cannot be read; `details["reason"]` says why."""

    status, code, message = 400, "invalid_notification", "支付通知无效"


class WeChatPayGateway:
    """JSAPI (mini-program) payments, queries, refunds and verified notifications."""

    def __init__(self, mchid: str, appid: str, private_key_pem: str, cert_serial_no: str, apiv3_key: str,
                 public_key_pem: str, public_key_id: str, notify_url: str, api_base: str = DEFAULT_API_BASE,
                 timeout: float = 3.0, *, connect_timeout: float | None = None, slots: CallSlots | None = None):
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")
        self.mchid = mchid
        self.appid = appid
        self.notify_url = notify_url
        self.public_key_id = public_key_id
        # (connect, read) when a connect timeout is given: a WeChat Pay that does not accept fails fast.
        self.timeout: float | tuple[float, float] = (connect_timeout, timeout) if connect_timeout else timeout
        self._slots = slots
        self._pay = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=mchid, private_key=private_key_pem,
                              cert_serial_no=cert_serial_no, appid=appid, apiv3_key=apiv3_key,
                              notify_url=notify_url, public_key=public_key_pem, public_key_id=public_key_id,
                              timeout=self.timeout)
        # wechatpayv3 has no base-URL setting; Core builds every URL from this attribute.
        self._pay._core._gate_way = api_base.rstrip("/")
        self._public_key = serialization.load_pem_public_key(public_key_pem.encode())
        self._aes = AESGCM(apiv3_key.encode())

    def create_jsapi_prepay(self, *, out_trade_no: str, description: str, total_fen: int, openid: str,
                            time_expire: datetime | None = None) -> str:
        """Place a JSAPI order and return its prepay_id (valid 2 hours; same order and amount → same id)."""
        _check_out_trade_no(out_trade_no)
        _check_fen("total_fen", total_fen)
        if not description or len(description) > 127:
            raise ValidationFailed("商品描述无效", details={"fields": {"description": "1 到 127 个字"}})
        if not openid:
            raise ValidationFailed("缺少付款人", details={"fields": {"openid": "必填"}})
        expire = None
        if time_expire is not None:
            if time_expire.tzinfo is None:
                raise ValueError("time_expire must be timezone-aware")
            expire = time_expire.astimezone(CHINA_TZ).isoformat(timespec="seconds")
        result = self._request("pay.jsapi", lambda: self._pay.pay(
            description=description, out_trade_no=out_trade_no, amount={"total": total_fen, "currency": "CNY"},
            payer={"openid": openid}, time_expire=expire, pay_type=WeChatPayType.JSAPI))
        prepay_id = result.get("prepay_id")
        if not prepay_id:
            raise PayError("微信支付没有返回预支付单号")
        return prepay_id

    def request_payment_params(self, prepay_id: str) -> dict[str, str]:
        """The arguments for wx.requestPayment, signed with the merchant key (appId is signed, not sent)."""
        timestamp = str(int(time.time()))
        nonce = uuid.uuid4().hex.upper()
        package = f"prepay_id={prepay_id}"
        return {"timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": self._pay.sign([self.appid, timestamp, nonce, package])}

    def query_by_out_trade_no(self, out_trade_no: str) -> dict[str, Any]:
        """The order as WeChat Pay sees it (`trade_state` NOTPAY, SUCCESS, REFUND, CLOSED, ...)."""
        _check_out_trade_no(out_trade_no)
        return self._request("pay.query", lambda: self._pay.query(out_trade_no=out_trade_no))

    def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order so it can no longer be paid."""
        _check_out_trade_no(out_trade_no)
        self._request("pay.close", lambda: self._pay.close(out_trade_no=out_trade_no))

    def refund(self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str,
               notify_url: str | None = None) -> dict[str, Any]:
        """Ask for a refund; the answer usually says PROCESSING and a REFUND.* notification follows."""
        _check_out_trade_no(out_trade_no)
        if not OUT_REFUND_NO_RE.match(out_refund_no or ""):
            raise ValidationFailed("退款单号无效", details={"fields": {"out_refund_no": "1 到 64 个字母、数字或 _-*@"}})
        _check_fen("refund_fen", refund_fen)
        _check_fen("total_fen", total_fen)
        if refund_fen > total_fen:
            raise ValidationFailed("退款金额超过订单金额", details={"fields": {"refund_fen": "不能超过订单金额"}})
        if reason and len(reason) > 80:
            raise ValidationFailed("退款原因太长", details={"fields": {"reason": "最多 80 个字"}})
        return self._request("pay.refund", lambda: self._pay.refund(
            out_refund_no=out_refund_no, out_trade_no=out_trade_no, reason=reason or None,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            notify_url=notify_url or self.notify_url))

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        """The refund as WeChat Pay sees it (`status` PROCESSING, SUCCESS, CLOSED or ABNORMAL)."""
        return self._request("pay.query_refund", lambda: self._pay.query_refund(out_refund_no=out_refund_no))

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime | float | None = None) -> dict[str, Any]:
        """Verify and decrypt a callback: `{"id", "event_type", "resource"}`, or raise InvalidNotification."""
        h = {key.lower(): value for key, value in headers.items()}
        signature, timestamp = h.get("wechatpay-signature"), h.get("wechatpay-timestamp")
        nonce, serial = h.get("wechatpay-nonce"), h.get("wechatpay-serial")
        if not (signature and timestamp and nonce and serial):
            raise _invalid("missing_headers")
        if h.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise _invalid("unsupported_signature_type")
        if serial != self.public_key_id:
            raise _invalid("unknown_serial")
        now_ts = now.timestamp() if isinstance(now, datetime) else (time.time() if now is None else float(now))
        try:
            skew = abs(now_ts - int(timestamp))
        except ValueError:
            raise _invalid("bad_timestamp") from None
        if skew > NOTIFICATION_MAX_SKEW:
            raise _invalid("stale_timestamp")
        if signature.startswith("WECHATPAY/SIGNTEST/"):
            # WeChat's probes check that we refuse what we cannot verify; they must never be accepted.
            raise _invalid("signature_probe")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
            self._public_key.verify(raw_signature, f"{timestamp}\n{nonce}\n".encode() + body + b"\n",
                                    padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise _invalid("bad_signature") from None
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise _invalid("unsupported_algorithm")
            plaintext = self._aes.decrypt(resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                                          (resource.get("associated_data") or "").encode())
        except InvalidTag:
            raise _invalid("undecryptable") from None
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise _invalid("malformed") from None
        try:
            decrypted = json.loads(plaintext)
        except ValueError:
            raise _invalid("malformed") from None
        if not isinstance(decrypted, dict) or not envelope.get("id") or not envelope.get("event_type"):
            raise _invalid("malformed")
        return {"id": envelope["id"], "event_type": envelope["event_type"], "resource": decrypted}

    def _request(self, api: str, call: Callable[[], tuple[int, Any]]) -> dict[str, Any]:
        """Run one wechatpayv3 call and return the decoded JSON (or {} for 204), mapping every failure; timed as
        `api` (`wechat_call_duration_seconds`, `wechat_call_errors_total`)."""
        check_no_open_transaction("WeChat Pay")
        if self._slots is None:
            return self._request_timed(api, call)
        try:
            with self._slots.slot(PayBusy):
                return self._request_timed(api, call)
        except PayBusy:
            metrics.call_refused(api, PayBusy.code)
            raise

    def _request_timed(self, api: str, call: Callable[[], tuple[int, Any]]) -> dict[str, Any]:
        with metrics.timed_call(api, error_kind):
            return self._request_now(call)

    def _request_now(self, call: Callable[[], tuple[int, Any]]) -> dict[str, Any]:
        try:
            status, body = call()
        except requests.Timeout as exc:
            log.warning("wechatpay: timed out after %s s", self.timeout)
            raise PayUnavailable("微信支付响应超时，请稍后再试") from exc
        except requests.RequestException as exc:
            log.warning("wechatpay: cannot reach WeChat Pay: %s", exc)
            raise PayUnavailable() from exc
        except Exception as exc:
            # wechatpayv3 raises bare Exception, e.g. "failed to verify the signature" on a forged answer.
            log.error("wechatpay: %s", exc)
            raise PayError("微信支付的应答无法验证") from exc
        data = _decode(body)
        if 200 <= status < 300:
            return data if isinstance(data, dict) else {}
        pay_code = data.get("code") if isinstance(data, dict) else None
        pay_message = data.get("message") if isinstance(data, dict) else None
        log.warning("wechatpay: HTTP %s %s %s", status, pay_code, pay_message)
        kwargs = {"pay_code": pay_code, "http_status": status, "pay_message": pay_message}
        if status == 404:
            raise PayOrderNotFound(**kwargs)
        if status == 429 or status >= 500:
            raise PayUnavailable(**kwargs)
        raise PayError(**kwargs)


def _decode(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return None


def _invalid(reason: str) -> InvalidNotification:
    log.warning("wechatpay: rejected a notification: %s", reason)
    return InvalidNotification(details={"reason": reason})


def _check_out_trade_no(value: str) -> None:
    if not OUT_TRADE_NO_RE.match(value or ""):
        raise ValidationFailed("订单号无效", details={"fields": {"out_trade_no": "6 到 32 个字母、数字或 _-*"}})


def _check_fen(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed("金额无效", details={"fields": {name: "必须是正整数（分）"}})


# ---- keys ---------------------------------------------------------------------------------------------------


def generate_pay_keys(mchid: str = DEMO_MCHID) -> dict[str, str]:
    """Fresh keys and ids for both sides of WeChat Pay (merchant and platform), for tests and the demo."""
    merchant, platform = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    alphabet = string.ascii_letters + string.digits
    return {
        "mchid": mchid,
        "merchant_private_key": _private_pem(merchant),
        "merchant_public_key": _public_pem(merchant),
        "merchant_cert_serial_no": secrets.token_hex(20).upper(),
        "platform_private_key": _private_pem(platform),
        "platform_public_key": _public_pem(platform),
        "public_key_id": "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(34)),
        "apiv3_key": "".join(secrets.choice(alphabet) for _ in range(32)),
    }


def write_demo_pay_keys(directory: str | os.PathLike[str], filename: str = DEMO_KEYS_FILENAME) -> dict[str, str]:
    """Create the demo keys file once (0600, never committed) and return its keys."""
    path = Path(directory) / filename
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{filename}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(generate_pay_keys(), fh, indent=2)
        try:
            # link() fails if another process won the race; then everyone uses the winner's keys.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return json.loads(path.read_text(encoding="utf-8"))


def pay_config_from_keys(keys: Mapping[str, str]) -> dict[str, str]:
    """The merchant-side WECHATPAY_* settings for a keys dict from `generate_pay_keys`."""
    return {
        "WECHATPAY_MCHID": keys["mchid"],
        "WECHATPAY_PRIVATE_KEY": keys["merchant_private_key"],
        "WECHATPAY_CERT_SERIAL_NO": keys["merchant_cert_serial_no"],
        "WECHATPAY_APIV3_KEY": keys["apiv3_key"],
        "WECHATPAY_PUBLIC_KEY": keys["platform_public_key"],
        "WECHATPAY_PUBLIC_KEY_ID": keys["public_key_id"],
    }


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# ---- Flask wiring -------------------------------------------------------------------------------------------

_REQUIRED = ("WECHATPAY_MCHID", "WECHAT_APPID", "WECHATPAY_PRIVATE_KEY", "WECHATPAY_CERT_SERIAL_NO",
             "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_NOTIFY_URL")
_build_lock = threading.Lock()


class _Pending:
    """Stands in `app.extensions["wechatpay"]` until first use, so an app without pay keys still starts."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config


def init_app(app: Flask) -> None:
    """Register the gateway; it is built from `app.config` on the first `get_wechatpay()`."""
    app.extensions["wechatpay"] = _Pending(app.config)


def build_gateway(config: Mapping[str, Any], slots: CallSlots | None = None) -> WeChatPayGateway:
    """A gateway from the WECHATPAY_* settings; PayUnavailable if they are missing or unusable."""
    missing = [key for key in _REQUIRED if not config.get(key)]
    if missing:
        log.error("wechatpay: not configured, missing %s", ", ".join(missing))
        raise PayUnavailable("微信支付未配置")
    try:
        return WeChatPayGateway(
            config["WECHATPAY_MCHID"], config["WECHAT_APPID"], config["WECHATPAY_PRIVATE_KEY"],
            config["WECHATPAY_CERT_SERIAL_NO"], config["WECHATPAY_APIV3_KEY"], config["WECHATPAY_PUBLIC_KEY"],
            config["WECHATPAY_PUBLIC_KEY_ID"], config["WECHATPAY_NOTIFY_URL"],
            config.get("WECHATPAY_API_BASE") or DEFAULT_API_BASE, timeout=float(config.get("WECHAT_TIMEOUT") or 3.0),
            connect_timeout=float(config.get("WECHAT_CONNECT_TIMEOUT") or 0) or None, slots=slots)
    except Exception as exc:  # bad PEM text or key length: wechatpayv3 raises bare Exception
        log.error("wechatpay: settings are unusable: %s", exc)
        raise PayUnavailable("微信支付配置有误") from exc


def get_wechatpay() -> WeChatPayGateway:
    """The app's WeChat Pay gateway; raises PayUnavailable while it is not configured."""
    extensions = current_app.extensions
    gateway = extensions["wechatpay"]
    if isinstance(gateway, _Pending):
        with _build_lock:
            gateway = extensions["wechatpay"]
            if isinstance(gateway, _Pending):
                gateway = extensions["wechatpay"] = build_gateway(gateway.config, slots_for(current_app))
    return gateway
