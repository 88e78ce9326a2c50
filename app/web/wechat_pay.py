"""`POST /api/wechat/pay/notify` (and `/api/wechat/pay/refund-notify`): WeChat Pay v3 callbacks.

The gateway verifies the signature and the timestamp's freshness and decrypts; then the order and amount are
checked and the payment is booked once per WeChat transaction id. WeChat wants 200/204 on success and
`{"code": "FAIL", "message": "失败"}` with a 4xx/5xx otherwise (it then redelivers).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from flask_smorest import Api, Blueprint

from app.errors import AppError
from app.integrations.wechatpay import get_wechatpay

log = logging.getLogger(__name__)

blp = Blueprint("wechat_pay_callbacks", __name__, description="WeChat Pay v3 callbacks (signed by WeChat Pay)")

_DOC = {
    "description": "Signed by WeChat Pay (Wechatpay-Signature, -Timestamp, -Nonce, -Serial headers); the resource is "
                   "AES-256-GCM encrypted with the APIv3 key. Answers 204 when booked or already booked; 4xx/5xx "
                   "`{\"code\": \"FAIL\", \"message\": \"失败\"}` when refused (forged, stale, tampered, wrong "
                   "amount, unknown order) or not processable now, and then nothing changed.",
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
    "responses": {"204": {"description": "booked"}, "400": {"description": "refused"},
                  "500": {"description": "try again later"}},
}


def _fail(status: int) -> tuple[Response, int]:
    return jsonify({"code": "FAIL", "message": "失败"}), status


def _handle() -> tuple[Response, int] | tuple[str, int]:
    from app.orders import payments

    try:
        gateway = get_wechatpay()
        note = gateway.parse_notification(request.headers, request.get_data(cache=False))
    except AppError as exc:  # InvalidNotification (400) or PayUnavailable (not configured)
        log.warning("pay notify refused: %s %s", exc.code, exc.details)
        return _fail(400 if exc.status < 500 else 500)
    resource, event = note["resource"], note["event_type"]
    if resource.get("mchid", gateway.mchid) != gateway.mchid or resource.get("appid", gateway.appid) != gateway.appid:
        log.warning("pay notify %s for another merchant or app refused", note["id"])
        return _fail(400)
    try:
        if event == "TRANSACTION.SUCCESS":
            if resource.get("trade_state") != "SUCCESS":
                return _fail(400)
            amount = resource.get("amount") or {}
            total = amount.get("total")
            if not isinstance(total, int) or not resource.get("transaction_id") or not resource.get("out_trade_no"):
                return _fail(400)
            outcome = payments.book_wechat_payment(out_trade_no=resource["out_trade_no"],
                                                   transaction_id=resource["transaction_id"], amount_fen=total,
                                                   notification_id=note["id"], event_type=event)
        elif event.startswith("REFUND."):
            if not resource.get("out_refund_no"):
                return _fail(400)
            outcome = payments.book_refund_result(out_refund_no=resource["out_refund_no"],
                                                  refund_status=resource.get("refund_status") or event[7:],
                                                  notification_id=note["id"], event_type=event)
        else:
            # Event types we do not act on are acknowledged so WeChat stops redelivering them.
            outcome = "ignored"
    except AppError as exc:  # unknown order, wrong amount: refused, and nothing was written
        log.warning("pay notify %s refused: %s %s", note["id"], exc.code, exc.details)
        return _fail(exc.status if exc.status < 500 else 500)
    except Exception:
        log.exception("pay notify %s failed", note["id"])
        return _fail(500)
    log.info("pay notify %s %s: %s", note["id"], event, outcome)
    return "", 204


@blp.route("/api/wechat/pay/notify", methods=["POST"])
@blp.doc(**_DOC)
def pay_notify():
    """WeChat Pay v3 callback: verify, decrypt, book the payment (or refund) exactly once."""
    return _handle()


@blp.route("/api/wechat/pay/refund-notify", methods=["POST"])
@blp.doc(**_DOC)
def refund_notify():
    """WeChat Pay v3 refund callback (same handling; refunds may also arrive on the payment notify URL)."""
    return _handle()


def register(app: Flask, api: Api) -> None:
    """Add the callback routes (no bearer token: the WeChat Pay signature is the authentication)."""
    api.register_blueprint(blp)
