"""The one gateway to the mini-program server APIs (api.weixin.qq.com), over wechatpy.

Everything else in the app calls `get_wechat()` and gets plain dicts and bytes back, or an `AppError` from the
`WeChatError` family below; wechatpy and requests exceptions never leave this module.

The access token comes from `cgi-bin/stable_token`, which hands every caller the same token within its
lifetime, so workers that race to refresh do not invalidate each other. With Redis the token is shared by all
workers and refreshed under a Redis lock; without it each process keeps its own.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
from flask import Flask, current_app
from redis import Redis, RedisError
from wechatpy.client import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.session.redisstorage import RedisStorage

from app.core import metrics
from app.errors import AppError, ValidationFailed
from app.integrations.guard import check_no_open_transaction
from app.integrations.slots import CallSlots, error_kind, slots_for

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_API_BASE = "https://api.weixin.qq.com/"
SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
THING_MAX = 20

# errcodes that mean "this access token is no good": refresh once and retry.
_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
_INVALID_CODE_ERRCODES = frozenset({40029, 40163, 40226, 41008})
_RATE_LIMIT_ERRCODES = frozenset({45009, 45011})
# A token is dropped from storage this long before WeChat says it expires, so it is never used at the edge.
_TOKEN_EXPIRY_MARGIN = 60


class WeChatError(AppError):
    """WeChat refused or failed a call; `errcode` is WeChat's code (None when there was no JSON answer)."""

    status, code, message = 502, "wechat_error", "微信服务出错了，请稍后再试"
    retryable = False

    def __init__(self, message: str | None = None, *, errcode: int | None = None, errmsg: str | None = None,
                 **kwargs: Any):
        details = dict(kwargs.pop("details", None) or {})
        if errcode is not None:
            details.setdefault("errcode", errcode)
        super().__init__(message, details=details, **kwargs)
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(WeChatError):
    """WeChat timed out, could not be reached, or said it is busy (errcode -1)."""

    status, code, message = 503, "wechat_unavailable", "微信服务暂时不可用，请稍后再试"
    retryable = True


class WeChatBusy(WeChatUnavailable):
    """Every slot for WeChat calls in this process is taken (WeChat is slow or hung): refused without calling."""

    code, message = "wechat_busy", "微信服务繁忙，请稍后再试"


class WeChatInvalidCode(WeChatError):
    """The code from wx.login / getPhoneNumber is invalid, used, expired or blocked."""

    status, code, message = 400, "wechat_invalid_code", "微信授权已失效，请重试"


class WeChatRateLimited(WeChatError):
    """WeChat's per-minute quota for this call is used up."""

    status, code, message = 429, "wechat_rate_limited", "微信接口调用太频繁，请稍后再试"
    retryable = True


class WeChatNotSubscribed(WeChatError):
    """The user has not accepted (or has used up) this subscribe-message template: do not retry."""

    status, code, message = 409, "wechat_not_subscribed", "用户未订阅该消息"
    retryable = False


