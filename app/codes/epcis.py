"""A period's scan events as a GS1 EPCIS 2.0 JSON-LD document."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.codes.parse import code_url
from app.codes.queries import events_between, visible_store_ids
from app.core.security import Principal
from app.errors import ValidationFailed

MAX_PERIOD = timedelta(days=31)

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def _epc(gtin: str, serial: str) -> str:
    return code_url(current_app.config["CODE_URL_BASE"], gtin, serial)


def _class(gtin: str) -> str:
    return f"{current_app.config['CODE_URL_BASE'].rstrip('/')}/01/{gtin}"


def _time(value: datetime) -> str:
    return value.isoformat()


def document_for(principal: Principal, since: datetime, until: datetime) -> dict[str, Any]:
    """The document of a period of at most 31 days, with the events at the stores the caller may read."""
    if until <= since or until - since > MAX_PERIOD:
        raise ValidationFailed("时间段要在 31 天以内", code="bad_period")
    return document(since, until, store_ids=visible_store_ids(principal))


def document(since: datetime, until: datetime, store_ids: sa.Select | None = None) -> dict[str, Any]:
    """ObjectEvents for shipping/receiving/selling/returning, AggregationEvents for packing, and an
    errorDeclaration on every event that was undone (`store_ids`: only the events at those stores)."""
    rows = events_between(since, until, store_ids=store_ids)
    by_id: dict[int, dict] = {}
    out: list[dict] = []
    base = current_app.config["CODE_URL_BASE"].rstrip("/")
    for e, serial, _kind, gtin, _loc_name, _loc_kind in rows:
        if e.action == "undo":
            target = by_id.get(e.corrects_event_id)
            if target is not None:
                target["errorDeclaration"] = {"declarationTime": _time(e.recorded_at),
                                              "reason": "incorrect_data",
                                              "correctiveEventIDs": [f"urn:uuid:scan-{e.id}"]}
            continue
        ev: dict[str, Any] = {
            "type": "ObjectEvent", "eventID": f"urn:uuid:scan-{e.id}", "eventTime": _time(e.event_time),
            "eventTimeZoneOffset": "+08:00", "recordTime": _time(e.recorded_at), "action": "OBSERVE",
            "bizStep": e.biz_step, "disposition": e.disposition,
        }
        if serial:
            ev["epcList"] = [_epc(gtin, serial)]
        else:
            ev["quantityList"] = [{"epcClass": _class(gtin), "quantity": e.quantity}]
        if e.action == "commission":
            ev["action"] = "ADD"
        if e.action == "pack" and serial:
            ev = {**ev, "type": "AggregationEvent", "action": "ADD", "parentID": ev.pop("epcList")[0],
                  "childEPCs": []}
        if e.location_id:
            ev["bizLocation"] = {"id": f"{base}/location/{e.location_id}"}
            ev["readPoint"] = {"id": f"{base}/location/{e.location_id}"}
        if e.order_id:
            ev["bizTransactionList"] = [{"type": "po", "bizTransaction": f"{base}/order/{e.order_id}"}]
        if e.user_id:
            ev["ext:userId"] = e.user_id
        by_id[e.id] = ev
        out.append(ev)
    return {
        "@context": [CONTEXT, {"ext": f"{base}/epcis/ext#"}],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": _time(until),
        "epcisBody": {"eventList": out},
    }
