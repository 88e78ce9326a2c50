"""The scan answer: its fields, in their order, built in one place.

Every answer a scan gets (accepted, duplicate or refused; one scan, a batch item, a replay, an undo) is built by
`build_answer`, with the fields of `ANSWER_FIELDS` in that order, then any extra field of the case
(`first_sold`, `details`, `time_adjusted`, `replayed`, `undone_event_id`). The hot sell path's SQL functions
(`app/scans/sql/scan_sell_*_v2.sql`, released and frozen) build their JSON themselves, for speed: the builder
follows them, and tests/scans/test_answers.py holds the two to the same keys, order and types.
The HTTP shape is `miniprogram_api/scans/schemas.py` (`ScanAnswer`, `ScanUndoAnswer`).
"""

from __future__ import annotations

from typing import Any

ANSWER_FIELDS = ("request_id", "status", "reason", "message", "action", "serial", "code_state", "sku", "quantity",
                 "stock", "alerts", "event_id", "store_id")


def sku_ref(sku_id: int, name: str, unit: str, gtin: str) -> dict[str, Any]:
    """The SKU as an answer names it."""
    return {"sku_id": sku_id, "name": name, "unit": unit, "gtin": gtin}


def build_answer(status: str, *, request_id: str | None, action: str | None, message: str, reason: str | None = None,
                 code_state: str | None = None, serial: str | None = None, sku: dict | None = None, quantity: int = 0,
                 on_hand: int | None = None, alerts: list | None = None, event_id: int | None = None,
                 store_id: int | None = None, **extra: Any) -> dict[str, Any]:
    """A scan answer: `stock` is the SKU's on hand when both are known; `extra` fields follow the common ones."""
    answer = {"request_id": request_id, "status": status, "reason": reason, "message": message, "action": action,
              "serial": serial, "code_state": code_state, "sku": sku, "quantity": quantity,
              "stock": None if sku is None or on_hand is None else {"sku_id": sku["sku_id"], "on_hand": on_hand},
              "alerts": alerts or [], "event_id": event_id, "store_id": store_id}
    answer.update(extra)
    return answer


def build_undo_answer(*, undone_event_id: int, **fields: Any) -> dict[str, Any]:
    """An undo's answer: a scan answer without a request (the undo is asked by event), naming the undone event."""
    answer = build_answer("accepted", request_id=None, action="undo", **fields)
    del answer["request_id"]
    answer["undone_event_id"] = undone_event_id
    return answer
