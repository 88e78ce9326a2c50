"""Handling a diversion alert to the end: its status, notes, and who handled it.

The machine (every change is a row in `diversion_alert_events`, with its note):

    open ──→ investigating ──→ confirmed
      │            │
      └────────────┴────────→ dismissed
    confirmed | dismissed ──→ investigating   (reopened: new facts)

Closing (confirmed, dismissed) and reopening need a note saying why; starting an investigation may have one.
Anything else (the same status again, confirmed → dismissed, back to open) is refused with 409
`alert_transition_refused`. Whoever may `alert.handle` (HQ admins and analysts) handles the alerts they may read:
a region-bound one only those where the unit was sold, or was meant to be, at a store of their region.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.channel.models import Store
from app.codes.queries import visible_store_ids
from app.core.clock import now_utc
from app.core.security import Principal, authorize_action
from app.core.tx import transaction
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.scans.models import ALERT_STATUSES, DiversionAlert, DiversionAlertEvent

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("investigating", "dismissed"),
    "investigating": ("confirmed", "dismissed"),
    "confirmed": ("investigating",),
    "dismissed": ("investigating",),
}
NOTE_REQUIRED = frozenset({"confirmed", "dismissed"})  # and any reopening (from confirmed or dismissed)
NOTE_MAX = 1000
STATUS_NAMES = {"open": "待处理", "investigating": "调查中", "confirmed": "已确认窜货", "dismissed": "已排除"}
ACTION = "alert.handle"


def allowed_next(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def note_required(from_status: str, to_status: str) -> bool:
    return to_status in NOTE_REQUIRED or from_status in NOTE_REQUIRED


def _clean_note(text: str | None) -> str:
    note = (text or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationFailed(f"备注最多 {NOTE_MAX} 个字", code="note_too_long",
                               details={"fields": {"note": [f"最多 {NOTE_MAX} 个字"]}})
    return note


def authorize_alert(principal: Principal, alert: DiversionAlert, action: str = "hq.read") -> None:
    """Raise Forbidden unless the caller may `action` this alert: the whole network, or a store of it in scope."""
    authorize_action(principal, action)
    stores = visible_store_ids(principal, action)
    if stores is None:
        return
    mine = {alert.expected_store_id, alert.actual_store_id} - {None}
    if mine and db.session.scalar(stores.where(Store.id.in_(mine)).limit(1)) is not None:
        return
    raise Forbidden("这条预警不在你负责的地区", code="out_of_scope", details={"action": action})


def _locked_alert(alert_id: int) -> DiversionAlert:
    alert = db.session.scalar(sa.select(DiversionAlert).where(DiversionAlert.id == alert_id).with_for_update())
    if alert is None:
        raise NotFound("找不到这条预警", code="alert_not_found")
    return alert


def change_status(principal: Principal, alert_id: int, *, status: str, note: str | None = None,
                  at: datetime | None = None) -> DiversionAlert:
    """Move an alert to `status` with a note, recording who did it and when; refuses an illegal step (409)."""
    authorize_action(principal, ACTION)
    if status not in ALERT_STATUSES:
        raise ValidationFailed("没有这个处理状态", code="bad_alert_status",
                               details={"fields": {"status": ["只能是 " + " / ".join(ALERT_STATUSES)]}})
    text = _clean_note(note)
    now = at or now_utc()
    with transaction():
        alert = _locked_alert(alert_id)
        authorize_alert(principal, alert, ACTION)
        current = alert.status
        if status not in allowed_next(current):
            raise Conflict(f"预警当前是「{STATUS_NAMES[current]}」，不能改为「{STATUS_NAMES[status]}」",
                           code="alert_transition_refused",
                           details={"from": current, "to": status, "allowed": list(allowed_next(current))})
        if note_required(current, status) and not text:
            raise ValidationFailed("请写明处理说明", code="note_required",
                                   details={"fields": {"note": ["这一步要写明原因"]}})
        t = DiversionAlert.__table__
        moved = db.session.execute(
            sa.update(t).where(t.c.id == alert_id, t.c.status == current)
            .values(status=status, handled_by_id=principal.user_id, handled_at=now)).rowcount
        if moved != 1:  # someone moved it first (the lock makes this the compare-and-set's second line)
            raise Conflict("这条预警刚被别人处理过，请刷新后再试", code="alert_changed")
        db.session.add(DiversionAlertEvent(alert_id=alert_id, kind="status", from_status=current, to_status=status,
                                           note=text, user_id=principal.user_id, created_at=now))
    db.session.expire(alert)
    return db.session.get(DiversionAlert, alert_id)


def add_note(principal: Principal, alert_id: int, *, text: str, at: datetime | None = None) -> DiversionAlertEvent:
    """A note on an alert (its status does not change)."""
    authorize_action(principal, ACTION)
    note = _clean_note(text)
    if not note:
        raise ValidationFailed("备注不能为空", code="note_required", details={"fields": {"text": ["请填写备注"]}})
    with transaction():
        alert = _locked_alert(alert_id)
        authorize_alert(principal, alert, ACTION)
        event = DiversionAlertEvent(alert_id=alert_id, kind="note", from_status=alert.status,
                                    to_status=alert.status, note=note, user_id=principal.user_id,
                                    created_at=at or now_utc())
        db.session.add(event)
    return event