class _ExpiringMemoryStorage(SessionStorage):
    """wechatpy's MemoryStorage ignores the TTL; this one honours it, so a stale token is refetched."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        value, expires_at = self._data.get(key, (default, None))
        if expires_at is not None and time.monotonic() >= expires_at:
            self._data.pop(key, None)
            return default
        return value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is not None:
            self._data[key] = (value, time.monotonic() + ttl if ttl else None)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)


class _SharedWithLocalFallback(SessionStorage):
    """The token shared through Redis; while Redis does not answer, this process's own copy.

    A per-process token is safe here because it comes from `stable_token`, which hands every caller the same
    token; so a Redis outage costs each process one token fetch, not the WeChat calls themselves.
    """

    _RETRY_AFTER = 10.0  # seconds without trying Redis after it failed, so a hung Redis is not waited on each call

    def __init__(self, redis: Redis, prefix: str):
        self._shared = RedisStorage(redis, prefix=prefix)
        self._local = _ExpiringMemoryStorage()
        self._down_until = 0.0

    @property
    def redis_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _shared_call(self, name: str, *args: Any) -> tuple[bool, Any]:
        if self.redis_down:
            return False, None
        try:
            result = getattr(self._shared, name)(*args)
        except RedisError as exc:
            if not self._down_until:
                log.warning("wechat: Redis unreachable (%s): keeping the access token in this process",
                            exc.__class__.__name__)
            self._down_until = time.monotonic() + self._RETRY_AFTER
            return False, None
        if self._down_until:
            log.info("wechat: Redis answers again: the access token is shared again")
            self._down_until = 0.0
        return True, result

    def get(self, key: str, default: Any = None) -> Any:
        ok, value = self._shared_call("get", key, None)
        if ok and value is not None:
            return value
        return self._local.get(key, default) if not ok else default

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        self._local.set(key, value, ttl)
        self._shared_call("set", key, value, ttl)

    def delete(self, key: str) -> None:
        self._local.delete(key)
        self._shared_call("delete", key)


class _Client(WeChatClient):
    """wechatpy's client pointed at `api_base`, with a stable_token fetch that has a timeout and a lock."""

    def __init__(self, appid: str, secret: str, *, api_base: str, timeout: float | tuple[float, float],
                 session: SessionStorage, redis: Redis | None, lock_name: str):
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        # requests takes (connect, read); the Redis lock is sized on the read wait.
        self._read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        self.api_base = api_base
        # Instance attributes win over wechatpy's class attributes; `wxa` is built per client instance.
        self.API_BASE_URL = api_base + "cgi-bin/"
        self.wxa.API_BASE_URL = api_base
        self._redis = redis
        self._lock_name = lock_name
        self._thread_lock = threading.Lock()

    def fetch_access_token(self) -> dict[str, Any]:
        """Fetch the stable token (wechatpy hard-codes `cgi-bin/token`, which rotates, and sets no timeout)."""
        res = self._http.post(
            self.api_base + "cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                  "force_refresh": False},
            timeout=self.timeout,
        )
        try:
            res.raise_for_status()
            result = res.json()
        except requests.HTTPError:
            raise WeChatClientException(None, None, client=self, request=res.request, response=res) from None
        except ValueError:
            raise WeChatClientException(None, "token answer is not JSON", client=self, response=res) from None
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self,
                                        request=res.request, response=res)
        expires_in = int(result.get("expires_in") or 7200)
        self.session.set(self.access_token_key, result["access_token"],
                         max(expires_in - _TOKEN_EXPIRY_MARGIN, 1))
        self.expires_at = int(time.time()) + expires_in
        log.info("wechat: fetched access token (expires in %s s)", expires_in)
        return result

    @property
    def access_token(self) -> str:
        """The shared token, fetched on first use (storage TTLs handle expiry, not `expires_at`)."""
        return self.session.get(self.access_token_key) or self.refresh_access_token()

    def refresh_access_token(self, stale: str | None = None) -> str:
        """Fetch a token unless another worker already replaced `stale` while we waited for the lock."""
        with self._refresh_lock():
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current
            return self.fetch_access_token()["access_token"]

    @contextlib.contextmanager
    def _refresh_lock(self) -> Iterator[None]:
        if self._redis is None or getattr(self.session, "redis_down", False):
            with self._thread_lock:
                yield
            return
        lock = self._redis.lock(self._lock_name, timeout=self._read_timeout * 3 + 5,
                                blocking_timeout=self._read_timeout * 2)
        try:
            acquired = lock.acquire()
        except RedisError as exc:
            acquired, why = False, f"unavailable ({exc.__class__.__name__})"
        else:
            why = "busy"
        if not acquired:
            # stable_token does not rotate, so fetching without the lock is only wasteful, never harmful.
            log.warning("wechat: token lock %s, fetching without it", why)
        try:
            yield
        finally:
            if acquired:
                with contextlib.suppress(RedisError):
                    lock.release()


class WeChatGateway:
    """Mini-program server APIs: login, phone number, mini-program codes and subscribe messages."""

    def __init__(self, appid: str, secret: str, api_base: str, timeout: float = 3.0, redis: Redis | None = None,
                 token_prefix: str = "wechat", *, connect_timeout: float | None = None,
                 slots: CallSlots | None = None):
        self.appid = appid
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        # (connect, read) when a connect timeout is given: a WeChat that does not accept fails fast.
        self.timeout: float | tuple[float, float] = (connect_timeout, timeout) if connect_timeout else timeout
        self._slots = slots
        storage: SessionStorage = _SharedWithLocalFallback(redis, prefix=token_prefix) if redis is not None \
            else _ExpiringMemoryStorage()
        self._client = _Client(appid, secret, api_base=self.api_base, timeout=self.timeout, session=storage,
                               redis=redis, lock_name=f"{token_prefix}:{appid}:token-lock")

    def close(self) -> None:
        """Close pooled HTTP connections (the next call opens new ones)."""
        self._client._http.close()

    def code_to_session(self, js_code: str) -> dict[str, str]:
        """Exchange a wx.login code for `{"openid", "session_key", "unionid"?}`; never send session_key on."""
        params = [("appid", self.appid), ("secret", self._client.secret), ("js_code", js_code),
                  ("grant_type", "authorization_code")]
        # jscode2session needs no access token, but wechatpy adds one to any dict of params (so a login could
        # fail on a token problem); a list of pairs is passed through untouched.
        result = self._call("wechat.jscode2session", lambda: self._client.get("sns/jscode2session", params=params,
                                                     api_base_url=self.api_base))
        if not result.get("openid") or not result.get("session_key"):
            raise WeChatError("微信登录返回的数据不完整")
        out = {"openid": result["openid"], "session_key": result["session_key"]}
        if result.get("unionid"):
            out["unionid"] = result["unionid"]
        return out

    def get_phone_number(self, code: str) -> dict[str, str]:
        """Exchange a getPhoneNumber code for `{"phone", "pure_phone", "country_code"}`."""
        # Not in wechatpy 1.8.18; `post` rather than `_post`, which only adds a DeprecationWarning.
        result = self._call("wechat.getuserphonenumber", lambda: self._client.post(
            "wxa/business/getuserphonenumber", data={"code": code}, api_base_url=self.api_base))
        info = result.get("phone_info") or {}
        if not info.get("phoneNumber"):
            raise WeChatError("微信返回的手机号数据不完整")
        return {"phone": info["phoneNumber"], "pure_phone": info.get("purePhoneNumber") or info["phoneNumber"],
                "country_code": str(info.get("countryCode", "86"))}

    def get_wxa_code_unlimited(self, scene: str, page: str | None = None, width: int = 430, *,
                               check_path: bool | None = None, env_version: str | None = None) -> bytes:
        """Render a mini-program code for `scene` (≤32 chars); returns the image bytes. Keep them: 5,000/min."""
        if not isinstance(scene, str) or not SCENE_RE.match(scene):
            raise ValidationFailed("小程序码参数无效", details={"fields": {"scene": "最多 32 个字母、数字或常用符号"}})
        if page is not None and (not page or page.startswith("/") or "?" in page):
            raise ValidationFailed("小程序页面路径无效", details={"fields": {"page": "不能以 / 开头，也不能带参数"}})
        if not 280 <= width <= 1280:
            raise ValidationFailed("小程序码尺寸无效", details={"fields": {"width": "280 到 1280"}})
        body: dict[str, Any] = {"scene": scene, "width": width}
        if page is not None:
            body["page"] = page
        if check_path is not None:
            body["check_path"] = check_path
        if env_version is not None:
            body["env_version"] = env_version
        # wechatpy hands back the raw response when the body is not JSON (JSON errors already raised).
        res = self._call("wechat.getwxacodeunlimit", lambda: self._client.post(
            "wxa/getwxacodeunlimit", data=body, api_base_url=self.api_base))
        if isinstance(res, requests.Response) and res.headers.get("Content-Type", "").startswith("image/"):
            return res.content
        raise WeChatError("微信没有返回小程序码图片")

    def send_subscribe_message(self, openid: str, template_id: str, data: Mapping[str, Any],
                               page: str | None = None, *, miniprogram_state: str | None = None) -> None:
        """Send a subscribe message; `data` values are strings or `{"value": ...}`; thing.* cut to 20 chars."""
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id, "lang": "zh_CN",
                                   "data": {key: {"value": _fit(key, value)} for key, value in data.items()}}
        if page is not None:
            payload["page"] = page
        if miniprogram_state is not None:
            payload["miniprogram_state"] = miniprogram_state
        self._call("wechat.subscribe_send", lambda: self._client.post(
            "cgi-bin/message/subscribe/send", data=payload, api_base_url=self.api_base))

    def _call(self, api: str, func: Callable[[], T]) -> T:
        """Run one API call in one of this process's WeChat slots (WeChatBusy at once when none is free), timed
        as `api` (`wechat_call_duration_seconds`, `wechat_call_errors_total`)."""
        check_no_open_transaction("WeChat")
        if self._slots is None:
            return self._call_timed(api, func)
        try:
            with self._slots.slot(WeChatBusy):
                return self._call_timed(api, func)
        except WeChatBusy:
            metrics.call_refused(api, WeChatBusy.code)
            raise

    def _call_timed(self, api: str, func: Callable[[], T]) -> T:
        with metrics.timed_call(api, error_kind):
            return self._call_now(func)

    def _call_now(self, func: Callable[[], T]) -> T:
        """Run one API call: refresh the token once on 40001/42001, and turn every failure into a WeChatError."""
        client = self._client
        for attempt in (1, 2):
            try:
                if attempt == 2:
                    # The stored token was just refused; replace it unless another worker already has.
                    client.refresh_access_token(stale=client.session.get(client.access_token_key))
                return func()
            except WeChatClientException as exc:
                if attempt == 1 and exc.errcode in _TOKEN_ERRCODES:
                    log.info("wechat: access token rejected (%s), refreshing once", exc.errcode)
                    continue
                raise _translate(exc) from exc
            except requests.Timeout as exc:
                log.warning("wechat: timed out after %s s", self.timeout)
                raise WeChatUnavailable("微信服务响应超时，请稍后再试") from exc
            except requests.RequestException as exc:
                log.warning("wechat: cannot reach %s: %s", self.api_base, exc)
                raise WeChatUnavailable() from exc
            except RedisError as exc:
                log.warning("wechat: token storage unavailable: %s", exc)
                raise WeChatUnavailable() from exc
        raise AssertionError("unreachable")


def _fit(key: str, value: Any) -> str:
    """A template value as text; `thing` fields allow 20 characters, so longer ones end in an ellipsis."""
    text = str(value.get("value", "") if isinstance(value, Mapping) else value)
    if key.startswith("thing") and len(text) > THING_MAX:
        text = text[:THING_MAX - 1] + "…"
    return text


def _translate(exc: WeChatClientException) -> WeChatError:
    """Map a wechatpy exception to our error family, by errcode only (errmsg wording varies)."""
    errcode, errmsg = exc.errcode, exc.errmsg
    log.warning("wechat: errcode=%s errmsg=%s", errcode, errmsg)
    if errcode is None:
        status = exc.response.status_code if exc.response is not None else None
        if status is None or status >= 500:
            return WeChatUnavailable(errmsg=errmsg)
        return WeChatError(errmsg=errmsg)
    errcode = int(errcode)
    if errcode == -1:
        return WeChatUnavailable(errcode=errcode, errmsg=errmsg)
    if errcode in _INVALID_CODE_ERRCODES:
        return WeChatInvalidCode(errcode=errcode, errmsg=errmsg)
    if errcode in _RATE_LIMIT_ERRCODES:
        return WeChatRateLimited(errcode=errcode, errmsg=errmsg)
    if errcode == 43101:
        return WeChatNotSubscribed(errcode=errcode, errmsg=errmsg)
    return WeChatError(errcode=errcode, errmsg=errmsg)


_build_lock = threading.Lock()


class _Pending:
    """Stands in `app.extensions["wechat"]` until first use, so an app starts with WeChat unreachable."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config


def init_app(app: Flask) -> None:
    """Register the gateway; it is built from `app.config` on the first `get_wechat()`."""
    app.extensions["wechat"] = _Pending(app.config)


def build_gateway(config: Mapping[str, Any], slots: CallSlots | None = None) -> WeChatGateway:
    """A gateway from WECHAT_APPID, WECHAT_SECRET, WECHAT_API_BASE, WECHAT_(CONNECT_)TIMEOUT and REDIS_URL."""
    appid, secret = config.get("WECHAT_APPID"), config.get("WECHAT_SECRET")
    if not appid or not secret:
        raise WeChatUnavailable("微信小程序未配置")
    redis_url = config.get("REDIS_URL")
    timeout = float(config.get("WECHAT_TIMEOUT") or 3.0)
    connect_timeout = float(config.get("WECHAT_CONNECT_TIMEOUT") or 0) or None
    # Bounded socket waits: a hung Redis must not hang every WeChat call behind it.
    redis = Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout) if redis_url else None
    return WeChatGateway(appid, secret, config.get("WECHAT_API_BASE") or DEFAULT_API_BASE, timeout=timeout,
                         redis=redis, connect_timeout=connect_timeout, slots=slots)


def get_wechat() -> WeChatGateway:
    """The app's WeChat gateway (tests may put their own object in `app.extensions["wechat"]`)."""
    extensions = current_app.extensions
    gateway = extensions["wechat"]
    if isinstance(gateway, _Pending):
        with _build_lock:
            gateway = extensions["wechat"]
            if isinstance(gateway, _Pending):
                gateway = extensions["wechat"] = build_gateway(gateway.config, slots_for(current_app))
    return gateway
